"""MATLAB bicubic imresize: taps, sizes, rounding, and a slow independent reimplementation."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import cutblur_jax.data.bicubic as imresize_lib
from cutblur_jax.data.bicubic import contributions, cubic, imresize, output_size


# --------------------------------------------------------------------------------------
# An independent, deliberately naive reimplementation of MATLAB's algorithm: one output
# pixel at a time, every tap looked up by hand. It shares no code with the module.


def _keys(x: float) -> float:
  x = abs(x)
  if x <= 1:
    return 1.5 * x**3 - 2.5 * x**2 + 1
  if x <= 2:
    return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
  return 0.0


def _mirror(j: int, n: int) -> int:
  """1-based index j folded into 1..n with the edge repeated (..., 2, 1, 1, 2, ..., n, n, ...)."""
  while j < 1 or j > n:
    j = 1 - j if j < 1 else 2 * n + 1 - j
  return j


def _slow_resize_1d(signal: list[float], out_len: int, scale: float) -> list[float]:
  n = len(signal)
  width = 4.0 / scale if scale < 1 else 4.0
  out = []
  for i in range(1, out_len + 1):
    u = i / scale + 0.5 * (1 - 1 / scale)
    taps = []
    for j in range(math.floor(u - width / 2), math.floor(u - width / 2) + math.ceil(width) + 2):
      w = scale * _keys(scale * (u - j)) if scale < 1 else _keys(u - j)
      taps.append((w, signal[_mirror(j, n) - 1]))
    total = sum(w for w, _ in taps)
    out.append(sum(w / total * v for w, v in taps))
  return out


def _slow_imresize(
  image: np.ndarray, out_hw: tuple[int, int], scales: tuple[float, float]
) -> np.ndarray:
  integer = image.dtype in (np.uint8, np.uint16)
  top = 255 if image.dtype == np.uint8 else 65535
  result = image.astype(np.float64)
  squeeze = result.ndim == 2
  if squeeze:
    result = result[..., None]
  for axis in sorted((0, 1), key=lambda a: scales[a]):
    moved = np.moveaxis(result, axis, 0)
    new = np.zeros((out_hw[axis],) + moved.shape[1:])
    for b in range(moved.shape[1]):
      for c in range(moved.shape[2]):
        new[:, b, c] = _slow_resize_1d(list(moved[:, b, c]), out_hw[axis], scales[axis])
    if integer:  # MATLAB's uint8 path rounds (half away from zero) after each pass.
      new = np.array(
        [[[math.floor(min(max(v, 0), top) + 0.5) for v in row] for row in plane] for plane in new]
      )
    result = np.moveaxis(new, 0, axis)
  if squeeze:
    result = result[..., 0]
  return result.astype(image.dtype) if integer else result


# --------------------------------------------------------------------------------------
# Kernel and taps.


def _keys_exact(x: Fraction) -> Fraction:
  x = abs(x)
  if x <= 1:
    return Fraction(3, 2) * x**3 - Fraction(5, 2) * x**2 + 1
  if x <= 2:
    return -Fraction(1, 2) * x**3 + Fraction(5, 2) * x**2 - 4 * x + 2
  return Fraction(0)


def test_kernel_values_worked_by_hand():
  x = np.array([0.0, 0.25, 0.5, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, -0.5, -1.5])
  expected = [
    1.0,
    0.8671875,
    0.5625,
    0.0,
    -0.0703125,
    -0.0625,
    -0.0234375,
    0.0,
    0.0,
    0.5625,
    -0.0625,
  ]
  np.testing.assert_array_equal(cubic(x), expected)
  for value in x:
    assert cubic(np.array([value]))[0] == float(_keys_exact(Fraction(value)))


def test_reference_taps_downscale_by_two():
  taps = contributions(10, 5, 0.5)
  np.testing.assert_array_equal(
    taps.weights[0],
    [
      -0.01171875,
      -0.03515625,
      0.11328125,
      0.43359375,
      0.43359375,
      0.11328125,
      -0.03515625,
      -0.01171875,
    ],
  )
  np.testing.assert_array_equal(taps.indices[0], [2, 1, 0, 0, 1, 2, 3, 4])
  np.testing.assert_allclose(taps.weights.sum(axis=1), 1.0, rtol=0, atol=1e-15)


def test_reference_taps_upscale_by_two():
  taps = contributions(10, 20, 2.0)
  np.testing.assert_array_equal(taps.weights[0], [-0.0234375, 0.2265625, 0.8671875, -0.0703125])
  np.testing.assert_array_equal(taps.indices[0], [1, 0, 0, 1])


def test_reference_taps_downscale_by_four_from_exact_fractions():
  taps = contributions(40, 10, 0.25)
  centre_out = [
    0.2409667969,
    0.1818847656,
    0.0974121094,
    0.0227050781,
    -0.0119628906,
    -0.0183105469,
    -0.0109863281,
    -0.0017089844,
  ]
  row = taps.weights[5]  # An interior output: its 16 taps are symmetric about the centre.
  np.testing.assert_allclose(row[8:], centre_out, atol=5e-11)
  np.testing.assert_array_equal(row[:8], row[8:][::-1])
  # Worked exactly: distances +-0.5, +-1.5, ..., +-7.5; weight (1/4) W(d/4), normalised.
  raw = [Fraction(1, 4) * _keys_exact(Fraction(2 * k + 1, 2) / 4) for k in range(8)]
  total = 2 * sum(raw)
  np.testing.assert_allclose(row[8:], [float(w / total) for w in raw], rtol=0, atol=1e-16)
  np.testing.assert_array_equal(taps.indices[5], np.arange(14, 30))


@pytest.mark.parametrize(
  "in_len,out_len,scale",
  [(10, 5, 0.5), (12, 4, 1 / 3), (13, 4, 0.25), (7, 14, 2.0), (5, 15, 3.0), (9, 36, 4.0)],
)
def test_taps_match_the_formula_worked_exactly(in_len, out_len, scale):
  taps = contributions(in_len, out_len, scale)
  exact_scale = Fraction(scale).limit_denominator(10)
  width = 4 / exact_scale if exact_scale < 1 else Fraction(4)
  for i in range(out_len):
    u = (i + 1) / exact_scale + Fraction(1, 2) * (1 - 1 / exact_scale)
    left = math.floor(u - width / 2)
    weights = {}
    for j in range(left, left + math.ceil(width) + 2):
      d = u - j
      w = exact_scale * _keys_exact(exact_scale * d) if exact_scale < 1 else _keys_exact(d)
      source = _mirror(j, in_len) - 1
      weights[source] = weights.get(source, 0) + w
    total = sum(weights.values())
    got = {}
    for w, source in zip(taps.weights[i], taps.indices[i]):
      got[int(source)] = got.get(int(source), 0.0) + w
    assert set(k for k, v in weights.items() if v) <= set(got)
    for source, w in got.items():
      assert w == pytest.approx(float(weights.get(source, 0) / total), abs=1e-14)


# --------------------------------------------------------------------------------------
# Sizes, constants, ramps.


@pytest.mark.parametrize(
  "scale,expected",
  [(1 / 2, (7, 5)), (1 / 3, (5, 4)), (1 / 4, (4, 3)), (2, (26, 20)), (3, (39, 30)), (4, (52, 40))],
)
def test_output_size_is_ceil(scale, expected):
  assert output_size((13, 10), scale) == expected
  image = np.zeros((13, 10, 3), np.uint8)
  assert imresize(image, scale).shape == expected + (3,)
  assert imresize(image[..., 0], scale).shape == expected


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4])
def test_exact_scale_sizes_for_modcropped_images(scale):
  factor = round(1 / scale)
  for height in range(factor, 40 * factor, factor):
    assert output_size((height, 2040), scale) == (height // factor, 2040 // factor)


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3, 4])
def test_constant_images_stay_constant(scale):
  for value in (0, 1, 128, 255):
    image = np.full((11, 9, 3), value, np.uint8)
    np.testing.assert_array_equal(imresize(image, scale), value)
  out = imresize(np.full((11, 9), 77.25), scale)
  np.testing.assert_allclose(out, 77.25, rtol=0, atol=1e-12)


def test_linear_ramp_is_reproduced_in_the_interior():
  ramp = 3.0 * np.arange(64)[:, None] + 7.0 + np.zeros((1, 5))
  down = imresize(ramp, 1 / 4)
  # Output row i (0-based) is centred on input coordinate 4 i + 1.5 (0-based).
  centres = 4 * np.arange(16) + 1.5
  np.testing.assert_allclose(down[2:-2, 0], 3.0 * centres[2:-2] + 7.0, rtol=0, atol=1e-9)
  up = imresize(ramp, 2)
  centres = (np.arange(128) + 0.5) / 2 - 0.5
  # Taps reach 2 input pixels either side, so the first and last 4 outputs see the mirror.
  np.testing.assert_allclose(up[4:-4, 0], 3.0 * centres[4:-4] + 7.0, rtol=0, atol=1e-9)
  assert abs(up[0, 0] - (3.0 * centres[0] + 7.0)) > 0.1
  # Keys' a = -0.5 kernel also reproduces quadratics when upscaling.
  quad = (np.arange(32.0)[:, None] - 10.0) ** 2 + np.zeros((1, 3))
  centres = (np.arange(64) + 0.5) / 2 - 0.5
  np.testing.assert_allclose(imresize(quad, 2)[4:-4, 0], (centres[4:-4] - 10.0) ** 2, atol=1e-9)


def test_symmetric_border_is_edge_repeating():
  signal = np.array([[10.0], [20.0], [40.0], [80.0]])
  out = imresize(signal, output_shape=(8, 1))
  # Output 0 reads source indices [1, 0, 0, 1] with the x2 taps.
  assert out[0, 0] == pytest.approx(
    -0.0234375 * 20 + 0.2265625 * 10 + 0.8671875 * 10 - 0.0703125 * 20, abs=1e-12
  )


def test_scale_one_returns_an_equal_copy():
  image = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
  out = imresize(image, 1)
  np.testing.assert_array_equal(out, image)
  assert out is not image and not np.shares_memory(out, image)


# --------------------------------------------------------------------------------------
# Rounding and dtypes.


def test_uint8_rounds_half_away_from_zero():
  # With the x2 taps, output 0 of a column [a, b] is 1.09375 a - 0.09375 b: for
  # (21, 5) that is exactly 22.5, which MATLAB rounds to 23 (half to even gives 22).
  column = np.array([[21], [5]], np.uint8)
  assert imresize(column.astype(np.float64), output_shape=(4, 1))[0, 0] == 22.5
  assert imresize(column, output_shape=(4, 1))[0, 0] == 23
  # Saturation: bicubic overshoots below 0 and above 255.
  edge = np.array([[0], [0], [255], [255]], np.uint8)
  up = imresize(edge, output_shape=(8, 1))
  assert imresize(edge.astype(float), output_shape=(8, 1)).min() < 0
  assert up.min() == 0 and up.max() == 255 and up.dtype == np.uint8


def test_uint8_rounds_between_the_two_passes_like_matlab():
  image = np.random.default_rng(3).integers(0, 256, (24, 20, 3), dtype=np.uint8)
  as_uint8 = imresize(image, 1 / 4).astype(int)
  via_float = np.floor(np.clip(imresize(image.astype(np.float64), 1 / 4), 0, 255) + 0.5)
  assert np.abs(as_uint8 - via_float).max() == 1 and (as_uint8 != via_float).any()
  rows = imresize(image, output_shape=(6, 20))
  np.testing.assert_array_equal(imresize(rows, output_shape=(6, 5)), as_uint8)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_images_keep_their_dtype_and_are_not_rounded(dtype):
  image = np.random.default_rng(1).uniform(0, 255, (9, 7, 3)).astype(dtype)
  out = imresize(image, 1 / 2)
  assert out.dtype == dtype
  expected = imresize(image.astype(np.float64), 1 / 2)
  np.testing.assert_array_equal(out, expected.astype(dtype))
  assert not np.array_equal(expected, np.round(expected))


def test_other_dtypes():
  image = np.random.default_rng(2).integers(0, 60000, (9, 7), dtype=np.uint16)
  out = imresize(image, 1 / 2)
  assert out.dtype == np.uint16
  np.testing.assert_array_equal(out, _slow_imresize(image, (5, 4), (0.5, 0.5)))
  assert imresize(image.astype(np.int64), 2).dtype == np.float64
  assert imresize(image > 30000, 2).dtype == np.float64


# --------------------------------------------------------------------------------------
# Agreement with the slow reimplementation.


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3])
@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_matches_the_slow_reimplementation(scale, dtype):
  rng = np.random.default_rng(round(10 * scale))
  image = rng.integers(0, 256, (13, 11, 3)).astype(dtype)
  if dtype == np.float64:
    image += rng.uniform(-0.5, 0.5, image.shape)
  out = imresize(image, scale)
  expected = _slow_imresize(image, output_size((13, 11), scale), (scale, scale))
  assert out.shape == expected.shape and out.dtype == expected.dtype
  if dtype == np.uint8:
    np.testing.assert_array_equal(out, expected)
  else:
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("out_hw", [(7, 19), (19, 7), (5, 5)])
def test_output_shape_uses_per_axis_scales_and_matlab_axis_order(out_hw):
  image = np.random.default_rng(4).integers(0, 256, (12, 10, 3), dtype=np.uint8)
  scales = (out_hw[0] / 12, out_hw[1] / 10)
  np.testing.assert_array_equal(
    imresize(image, output_shape=out_hw), _slow_imresize(image, out_hw, scales)
  )
  np.testing.assert_array_equal(
    imresize(image[..., 1], output_shape=out_hw), _slow_imresize(image[..., 1], out_hw, scales)
  )


def test_without_antialiasing_downscaling_uses_the_plain_kernel():
  taps = contributions(8, 4, 0.5, antialiasing=False)
  assert taps.weights.shape[1] <= 6
  image = np.random.default_rng(5).uniform(0, 1, (8, 8))
  assert not np.allclose(imresize(image, 0.5, antialiasing=False), imresize(image, 0.5))


# --------------------------------------------------------------------------------------
# Bad input.


def test_bad_arguments_are_rejected_by_name():
  image = np.zeros((8, 8, 3), np.uint8)
  with pytest.raises(ValueError, match="exactly one of `scale` and `output_shape`"):
    imresize(image)
  with pytest.raises(ValueError, match="exactly one"):
    imresize(image, 0.5, output_shape=(4, 4))
  for scale in (0, -1, float("nan"), True, "0.5", [0.5]):
    with pytest.raises(ValueError, match="`scale`"):
      imresize(image, scale)
  with pytest.raises(ValueError, match="`output_shape`"):
    imresize(image, output_shape=(4, 0))
  with pytest.raises(ValueError, match="`output_shape`"):
    imresize(image, output_shape=(4, 4, 3))
  with pytest.raises(ValueError, match=r"`image`.*\(8,\)"):
    imresize(np.zeros(8), 0.5)
  with pytest.raises(ValueError, match="`image`"):
    imresize(np.zeros((0, 4)), 0.5)


def test_public_api():
  assert set(imresize_lib.__all__) == {
    "Contributions",
    "contributions",
    "cubic",
    "imresize",
    "output_size",
  }


def test_docstring_examples_run():
  import doctest  # pylint: disable=g-import-not-at-top

  results = doctest.testmod(imresize_lib, optionflags=doctest.NORMALIZE_WHITESPACE)
  assert results.attempted > 0 and results.failed == 0
