"""Layers shared by EDSR, RCAN and CARN, computed as the official PyTorch networks compute.

Invariants (each is tested against PyTorch):

* ``space_to_depth`` is the official ``DownBlock``: output channel
  ``(sy * scale + sx) * C + c`` holds input pixel ``(y * scale + sy, x * scale + sx)``,
  channel ``c``. This is *not* ``nn.PixelUnshuffle``'s order (``c * scale**2 + ...``).
* ``pixel_shuffle`` is ``nn.PixelShuffle``: input channel ``c * scale**2 + sy * scale + sx``
  goes to output pixel ``(y * scale + sy, x * scale + sx)``, channel ``c``. With both
  orders kept, official conv weights need no permutation, only OIHW -> HWIO.
* The mean shift is a constant, not a parameter: the official ``MeanShift`` is a frozen
  1x1 conv with identity weights and bias ``-/+ 255 * DIV2K_RGB_MEAN``
  (float32 arithmetic, reproduced exactly by ``RGB_MEAN_255``).
* Convolutions are initialised as PyTorch's ``nn.Conv2d`` (kernel and bias uniform in
  ``+-1/sqrt(fan_in)``), so training from scratch starts from the same distribution.
* Masked evaluation: every 3x3 convolution may read its input through a mask that zeroes
  everything outside a top-left *valid region*. A padded canvas then computes, inside the
  region, what the network computes on the unpadded image (zero padding at every layer),
  which is what lets inference pad images to a few size buckets without changing pixels.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

# DIV2K's RGB mean on [0, 1]; the official MeanShift scales it by the rgb_range 255.
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)
RGB_RANGE = 255
# The bias of the official MeanShift(255, sign=+1), bit for bit (float32 product).
RGB_MEAN_255 = np.asarray(DIV2K_RGB_MEAN, np.float32) * np.float32(RGB_RANGE)
# Values in the official state_dict for sub_mean and add_mean (weight 3x3x1x1 + bias 3, twice),
# counted by `sum(p.numel() for p in net.parameters())` although they never train.
MEAN_SHIFT_PARAM_COUNT = 2 * (3 * 3 + 3)

Dtype = Any


def upsampler_factors(scale: int) -> tuple[int, ...]:
  """The pixel-shuffle stages of the official ``Upsampler`` for ``scale``.

  Powers of two use x2 stages (4 -> (2, 2)), 3 one x3 stage, 1 none.

  Raises:
    ValueError: any other scale (the official code raises NotImplementedError).
  """
  if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
    raise ValueError(f"`scale` must be a positive integer, got {scale!r}.")
  if scale & (scale - 1) == 0:
    return (2,) * int(round(math.log2(scale)))
  if scale == 3:
    return (3,)
  raise ValueError(f"`scale` must be 3 or a power of two (1, 2, 4, 8, ...), got {scale}.")


def check_input(x: jax.Array, scale: int) -> None:
  """Raises ValueError unless ``x`` is ``[N, H, W, 3]`` with H and W divisible by ``scale``."""
  if x.ndim != 4 or x.shape[-1] != 3:
    raise ValueError(f"Expected an [N, H, W, 3] image batch, got shape {tuple(x.shape)}.")
  height, width = x.shape[1:3]
  if height % scale or width % scale:
    raise ValueError(
      f"Input height and width must be divisible by the scale {scale} (the input is the "
      f"LR image upsampled by nearest neighbour), got {height}x{width}."
    )


def space_to_depth(x: jax.Array, scale: int) -> jax.Array:
  """``[N, H, W, C] -> [N, H/s, W/s, s*s*C]`` in the official ``DownBlock``'s channel order.

  Examples:
    >>> x = jnp.arange(8.0).reshape(1, 2, 2, 2)  # channels (a, b) per pixel
    >>> space_to_depth(x, 2)[0, 0, 0]  # pixel (0,0) a, b; (0,1) a, b; (1,0) ...; (1,1) ...
    Array([0., 1., 2., 3., 4., 5., 6., 7.], dtype=float32)
  """
  if scale == 1:
    return x
  n, h, w, c = x.shape
  x = x.reshape(n, h // scale, scale, w // scale, scale, c)
  x = x.transpose(0, 1, 3, 2, 4, 5)  # [n, y, x, sy, sx, c]
  return x.reshape(n, h // scale, w // scale, scale * scale * c)


def pixel_shuffle(x: jax.Array, scale: int) -> jax.Array:
  """``[N, H, W, s*s*C] -> [N, H*s, W*s, C]`` in ``torch.nn.PixelShuffle``'s channel order.

  Examples:
    >>> x = jnp.arange(4.0).reshape(1, 1, 1, 4)
    >>> pixel_shuffle(x, 2)[0, :, :, 0]
    Array([[0., 1.],
           [2., 3.]], dtype=float32)
  """
  if scale == 1:
    return x
  n, h, w, cs = x.shape
  c = cs // (scale * scale)
  x = x.reshape(n, h, w, c, scale, scale)
  x = x.transpose(0, 1, 4, 2, 5, 3)  # [n, y, sy, x, sx, c]
  return x.reshape(n, h * scale, w * scale, c)


def _torch_kernel_init(key, shape, dtype=jnp.float32):
  """``nn.Conv2d``'s default: kaiming_uniform(a=sqrt(5)), i.e. U(+-1/sqrt(fan_in))."""
  fan_in = int(np.prod(shape[:-1]))
  bound = 1.0 / math.sqrt(fan_in)
  return jax.random.uniform(key, shape, dtype, -bound, bound)


