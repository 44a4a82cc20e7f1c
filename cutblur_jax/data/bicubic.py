"""MATLAB-compatible bicubic ``imresize`` in NumPy.

The LR images of DIV2K and of the SR benchmarks were made with MATLAB's
``imresize(hr, 1/scale, 'bicubic')``; results are comparable only when LR images
are synthesised the same way. This module reproduces that function:

* ``scale`` has MATLAB's meaning: ``scale=1/4`` makes a x4 LR image and the
  output size is ``ceil(size * scale)`` per spatial axis (OpenCV and PIL round
  instead, and place pixels differently).
* Keys' cubic kernel with ``a = -0.5``. When downscaling (``scale < 1``) the
  kernel is stretched by ``1 / scale`` (antialiasing), so it spans
  ``4 / scale`` input pixels.
* Output pixel ``i`` (1-based) sits at input coordinate
  ``u = i / scale + (1 - 1 / scale) / 2``; its taps are
  ``floor(u - width / 2) + k`` for ``k = 0 .. ceil(width) + 1``, each output's
  weights normalised to sum to one, and taps whose weight is zero for every
  output dropped, as MATLAB does.
* Taps outside the image mirror with the edge pixel repeated (NumPy's
  ``symmetric`` padding).
* Two separable 1-D passes; the axis with the smaller scale goes first, rows
  (the height axis) on ties, as in MATLAB.
* Arithmetic is float64 throughout, summing taps in order. ``uint8`` (and
  ``uint16``) images come back in their own dtype: like MATLAB's ``imresizemex``,
  each pass rounds half away from zero and saturates, so the intermediate image
  between the two passes is integer as well. Floating point images come back
  unrounded and unclipped (bicubic overshoots), in their own float dtype.

Invariants: a constant image stays constant (weights sum to one); a resize by
``scale=1`` returns the image unchanged; for ``uint8`` input the result equals
MATLAB R2015b's ``imresize(img, [h w])`` bit for bit on the published
``lena_512x512`` test (checked while writing this module, see the README); for
float input it is MATLAB's double result to float64 rounding.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["Contributions", "contributions", "cubic", "imresize", "output_size"]

_KERNEL_WIDTH = 4.0  # Keys' cubic spans [-2, 2].


def cubic(x: np.ndarray) -> np.ndarray:
  """Keys' cubic convolution kernel with ``a = -0.5`` (MATLAB's ``cubic``).

  ``1.5|x|^3 - 2.5|x|^2 + 1`` on ``|x| <= 1``,
  ``-0.5|x|^3 + 2.5|x|^2 - 4|x| + 2`` on ``1 < |x| <= 2``, zero beyond.

  Examples:
    >>> cubic(np.array([0.0, 0.5, 1.0, 1.5, 2.0]))
    array([ 1.    ,  0.5625,  0.    , -0.0625,  0.    ])
  """
  absx = np.abs(np.asarray(x, np.float64))
  absx2 = absx * absx
  absx3 = absx2 * absx
  inner = (1.5 * absx3 - 2.5 * absx2 + 1.0) * (absx <= 1)
  outer = (-0.5 * absx3 + 2.5 * absx2 - 4.0 * absx + 2.0) * ((absx > 1) & (absx <= 2))
  return inner + outer


class Contributions(NamedTuple):
  """Per-output taps of one 1-D resize.

  Attributes:
    weights: ``float64 [out_length, taps]``; every row sums to one.
    indices: ``int64 [out_length, taps]``, 0-based input indices, already
      mirrored into ``[0, in_length)``.
  """

  weights: np.ndarray
  indices: np.ndarray


def contributions(
  in_length: int, out_length: int, scale: float, *, antialiasing: bool = True
) -> Contributions:
  """Weights and source indices of MATLAB's bicubic resize along one axis.

  Args:
    in_length: input length along the axis.
    out_length: output length along the axis.
    scale: the axis' scale factor (``out / in`` in MATLAB's sense; ``1/4``
      for a x4 downscale).
    antialiasing: stretch the kernel by ``1 / scale`` when downscaling (MATLAB's
      default for bicubic).

  Returns:
    ``Contributions(weights, indices)``.

  Examples:
    >>> taps = contributions(10, 20, 2.0)
    >>> taps.weights[0], taps.indices[0]
    (array([-0.0234375,  0.2265625,  0.8671875, -0.0703125]), array([1, 0, 0, 1]))
  """
  weights, raw = _raw_taps(in_length, out_length, scale, antialiasing)
  return Contributions(weights, _mirror(raw, in_length))


def _raw_taps(
  in_length: int, out_length: int, scale: float, antialiasing: bool
) -> tuple[np.ndarray, np.ndarray]:
  """Normalised weights and unmirrored 0-based tap indices (may fall outside the image)."""
  if in_length < 1 or out_length < 1:
    raise ValueError(
      f"Lengths must be positive, got in_length={in_length}, out_length={out_length}."
    )
  if not scale > 0:
    raise ValueError(f"`scale` must be positive, got {scale!r}.")
  if scale < 1 and antialiasing:
    kernel_width = _KERNEL_WIDTH / scale
    kernel = lambda x: scale * cubic(scale * x)
  else:
    kernel_width = _KERNEL_WIDTH
    kernel = cubic
  x = np.arange(1, out_length + 1, dtype=np.float64)
  u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # 1-based input coordinate of each output.
  left = np.floor(u - kernel_width / 2.0)
  num_taps = int(math.ceil(kernel_width)) + 2
  indices = left[:, None] + np.arange(num_taps, dtype=np.float64)[None, :]
  weights = kernel(u[:, None] - indices)
  # Row sums in tap order (MATLAB's sum over a short row), then normalise.
  total = np.zeros(out_length)
  for k in range(num_taps):
    total = total + weights[:, k]
  weights = weights / total[:, None]
  keep = np.any(weights != 0, axis=0)  # MATLAB drops taps that are zero for every output.
  return (
    np.ascontiguousarray(weights[:, keep]),
    np.ascontiguousarray(indices[:, keep].astype(np.int64) - 1),
  )


def _mirror(indices: np.ndarray, length: int) -> np.ndarray:
  """Folds 0-based indices into [0, length) with the edge repeated: [0..n-1, n-1..0] cycled."""
  cycle = np.concatenate([np.arange(length), np.arange(length - 1, -1, -1)])
  return cycle[np.mod(indices, 2 * length)]


def output_size(input_size: Sequence[int], scale: float) -> tuple[int, ...]:
  """MATLAB's output size for a scale factor: ``ceil(size * scale)`` per axis.

  Examples:
    >>> output_size((13, 10), 1 / 4)
    (4, 3)
  """
  return tuple(int(math.ceil(n * scale)) for n in input_size)


def _phase_period(raw: np.ndarray, max_period: int = 8) -> int | None:
  """Smallest P such that every phase ``raw[p::P]`` advances all taps by one constant stride.

  P is 1 for integer downscaling and the factor for integer upscaling; None when
  no P up to ``max_period`` works (then taps are gathered).
  """
  for period in range(1, min(raw.shape[0], max_period) + 1):
    for phase in range(period):
      rows = raw[phase::period]
      step = int(rows[1, 0] - rows[0, 0]) if rows.shape[0] > 1 else 1
      if step < 1 or not np.array_equal(rows, rows[:1] + step * np.arange(rows.shape[0])[:, None]):
        break
    else:
      return period
  return None


def _resize_axis(
  image: np.ndarray, weights: np.ndarray, raw: np.ndarray, axis: int, integer_dtype: np.dtype | None
) -> np.ndarray:
  """One 1-D pass: ``out[i] = sum_k w[i, k] * in[idx[i, k]]`` along ``axis``.

  Taps are summed one at a time in order (MATLAB's accumulation order; no dense
  ``[out, in]`` matrix), so every path gives bit-identical results. For integer
  scales the outputs split into phases whose taps advance by a constant stride:
  the image is mirror-padded once and each tap of a phase reads a strided view.
  Otherwise each tap gathers its (mirrored) rows.
  """
  length = image.shape[axis]
  out_shape = list(image.shape)
  out_shape[axis] = weights.shape[0]
  weight_shape = [1] * image.ndim
  weight_shape[axis] = -1
  out = np.zeros(out_shape, np.float64)
  before, after = max(0, -int(raw.min())), max(0, int(raw.max()) - (length - 1))
  # np.pad's symmetric mode equals MATLAB's mirroring for pads up to the length.
  period = _phase_period(raw) if before <= length and after <= length else None
  index = [slice(None)] * image.ndim
  if period is None:
    source = image.astype(np.float64, copy=False)
    mirrored = _mirror(raw, length)
    scratch = np.empty_like(out)
    for k in range(weights.shape[1]):
      np.take(source, mirrored[:, k], axis=axis, out=scratch)
      scratch *= weights[:, k].reshape(weight_shape)
      out += scratch
  else:
    pad = [(0, 0)] * image.ndim
    pad[axis] = (before, after)
    source = np.pad(image.astype(np.float64, copy=False), pad, mode="symmetric")
    for phase in range(period):
      index[axis] = slice(phase, None, period)
      target = tuple(index)
      phase_weights, phase_raw = weights[phase::period], raw[phase::period]
      count = phase_raw.shape[0]
      step = int(phase_raw[1, 0] - phase_raw[0, 0]) if count > 1 else 1
      # Accumulate in a contiguous buffer, then write the phase's strided rows once.
      total = np.zeros(out[target].shape, np.float64)
      scratch = np.empty_like(total)
      for k in range(weights.shape[1]):
        start = int(phase_raw[0, k]) + before
        index[axis] = slice(start, start + step * (count - 1) + 1, step)
        np.multiply(source[tuple(index)], phase_weights[:, k].reshape(weight_shape), out=scratch)
        total += scratch
      out[target] = total
  if integer_dtype is not None:
    out = _round_half_away(out, integer_dtype)
  return out


def _round_half_away(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
  """MATLAB's float -> unsigned integer conversion: saturate, round half away from zero."""
  info = np.iinfo(dtype)
  # Values are clipped to >= 0 first, so floor(x + 0.5) rounds half away from zero.
  return np.floor(np.clip(values, info.min, info.max) + 0.5).astype(dtype)


