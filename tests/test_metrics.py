"""PSNR/SSIM: hand-computed cases, skimage where conventions agree, Y, cropping, JAX versions."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from cutblur_jax import metrics
from cutblur_jax.metrics import eval_protocol, psnr, psnr_jax, rgb_to_y, ssim, ssim_jax, to_uint8


def _pair(seed=0, shape=(40, 36, 3), noise=20):
  rng = np.random.default_rng(seed)
  a = rng.integers(0, 256, shape, dtype=np.uint8)
  b = np.clip(a.astype(int) + rng.integers(-noise, noise + 1, shape), 0, 255).astype(np.uint8)
  return a, b


def _skimage_ssim(a, b):
  kwargs = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
  if a.ndim == 3:
    kwargs["channel_axis"] = -1
  return structural_similarity(a.astype(np.float64), b.astype(np.float64), **kwargs)


# --------------------------------------------------------------------------------------
# PSNR.


def test_psnr_hand_computed():
  a = np.zeros((4, 4, 3), np.uint8)
  assert psnr(a, a + 1) == pytest.approx(10 * math.log10(255**2), abs=1e-12)  # MSE 1: 48.13 dB
  b = a.copy()
  b[:2] = 2  # Half the pixels off by 2: MSE 2.
  assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 2), abs=1e-12)
  assert psnr(a, np.full_like(a, 255)) == 0.0


def test_psnr_of_identical_images_is_inf():
  a, _ = _pair()
  assert psnr(a, a) == math.inf
  assert psnr(a, a.astype(np.float32) + 0.4) == math.inf  # Rounds back to a.


def test_psnr_matches_skimage_on_rgb_and_gray():
  a, b = _pair(1)
  assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-10)
  assert psnr(a[..., 0], b[..., 0]) == pytest.approx(
    peak_signal_noise_ratio(a[..., 0], b[..., 0], data_range=255), abs=1e-10
  )


def test_crop_border_removes_pixels_on_each_side():
  a = np.full((20, 16, 3), 100, np.uint8)
  b = a.copy()
  b[:2, :, 0] = 0
  b[:, -2:, 1] = 0
  assert psnr(a, b, crop_border=2) == math.inf
  # crop_border=1 keeps one bad row of 14 pixels (R) and one bad column of 18 pixels (G).
  mse = (14 + 18) * 100**2 / (18 * 14 * 3)
  assert psnr(a, b, crop_border=1) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-12)
  c, d = _pair(2)
  assert psnr(c, d, crop_border=3) == psnr(c[3:-3, 3:-3], d[3:-3, 3:-3])
  assert ssim(c, d, crop_border=3) == ssim(c[3:-3, 3:-3], d[3:-3, 3:-3])
  assert psnr(c, d, crop_border=0) == psnr(c, d)


def test_float_inputs_are_clipped_and_rounded_half_to_even():
  np.testing.assert_array_equal(
    to_uint8(np.array([-3.0, 0.5, 1.5, 2.5, 254.5, 254.6, 300.0])), [0, 0, 2, 2, 254, 255, 255]
  )
  a, b = _pair(3)
  assert psnr(a.astype(np.float64) + 0.49, b) == psnr(a, b)
  assert ssim(a.astype(np.float32), b.astype(np.float64) - 0.3) == ssim(a, b)
  assert psnr(a.astype(np.int64), b) == psnr(a, b)


# --------------------------------------------------------------------------------------
# Y channel.


def test_y_conversion_constants():
  rgb = np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
  exact = np.array([235.0, 16.0, 16 + 65.481, 16 + 128.553, 16 + 24.966])
  np.testing.assert_allclose(rgb_to_y(rgb, round_y=False), exact, atol=1e-12)
  np.testing.assert_array_equal(rgb_to_y(rgb), [235, 16, 81, 145, 41])
  with pytest.raises(ValueError, match="RGB"):
    rgb_to_y(np.zeros((4, 4), np.uint8))


def test_y_psnr_hand_computed_rounded_and_float():
  black = np.zeros((4, 4, 3), np.uint8)
  red = black.copy()
  red[..., 0] = 255
  assert psnr(black, red, y_only=True) == pytest.approx(20 * math.log10(255 / 65), abs=1e-12)
  assert psnr(black, red, y_only=True, round_y=False) == pytest.approx(
    20 * math.log10(255 / 65.481), abs=1e-12
  )


def test_y_metrics_match_skimage_on_float_y():
  a, b = _pair(4)
  ya, yb = rgb_to_y(a, round_y=False), rgb_to_y(b, round_y=False)
  assert psnr(a, b, y_only=True, round_y=False) == pytest.approx(
    peak_signal_noise_ratio(ya, yb, data_range=255), abs=1e-10
  )
  assert ssim(a, b, y_only=True, round_y=False) == pytest.approx(_skimage_ssim(ya, yb), abs=1e-12)
  # Rounded Y (official) is the same computation on integer Y.
  assert psnr(a, b, y_only=True) == pytest.approx(
    peak_signal_noise_ratio(np.round(ya), np.round(yb), data_range=255), abs=1e-10
  )
  assert psnr(a, b, y_only=True) != psnr(a, b, y_only=True, round_y=False)


def test_y_only_needs_three_channels():
  with pytest.raises(ValueError, match=r"y_only=True.*\[H, W, 3\]"):
    psnr(np.zeros((16, 16), np.uint8), np.zeros((16, 16), np.uint8), y_only=True)


# --------------------------------------------------------------------------------------
# SSIM.


def _gaussian_11():
  g = [math.exp(-((i - 5) ** 2) / (2 * 1.5**2)) for i in range(11)]
  total = sum(g)
  return [v / total for v in g]


def test_ssim_of_one_window_worked_by_hand():
  # An 11x11 image has exactly one valid window: the SSIM formula written out directly.
  rng = np.random.default_rng(5)
  a = rng.integers(0, 256, (11, 11)).astype(np.uint8)
  b = rng.integers(0, 256, (11, 11)).astype(np.uint8)
  g = _gaussian_11()
  w = [[g[i] * g[j] for j in range(11)] for i in range(11)]

  def wmean(f):
    return sum(w[i][j] * f(i, j) for i in range(11) for j in range(11))

  x, y = a.astype(float), b.astype(float)
  mx, my = wmean(lambda i, j: x[i, j]), wmean(lambda i, j: y[i, j])
  vx = wmean(lambda i, j: x[i, j] ** 2) - mx**2
  vy = wmean(lambda i, j: y[i, j] ** 2) - my**2
  cxy = wmean(lambda i, j: x[i, j] * y[i, j]) - mx * my
  c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
  expected = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
  assert ssim(a, b) == pytest.approx(expected, abs=1e-12)


def test_ssim_of_constant_images():
  a = np.full((16, 16, 3), 100, np.uint8)
  b = np.full((16, 16, 3), 110, np.uint8)
  c1 = (0.01 * 255) ** 2
  assert ssim(a, b) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1), abs=1e-12)
  assert ssim(a, a) == 1.0


def test_ssim_matches_skimage_rgb_and_gray():
  a, b = _pair(6, shape=(45, 37, 3))
  assert ssim(a, b) == pytest.approx(_skimage_ssim(a, b), abs=1e-12)
  assert ssim(a[..., 2], b[..., 2]) == pytest.approx(_skimage_ssim(a[..., 2], b[..., 2]), abs=1e-12)
  per_channel = [ssim(a[..., c], b[..., c]) for c in range(3)]
  assert ssim(a, b) == pytest.approx(np.mean(per_channel), abs=1e-15)


def test_ssim_ignores_the_rim_without_valid_windows():
  # "valid" filtering: a pixel changed in a corner sits in exactly one of the 11 x 11
  # windows of the map, the top-left one, with weight w = g[0]^2; the other 120 stay 1.
  a = np.full((21, 21), 128, np.uint8)
  b = a.copy()
  b[0, 0] = 0
  w = _gaussian_11()[0] ** 2
  mu_b = 128 * (1 - w)
  var_b = 128**2 * (1 - w) - mu_b**2  # E[b^2] - mu_b^2; var_a = cov = 0
  c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
  corner = (2 * 128 * mu_b + c1) * c2 / ((128**2 + mu_b**2 + c1) * (var_b + c2))
  assert ssim(a, b) == pytest.approx((120 + corner) / 121, abs=1e-12)
  c, d = a.copy(), a.copy()
  d[10, 10] = 0  # The centre pixel is in every window: it lowers SSIM far more.
  assert ssim(c, d) < ssim(a, b) < 1.0


def test_ssim_needs_an_11x11_image():
  with pytest.raises(ValueError, match="11x11"):
    ssim(np.zeros((10, 30, 3), np.uint8), np.zeros((10, 30, 3), np.uint8))
  with pytest.raises(ValueError, match="11x11"):
    ssim(np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20, 3), np.uint8), crop_border=5)


# --------------------------------------------------------------------------------------
# Bad input.


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_bad_input_is_rejected_by_name(metric):
  a = np.zeros((16, 16, 3), np.uint8)
  with pytest.raises(ValueError, match=r"`img1` and `img2`.*\(16, 16, 3\) and \(16, 15, 3\)"):
    metric(a, a[:, :15])
  with pytest.raises(ValueError, match="crop_border"):
    metric(a, a, crop_border=8)
  with pytest.raises(ValueError, match="crop_border"):
    metric(a, a, crop_border=-1)
  with pytest.raises(ValueError, match="`img2` contains NaN"):
    metric(a, np.full((16, 16, 3), np.nan))
  with pytest.raises(TypeError, match="`img1`"):
    metric(np.zeros((16, 16, 3), bool), a)
  with pytest.raises(ValueError, match=r"\[H, W\] or \[H, W, C\]"):
    metric(np.zeros((2, 16, 16, 3), np.uint8), np.zeros((2, 16, 16, 3), np.uint8))


# --------------------------------------------------------------------------------------
# The official protocol.


@pytest.mark.parametrize(
  "dataset,scale,expected",
  [
    ("DIV2K_SR", 2, (8, False)),
    ("DIV2K_SR", 4, (10, False)),
    ("Set5_SR", 4, (4, True)),
    ("Set14_SR", 3, (3, True)),
    ("Urban100_SR", 2, (2, True)),
    ("RealSR", 3, (3, True)),
    ("DIV2K_DN", 4, (10, False)),
    ("DIV2K_JPEG", 4, (10, False)),
    ("Set5_DN", 4, (4, False)),
    ("LIVE1_JPEG", 4, (4, True)),
    ("embedded", 2, (2, True)),
    ("embedded", 4, (4, True)),
  ],
)
def test_eval_protocol_is_option_py(dataset, scale, expected):
  assert eval_protocol(dataset, scale) == {"crop_border": expected[0], "y_only": expected[1]}


def test_eval_protocol_rejects_bad_arguments():
  with pytest.raises(ValueError, match="`scale`"):
    eval_protocol("Set5_SR", 0)
  with pytest.raises(TypeError, match="`dataset`"):
    eval_protocol(5, 2)


def test_protocol_presets_feed_the_metrics():
  a, b = _pair(7)
  protocol = eval_protocol("Set5_SR", 4)
  assert psnr(a, b, **protocol) == psnr(a, b, crop_border=4, y_only=True)
  assert ssim(a, b, **protocol) == ssim(a, b, crop_border=4, y_only=True)


# --------------------------------------------------------------------------------------
# jax.numpy versions: eager, jit and vmap agree with NumPy.


@pytest.mark.parametrize(
  "options",
  [{}, {"crop_border": 2}, {"y_only": True}, {"y_only": True, "round_y": False, "crop_border": 3}],
)
def test_jax_metrics_match_numpy_eagerly_under_jit_and_vmap(options):
  a, b = _pair(8, shape=(2, 24, 20, 3))
  expected_psnr = [psnr(a[i], b[i], **options) for i in range(2)]
  expected_ssim = [ssim(a[i], b[i], **options) for i in range(2)]
  jitted_psnr = jax.jit(lambda x, y: psnr_jax(x, y, **options))
  jitted_ssim = jax.jit(lambda x, y: ssim_jax(x, y, **options))
  for got_psnr, got_ssim in [
    (psnr_jax(a, b, **options), ssim_jax(a, b, **options)),
    (jitted_psnr(a, b), jitted_ssim(a, b)),
    (
      jax.vmap(lambda x, y: psnr_jax(x, y, **options))(a, b),
      jax.vmap(lambda x, y: ssim_jax(x, y, **options))(a, b),
    ),
  ]:
    assert got_psnr.shape == (2,) and got_ssim.shape == (2,)
    np.testing.assert_allclose(got_psnr, expected_psnr, rtol=0, atol=1e-3)
    np.testing.assert_allclose(got_ssim, expected_ssim, rtol=0, atol=1e-5)


def test_jax_metrics_round_float_inputs_and_handle_identity():
  a, b = _pair(9, shape=(16, 16, 3))
  fa = jnp.asarray(a, jnp.float32) + 0.3
  assert float(psnr_jax(fa, b)) == pytest.approx(psnr(a, b), abs=1e-3)
  assert float(psnr_jax(a, a)) == math.inf
  assert float(ssim_jax(a, a)) == pytest.approx(1.0, abs=1e-6)
  with pytest.raises(ValueError, match="`img1` and `img2`"):
    psnr_jax(a, a[:8])
  with pytest.raises(ValueError, match="11x11"):
    ssim_jax(a[:10], b[:10])


def test_public_api():
  assert set(metrics.__all__) == {
    "eval_protocol",
    "psnr",
    "psnr_jax",
    "rgb_to_y",
    "ssim",
    "ssim_jax",
    "to_uint8",
  }


def test_docstring_examples_run():
  import doctest  # pylint: disable=g-import-not-at-top

  results = doctest.testmod(metrics, optionflags=doctest.NORMALIZE_WHITESPACE)
  assert results.attempted > 0 and results.failed == 0
