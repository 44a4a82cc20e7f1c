"""Random flips and transposes of HR/LR patch pairs: the reference's ``utils.flip_and_rotate``.

The training step applies them on device, before the MoA policy, to the ``uint8``
patches (flips commute with nearest upsampling, so LR can be flipped at its own size).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["random_flip_and_rotate"]


def random_flip_and_rotate(
  key: jax.Array, hr: jax.Array, lr: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """Random h-flip, v-flip and transpose, each with probability 1/2, drawn per sample.

  The same transform is applied to a sample's HR and LR patch, as the
  reference's ``utils.flip_and_rotate``; the eight results are the dihedral
  group of the square, so every orientation has probability 1/8.

  Args:
    key: PRNG key.
    hr, lr: ``[N, H, W, C]`` and ``[N, h, w, C]`` batches of square patches.

  Returns:
    ``(hr, lr)`` transformed, same shapes and dtypes.

  Raises:
    ValueError: if the patches are not square (a transpose would change their shape).

  Examples:
    >>> hr = jnp.arange(16.0).reshape(1, 4, 4, 1)
    >>> out, _ = random_flip_and_rotate(jax.random.key(0), hr, hr)
    >>> out.shape
    (1, 4, 4, 1)
  """
  if hr.ndim != 4 or lr.ndim != 4 or hr.shape[0] != lr.shape[0]:
    raise ValueError(
      f"`hr` and `lr` must be [N, H, W, C] batches of one size N, got {hr.shape} and {lr.shape}."
    )
  if hr.shape[1] != hr.shape[2] or lr.shape[1] != lr.shape[2]:
    raise ValueError(
      f"Random transposes need square patches, got HR {hr.shape[1:3]} and LR "
      f"{lr.shape[1:3]}; set flip_and_rotate=False."
    )
  flips = jax.random.bernoulli(key, 0.5, (3, hr.shape[0]))

  def apply(images):
    def where(flag, transformed, images):
      return jnp.where(flag[:, None, None, None], transformed, images)

    images = where(flips[0], images[:, :, ::-1], images)
    images = where(flips[1], images[:, ::-1], images)
    return where(flips[2], jnp.swapaxes(images, 1, 2), images)

  return apply(hr), apply(lr)