def imresize(
  image: np.ndarray,
  scale: float | None = None,
  *,
  output_shape: Sequence[int] | None = None,
  antialiasing: bool = True,
) -> np.ndarray:
  """Resizes an image as MATLAB's ``imresize(image, scale, 'bicubic')`` does.

  Args:
    image: ``[H, W]`` or ``[H, W, C]`` array; ``uint8``/``uint16`` or floating
      point (any range; no clipping). Other integer and bool arrays are
      treated as float64.
    scale: MATLAB's scale factor applied to both spatial axes: ``1/4`` makes a
      x4-downscaled image of size ``ceil(H/4) x ceil(W/4)``, ``2`` doubles it.
    output_shape: instead of ``scale``, the output ``(height, width)``; each
      axis then uses scale ``out / in``, as MATLAB's ``imresize(img, [h w])``.
    antialiasing: widen the kernel when downscaling (MATLAB's default).

  Returns:
    The resized image, ``[h, w]`` or ``[h, w, C]``. ``uint8``/``uint16`` input
    gives the same dtype (rounded half away from zero and saturated after each
    pass, as MATLAB); float16/32/64 input gives the same float dtype, computed
    in float64, unrounded; other input gives float64.

  Raises:
    ValueError: when neither or both of ``scale`` and ``output_shape`` are
      given, when they are not positive, or when ``image`` is not 2-D or 3-D.

  Examples:
    >>> hr = np.full((8, 12, 3), 200, np.uint8)
    >>> imresize(hr, 1 / 4).shape
    (2, 3, 3)
    >>> imresize(np.arange(4.0).reshape(2, 2), 2)[0]
    array([-0.28125 ,  0.015625,  0.609375,  0.90625 ])
  """
  image = np.asarray(image)
  if image.ndim not in (2, 3):
    raise ValueError(f"`image` must be [H, W] or [H, W, C], got shape {image.shape}.")
  if image.shape[0] < 1 or image.shape[1] < 1:
    raise ValueError(f"`image` must not be empty, got shape {image.shape}.")
  if (scale is None) == (output_shape is None):
    raise ValueError("Give exactly one of `scale` and `output_shape`.")
  in_size = image.shape[:2]
  if scale is not None:
    if (
      isinstance(scale, bool)
      or not isinstance(scale, numbers.Real)
      or not math.isfinite(scale)
      or scale <= 0
    ):
      raise ValueError(f"`scale` must be a positive finite number, got {scale!r}.")
    scales = (float(scale), float(scale))
    out_size = output_size(in_size, float(scale))
  else:
    out_size = tuple(int(n) for n in output_shape)
    if len(out_size) != 2 or min(out_size) < 1:
      raise ValueError(
        f"`output_shape` must be two positive integers (height, width), got {output_shape!r}."
      )
    scales = (out_size[0] / in_size[0], out_size[1] / in_size[1])

  if image.dtype in (np.uint8, np.uint16):
    integer_dtype, float_dtype = image.dtype, None
  elif np.issubdtype(image.dtype, np.floating):
    integer_dtype, float_dtype = None, image.dtype
  else:
    integer_dtype, float_dtype = None, np.dtype(np.float64)

  result = image
  # MATLAB resizes the axis with the smaller scale first (a stable sort: rows on ties).
  for axis in sorted((0, 1), key=lambda a: scales[a]):
    if out_size[axis] == in_size[axis] and scales[axis] == 1.0:
      continue  # Identity weights: MATLAB's nearest-neighbour shortcut copies.
    weights, raw = _raw_taps(in_size[axis], out_size[axis], scales[axis], antialiasing)
    # Resizing along the leading axis keeps whole rows contiguous (fast ufunc loops);
    # transposing costs less than striding over [W, C] in the inner loops.
    moved = np.ascontiguousarray(np.swapaxes(result, 0, axis))
    result = np.swapaxes(_resize_axis(moved, weights, raw, 0, integer_dtype), 0, axis)
  if integer_dtype is not None:
    return np.array(result, dtype=integer_dtype, order="C")
  return np.array(result, dtype=float_dtype, order="C")
