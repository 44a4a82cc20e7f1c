"""Whole-image super-resolution: tiled, size-bucketed, exact.

``super_resolve(params, arch, lr_image)`` returns what the official inference
(``inference.py``: nearest upsampling, the network on the whole image, ``clamp(0, 255)
.round().byte()``) returns, while bounding memory and compilations:

* Size buckets: an image side of at most ``tile`` LR pixels is zero-padded at the bottom
  or right to a multiple of ``bucket`` LR pixels, so images of nearby sizes share one
  compiled function. The network runs with ``valid_size`` (see ``models.layers``): every
  3x3 conv sees zeros beyond the image as it would at the real border, so padding changes
  no output pixel (up to float rounding). Edge replication, the usual choice, would change
  the outputs within the receptive radius of the bottom and right borders.
* Tiles: a longer side is cut into cores of ``tile`` LR pixels, each run with ``overlap``
  LR pixels of context on both sides (a canvas of ``tile + 2 * overlap``, the same for all
  tiles: one compilation), and only the cores are kept. A tile edge inside the image
  changes outputs up to ``models.receptive_radius(arch)`` LR pixels away; the default
  overlap is that radius for EDSR and CARN, so tiled output equals untiled output.
  RCAN's channel attention averages over its whole input, which a tile cannot see: tiled
  RCAN is close to, not equal to, whole-image RCAN (its default overlap is capped at its
  ``Network.max_tile_overlap``); use ``tile=None`` for exact RCAN output. The default tile
  (``default_tile``) already covers DIV2K-sized images for RCAN and CARN.
* HR-sized inputs (``input_is_hr_size=True``): the image goes into the network as it is,
  instead of the nearest-upsampled LR image (same-size pairs such as RealSR v1, or the
  paper's HR-input test). Buckets and tiles work as above on its grid of
  ``scale x scale`` blocks, so they stay exact; ``super_resolve(upsample_nearest(lr),
  input_is_hr_size=True)`` equals ``super_resolve(lr)``.

Examples:
  >>> arch = models.model_arch("CARN", 2, num_groups=1, num_blocks=1, num_channels=8)
  >>> params = models.create_model(arch).init(jax.random.key(0), jnp.zeros((1, 4, 4, 3)))
  >>> lr = np.zeros((30, 41, 3), np.uint8)
  >>> super_resolve(params["params"], arch, lr).shape
  (60, 82, 3)
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from cutblur_jax import image as image_lib
from cutblur_jax import models

DEFAULT_BUCKET = 64
# Default tile: the widest activation (num_channels at the HR size) of one tile stays
# under this many values (2 GiB in float32).
ACTIVATION_BUDGET = 2**29


def default_overlap(arch: Mapping[str, Any]) -> int:
  """LR pixels of context around each tile: the receptive radius (capped for RCAN)."""
  return _overlap(models.canonical_arch(arch))


def _overlap(arch: models.Arch) -> int:
  radius = models.receptive_radius(arch)
  cap = models.network(arch).max_tile_overlap
  return radius if cap is None else min(radius, cap)


def default_tile(arch: Mapping[str, Any], overlap: int | None = None) -> int:
  """Largest tile side (LR pixels, a multiple of 8, at least 32) within ``ACTIVATION_BUDGET``.

  Examples:
    >>> default_tile(models.model_arch("EDSR", 4))  # canvas 362 = 226 + 2 * 68
    224
  """
  arch = models.canonical_arch(arch)
  return _tile(arch, _overlap(arch) if overlap is None else overlap)


def _tile(arch: models.Arch, overlap: int) -> int:
  canvas = math.isqrt(ACTIVATION_BUDGET // (arch["scale"] ** 2 * arch["num_channels"]))
  return max(32, (canvas - 2 * overlap) // 8 * 8)


@functools.lru_cache(maxsize=32)
def _forward(arch: models.Arch, dtype_name: str, upsample: bool) -> Callable:
  model = models.create_model(arch, dtype=jnp.dtype(dtype_name))
  scale = arch.scale

  @jax.jit
  def forward(params, inputs, valid_lr):
    if upsample:
      inputs = image_lib.upsample_nearest(inputs, scale)
    return model.apply({"params": params}, inputs, valid_size=valid_lr * scale)

  return forward


def forward_fn(
  arch: Mapping[str, Any], *, dtype: Any = jnp.float32, upsample: bool = True
) -> Callable:
  """The jitted ``(params, inputs [N, h, w, 3] float32, valid_lr int32 [2]) -> SR`` function.

  ``inputs`` is the LR image, upsampled inside by nearest neighbour, or with
  ``upsample=False`` an HR-sized image (``h`` and ``w`` multiples of the scale).
  ``valid_lr`` is the (height, width), in LR pixels, of the image in the top-left of
  ``inputs``; the rest is padding. SR is the float32 network output (``super_resolve``
  quantizes on the host, so its uint8 and float results share one compilation).
  One function per (arch, dtype, upsample), cached: ``super_resolve`` calls reuse its
  compilations (inspect them with ``forward_fn(arch)._cache_size()``).
  """
  return _forward(models.canonical_arch(arch), jnp.dtype(dtype).name, bool(upsample))


def _round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


def _segments(
  length: int, tile: int | None, overlap: int, bucket: int
) -> tuple[int, list[tuple[int, int, int, int]]]:
  """Canvas size and (window start, window stop, core start, core stop) along one axis."""
  if tile is None or length <= tile:
    return _round_up(length, bucket), [(0, length, 0, length)]
  segments = []
  for start in range(0, length, tile):
    stop = min(start + tile, length)
    segments.append((max(0, start - overlap), min(length, stop + overlap), start, stop))
  return tile + 2 * overlap, segments


def _check_positive(name: str, value: Any, *, allow_zero: bool = False) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise TypeError(f"`{name}` must be an int, got {value!r}.")
  if value < (0 if allow_zero else 1):
    raise ValueError(f"`{name}` must be {'>= 0' if allow_zero else 'positive'}, got {value}.")
  return int(value)


def _check_range(image: np.ndarray) -> None:
  """Refuses what the network would turn into garbage: NaN, other ranges, 16-bit data."""
  if image.dtype == np.uint8:
    return
  if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
    raise ValueError("`image` holds NaN or infinite values; clean it first (e.g. np.nan_to_num).")
  low, high = float(image.min()), float(image.max())
  if np.issubdtype(image.dtype, np.integer) and image.dtype != np.uint8 and high > 255:
    raise ValueError(
      f"`image` is {image.dtype} with values up to {high:g}: the networks take "
      "[0, 255]; convert 16-bit images with (image / 257).round().astype(np.uint8) "
      "(cutblur_jax.data.read_image does)."
    )
  if low < 0 or high > 255:
    raise ValueError(
      f"`image` values span [{low:g}, {high:g}]; the networks take values on "
      "[0, 255]: clip them (np.clip(image, 0, 255)) or rescale them."
    )


def super_resolve(
  params: Any,
  arch: Mapping[str, Any],
  image: Any,
  *,
  input_is_hr_size: bool = False,
  tile: int | None = -1,
  overlap: int | None = None,
  bucket: int = DEFAULT_BUCKET,
  dtype: Any = jnp.float32,
  quantize: bool = True,
) -> np.ndarray:
  """Super-resolves one image with the network ``arch``.

  Args:
    params: the network's params (``checkpoint.load_model``).
    arch: its arch dict.
    image: ``[h, w, 3]``, uint8 or float on [0, 255]: the LR image, upsampled here by
      nearest neighbour to ``[h * scale, w * scale]`` as the official code does.
    input_is_hr_size: ``image`` already has the output size and goes into the network as
      it is: a same-size pair's input (RealSR v1 with ``scale`` 4), or the HR image itself
      (the paper's HR-input test). Sides that are not multiples of ``scale`` (which the
      official networks cannot take) are edge-padded to the next multiple, and the output
      cropped back. Tiles, overlap and buckets still count LR pixels, i.e. blocks of
      ``scale x scale`` input pixels.
    tile: core size of a tile in LR pixels; ``None`` or 0: never tile; -1 (default):
      ``default_tile(arch, overlap)``.
    overlap: LR pixels of context around each tile (default ``default_overlap(arch)``).
    bucket: canvas sides are rounded up to a multiple of this many LR pixels.
    dtype: computation dtype (``jnp.bfloat16`` on GPU/TPU is faster, not exact).
    quantize: return ``uint8`` as the official code saves it (clip, round half to even);
      False returns the float32 network output.

  Returns:
    The SR image, uint8 (or float32): ``[h * scale, w * scale, 3]``, or ``[h, w, 3]``
    with ``input_is_hr_size``.

  Raises:
    ValueError: ``image`` is not ``[h, w, 3]``, holds NaN or values outside [0, 255] (the
      message says how to convert it), or a size option is not positive.
    TypeError: ``image`` is not numeric, or a size option is not an int.

  Examples:
    >>> arch = models.model_arch("EDSR", 4, num_blocks=1, num_channels=8)
    >>> params = models.create_model(arch).init(jax.random.key(0), jnp.zeros((1, 4, 4, 3)))
    >>> hr_sized = np.zeros((61, 82, 3), np.uint8)  # A RealSR v1 input, or an HR image.
    >>> super_resolve(params["params"], arch, hr_sized, input_is_hr_size=True).shape
    (61, 82, 3)
  """
  arch = models.canonical_arch(arch)
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[-1] != 3 or 0 in image.shape:
    raise ValueError(f"`image` must be a non-empty [h, w, 3] RGB image, got shape {image.shape}.")
  if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
    raise TypeError(f"`image` must be numeric, got dtype {image.dtype}.")
  _check_range(image)
  # The arch is checked: the defaults and the forward function take it as it is.
  overlap = (
    _overlap(arch) if overlap is None else _check_positive("overlap", overlap, allow_zero=True)
  )
  if tile == -1:
    tile = _tile(arch, overlap)
  tile = None if tile in (None, 0) else _check_positive("tile", tile)
  bucket = _check_positive("bucket", bucket)
  scale = arch["scale"]
  height, width = image.shape[:2]
  # Input pixels per LR pixel along each side.
  cell = scale if input_is_hr_size else 1
  if height % cell or width % cell:
    image = np.pad(image, ((0, -height % cell), (0, -width % cell), (0, 0)), mode="edge")
  lr_height, lr_width = image.shape[0] // cell, image.shape[1] // cell
  canvas_h, rows = _segments(lr_height, tile, overlap, bucket)
  canvas_w, cols = _segments(lr_width, tile, overlap, bucket)
  forward = _forward(arch, jnp.dtype(dtype).name, not input_is_hr_size)
  params = jax.device_put(params)  # Once, not once per tile (NumPy params would be copied).
  output = np.empty((lr_height * scale, lr_width * scale, 3), np.uint8 if quantize else np.float32)
  canvas = np.zeros((1, canvas_h * cell, canvas_w * cell, 3), np.float32)
  for y0, y1, core_y0, core_y1 in rows:
    for x0, x1, core_x0, core_x1 in cols:
      canvas[...] = 0.0  # Padding is masked in the network; zeros keep it finite.
      canvas[0, : (y1 - y0) * cell, : (x1 - x0) * cell] = image[
        y0 * cell : y1 * cell, x0 * cell : x1 * cell
      ]
      result = np.asarray(forward(params, canvas, np.array([y1 - y0, x1 - x0], np.int32)))
      core = result[
        0,
        (core_y0 - y0) * scale : (core_y1 - y0) * scale,
        (core_x0 - x0) * scale : (core_x1 - x0) * scale,
      ]
      if quantize:
        core = image_lib.quantize(core)
      output[core_y0 * scale : core_y1 * scale, core_x0 * scale : core_x1 * scale] = core
  if input_is_hr_size:  # Drop the edge padding to a multiple of the scale.
    output = np.ascontiguousarray(output[:height, :width])
  return output
