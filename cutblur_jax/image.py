"""Small array helpers shared by the augmentations, models and data pipeline.

Conventions used throughout cutblur-jax:

* Images are channels-last: ``[N, H, W, C]`` batches or ``[H, W, C]`` images.
* Pixel values live on the [0, 255] range, as in the official code; floating
  point arrays are not rescaled to [0, 1].
* LR inputs are brought to HR size by nearest-neighbour upsampling before any
  network or augmentation sees them (the official code does this so CutBlur can
  paste between HR and LR).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def upsample_nearest(images: jax.Array | np.ndarray, scale: int) -> jax.Array:
  """Upsamples ``[..., H, W, C]`` images by an integer ``scale`` with nearest neighbour.

  Equals PyTorch's ``F.interpolate(x, scale_factor=scale, mode="nearest")`` for
  integer scales: every LR pixel becomes a ``scale x scale`` block.

  Args:
    images: ``[H, W, C]`` or ``[N, H, W, C]`` array.
    scale: positive integer factor.

  Returns:
    An array of shape ``[..., H*scale, W*scale, C]`` and the input dtype.

  Examples:
    >>> lr = jnp.arange(4.0).reshape(1, 2, 2, 1)
    >>> upsample_nearest(lr, 2)[0, :, :, 0]
    Array([[0., 0., 1., 1.],
           [0., 0., 1., 1.],
           [2., 2., 3., 3.],
           [2., 2., 3., 3.]], dtype=float32)
  """
  if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
    raise ValueError(f"`scale` must be a positive integer, got {scale!r}.")
  images = jnp.asarray(images)
  if images.ndim not in (3, 4):
    raise ValueError(f"`images` must be [H, W, C] or [N, H, W, C], got shape {images.shape}.")
  if scale == 1:
    return images
  images = jnp.repeat(images, scale, axis=-3)
  return jnp.repeat(images, scale, axis=-2)


ROUNDINGS = ("half_even", "half_away")


def quantize(images: jax.Array | np.ndarray, *, rounding: str = "half_even"):
  """Clips to [0, 255], rounds and casts to uint8: the package's one quantiser.

  Args:
    images: values on [0, 255]. A NumPy array gives a NumPy array (computed in its own
      precision, on the host); anything else (a JAX array, a traced value) a JAX array.
    rounding: ``"half_even"``, the official code's ``clamp(0, 255).round().byte()``
      (PyTorch rounds half to even, as ``jnp.round`` and ``np.rint`` do); or
      ``"half_away"``, MATLAB's ``uint8()`` conversion (synthesised LR images).

  Examples:
    >>> quantize(np.array([-3.0, 0.5, 1.5, 2.5, 254.6, 300.0]))
    array([  0,   0,   2,   2, 255, 255], dtype=uint8)
    >>> quantize(np.array([0.5, 1.5, 2.5]), rounding="half_away")
    array([1, 2, 3], dtype=uint8)
  """
  if rounding not in ROUNDINGS:
    raise ValueError(f"`rounding` must be one of {ROUNDINGS}, got {rounding!r}.")
  if isinstance(images, (np.ndarray, np.generic)):
    values = np.clip(images, 0, 255)
    if np.issubdtype(values.dtype, np.integer):
      return values.astype(np.uint8)
    values = np.rint(values) if rounding == "half_even" else np.floor(values + 0.5)
    return values.astype(np.uint8)
  values = jnp.clip(jnp.asarray(images, jnp.float32), 0.0, 255.0)
  values = jnp.round(values) if rounding == "half_even" else jnp.floor(values + 0.5)
  return values.astype(jnp.uint8)