def _torch_bias_init(fan_in: int):
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def conv(features: int, kernel_size: int, in_features: int, *, dtype: Dtype, name: str) -> nn.Conv:
  """A stride-1 conv with torch's ``padding=kernel_size // 2``, torch's init, float32 params."""
  pad = kernel_size // 2
  return nn.Conv(
    features,
    (kernel_size, kernel_size),
    padding=((pad, pad), (pad, pad)),
    dtype=dtype,
    param_dtype=jnp.float32,
    kernel_init=_torch_kernel_init,
    bias_init=_torch_bias_init(in_features * kernel_size * kernel_size),
    name=name,
  )


def region_mask(
  valid_lr: jax.Array | None, height: int, width: int, factor: int, dtype: Dtype
) -> jax.Array | None:
  """``[N, height, width, 1]`` ones inside the valid region, zeros outside (or None).

  Args:
    valid_lr: int ``[N, 2]`` valid (height, width) on the LR grid, or None (no mask).
    height, width: the feature map's size.
    factor: the feature map's resolution over the LR grid (1, 2, 3, 4, ...).
    dtype: the mask's dtype (the computation dtype).
  """
  if valid_lr is None:
    return None
  rows = jnp.arange(height)[None, :, None] < (valid_lr[:, 0] * factor)[:, None, None]
  cols = jnp.arange(width)[None, None, :] < (valid_lr[:, 1] * factor)[:, None, None]
  return (rows & cols)[..., None].astype(dtype)


def masked(x: jax.Array, mask: jax.Array | None) -> jax.Array:
  """``x`` with everything outside the valid region zeroed (``x`` itself without a mask)."""
  return x if mask is None else x * mask


def conv_relu_conv(
  x: jax.Array, mask: jax.Array | None, features: int, *, dtype: Dtype
) -> jax.Array:
  """conv3x3 -> ReLU -> conv3x3 as ``conv_0`` and ``conv_1`` of the calling compact module.

  The body of the official residual blocks (EDSR's ``ResBlock``, RCAN's ``RCAB``).
  """
  h = nn.relu(conv(features, 3, features, dtype=dtype, name="conv_0")(masked(x, mask)))
  return conv(features, 3, features, dtype=dtype, name="conv_1")(masked(h, mask))


class ResBlock(nn.Module):
  """Official ``ops.ResBlock``: conv3x3 -> ReLU -> conv3x3, times ``res_scale``, plus input."""

  features: int
  res_scale: float = 1.0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    return conv_relu_conv(x, mask, self.features, dtype=self.dtype) * self.res_scale + x


class Upsampler(nn.Module):
  """Official ``ops.Upsampler``: per stage, a conv to ``f*f*C`` channels then pixel shuffle.

  Convs are named ``conv_0``, ``conv_1``, ... (torch: ``tail.0.0``, ``tail.0.2``, ...).
  """

  features: int
  scale: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, valid_lr: jax.Array | None = None) -> jax.Array:
    resolution = 1
    for index, factor in enumerate(upsampler_factors(self.scale)):
      mask = region_mask(valid_lr, x.shape[1], x.shape[2], resolution, self.dtype)
      x = conv(
        factor * factor * self.features, 3, self.features, dtype=self.dtype, name=f"conv_{index}"
      )(masked(x, mask))
      x = pixel_shuffle(x, factor)
      resolution *= factor
    return x


class SRNetwork(nn.Module):
  """The frame the three official networks share; subclasses define ``body``.

  ``x -> sub_mean -> DownBlock -> head conv -> body(+ global skip) -> Upsampler -> tail conv
  -> add_mean``. Call with an ``[N, H, W, 3]`` float image on [0, 255] (the LR image
  upsampled by nearest neighbour to the HR size); returns the float32 SR image, same shape.

  ``valid_size`` (optional, int ``[2]`` or ``[N, 2]``, multiples of ``scale``) marks the
  top-left (height, width) of the input that holds the image, the rest being padding: the
  output inside that region then equals the network's output on the unpadded image.
  """

  scale: int = 4
  num_channels: int = 64
  dtype: Dtype = jnp.float32

  def body(self, x: jax.Array, mask: jax.Array | None) -> jax.Array:
    raise NotImplementedError

  @nn.compact
  def __call__(self, x: jax.Array, valid_size: jax.Array | None = None) -> jax.Array:
    x = jnp.asarray(x)
    check_input(x, self.scale)
    # Mean shift in float32 (exact as the official 1x1 identity conv), then the compute dtype.
    x = x.astype(jnp.float32) - RGB_MEAN_255
    x = space_to_depth(x, self.scale).astype(self.dtype)
    valid_lr = None
    if valid_size is not None:
      valid_size = jnp.asarray(valid_size, jnp.int32)
      valid_lr = jnp.broadcast_to(valid_size.reshape(-1, 2), (x.shape[0], 2)) // self.scale
    mask = region_mask(valid_lr, x.shape[1], x.shape[2], 1, self.dtype)
    x = conv(self.num_channels, 3, x.shape[-1], dtype=self.dtype, name="head")(masked(x, mask))
    x = self.body(x, mask) + x
    x = Upsampler(self.num_channels, self.scale, dtype=self.dtype, name="upsampler")(x, valid_lr)
    out_mask = region_mask(valid_lr, x.shape[1], x.shape[2], self.scale, self.dtype)
    x = conv(3, 3, self.num_channels, dtype=self.dtype, name="tail")(masked(x, out_mask))
    return x.astype(jnp.float32) + RGB_MEAN_255
