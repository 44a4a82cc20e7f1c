"""PSNR and SSIM as super-resolution papers report them.

Conventions (those of the official cutblur evaluation and of MATLAB/BasicSR):

* Inputs are ``[H, W, C]`` (or ``[H, W]``) images on the [0, 255] range. ``uint8``
  images are used as they are; other dtypes are clipped to [0, 255] and rounded
  half to even to ``uint8`` first, as the official code does with
  ``clamp(0, 255).round().byte()`` before measuring.
* ``crop_border`` pixels are removed from each side before measuring.
* ``y_only=True`` measures the luma of ITU-R BT.601 as MATLAB's ``rgb2ycbcr``
  computes it, ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``. With
  ``round_y=True`` (the default, the official cutblur code's uint8 path) Y is
  rounded to an integer; ``round_y=False`` keeps it as float, as BasicSR does.
  The two differ by about 0.01 to 0.03 dB in PSNR.
* PSNR is ``10 log10(255^2 / MSE)`` over all pixels and channels, in float64;
  identical images give ``inf`` (as the official ``calculate_psnr``), so a mean
  over images that contains one is ``inf`` too.
* SSIM (Wang et al. 2004, as MATLAB's ``ssim_index`` and BasicSR compute it):
  11x11 Gaussian window with sigma 1.5, "valid" filtering (no padding, the
  5-pixel rim has no SSIM value), ``C1 = (0.01 * 255)^2``, ``C2 = (0.03 * 255)^2``,
  variances as ``E[x^2] - mu^2``; the mean of the SSIM map; for RGB, the mean of
  the per-channel SSIMs. The official cutblur code reports no SSIM.

``eval_protocol(dataset, scale)`` gives the ``crop_border``/``y_only`` the
official ``option.py`` uses for a data set name. ``psnr_jax`` and ``ssim_jax``
compute the same metrics in float32 ``jax.numpy`` on batches, for use inside
``jit`` (e.g. validation on device); they agree with the NumPy versions to about
1e-4 dB / 1e-6.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cutblur_jax.data.spec import parse_dataset
from cutblur_jax.image import quantize

__all__ = ["eval_protocol", "psnr", "psnr_jax", "rgb_to_y", "ssim", "ssim_jax", "to_uint8"]

_Y_WEIGHTS = (65.481, 128.553, 24.966)
_SSIM_SIZE = 11
_SSIM_SIGMA = 1.5
_C1 = (0.01 * 255.0) ** 2
_C2 = (0.03 * 255.0) ** 2


def eval_protocol(dataset: str, scale: int) -> dict[str, Any]:
  """The official ``option.py`` evaluation settings for a data set name, as keywords.

  The dict form of ``data.spec.EvalProtocol`` (``parse_dataset(dataset).eval_protocol(scale)``),
  which evaluation takes.

  ``crop_border = (6 if "DIV2K" in dataset else 0) + (scale if "SR" in dataset
  else 4)``, and ``y_only`` is False for DIV2K and denoising ("DN") sets, True
  otherwise. So DIV2K_SR crops ``6 + scale`` on RGB; Set5_SR, Urban100_SR and
  RealSR crop ``scale`` on Y; DIV2K_DN crops 10 on RGB. The embedded data set
  (``"embedded"``) is treated as an SR benchmark: crop ``scale``, Y. A ``tfds:`` copy gets
  the protocol of the data it holds (``cutblur_jax.data.spec.parse_dataset``).

  Args:
    dataset: a data set name as the official CLI spells it (e.g. "DIV2K_SR").

  Raises:
    ValueError: an unknown data set name (listing the known ones) or a bad scale.
    scale: the super-resolution factor.

  Returns:
    ``{"crop_border": int, "y_only": bool}``, ready to pass as keywords.

  Examples:
    >>> eval_protocol("DIV2K_SR", 4)
    {'crop_border': 10, 'y_only': False}
    >>> eval_protocol("Set5_SR", 2)
    {'crop_border': 2, 'y_only': True}
  """
  if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
    raise ValueError(f"`scale` must be a positive integer, got {scale!r}.")
  return parse_dataset(dataset).eval_protocol(int(scale)).as_dict()


def to_uint8(image: Any, name: str = "image") -> np.ndarray:
  """``uint8`` as measured: uint8 unchanged, else clipped to [0, 255] and rounded half to even.

  Args:
    image: array-like on [0, 255].
    name: argument name used in error messages.

  Returns:
    A ``uint8`` NumPy array of the same shape.

  Examples:
    >>> to_uint8(np.array([-3.0, 0.5, 1.5, 254.6, 300.0]))
    array([  0,   0,   2, 255, 255], dtype=uint8)
  """
  image = np.asarray(image)
  if image.dtype == np.uint8:
    return image
  if image.dtype == np.bool_ or not (np.issubdtype(image.dtype, np.number)):
    raise TypeError(f"`{name}` must be a numeric image, got dtype {image.dtype}.")
  if np.issubdtype(image.dtype, np.complexfloating):
    raise TypeError(f"`{name}` must be real, got dtype {image.dtype}.")
  image = image.astype(np.float64)
  if not np.isfinite(image).all():
    raise ValueError(f"`{name}` contains NaN or infinite values.")
  return quantize(image)


def rgb_to_y(image: Any, *, round_y: bool = True) -> np.ndarray:
  """BT.601 luma of a ``[..., 3]`` RGB image on [0, 255] (MATLAB ``rgb2ycbcr``).

  Args:
    image: ``[..., 3]`` RGB, uint8 or float on [0, 255] (not rounded here).
    round_y: round Y to integers (half to even, the official code's
      ``rgb2ycbcr`` on uint8); False keeps float64 Y (BasicSR).

  Returns:
    float64 ``[...]`` Y on [16, 235].

  Examples:
    >>> rgb_to_y(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0]], np.uint8))
    array([235.,  16.,  81.])
  """
  image = np.asarray(image)
  if image.shape[-1:] != (3,):
    raise ValueError(f"Y needs an RGB image [..., 3], got shape {image.shape}.")
  luma = np.dot(image.astype(np.float64), np.array(_Y_WEIGHTS)) / 255.0 + 16.0
  return np.round(luma) if round_y else luma


def _prepare(
  img1: Any, img2: Any, crop_border: int, y_only: bool, round_y: bool
) -> tuple[np.ndarray, np.ndarray]:
  """Rounds, checks, crops and converts both images to float64 ``[H, W, C]``."""
  a, b = to_uint8(img1, "img1"), to_uint8(img2, "img2")
  if a.shape != b.shape:
    raise ValueError(f"`img1` and `img2` must have the same shape, got {a.shape} and {b.shape}.")
  if a.ndim == 2:
    a, b = a[..., None], b[..., None]
  if a.ndim != 3:
    raise ValueError(f"`img1` and `img2` must be [H, W] or [H, W, C], got shape {a.shape}.")
  if (
    isinstance(crop_border, bool)
    or not isinstance(crop_border, (int, np.integer))
    or (crop_border < 0)
  ):
    raise ValueError(f"`crop_border` must be a non-negative integer, got {crop_border!r}.")
  height, width = a.shape[:2]
  if 2 * crop_border >= min(height, width):
    raise ValueError(f"`crop_border`={crop_border} leaves nothing of a {height}x{width} image.")
  if crop_border:
    a = a[crop_border:-crop_border, crop_border:-crop_border]
    b = b[crop_border:-crop_border, crop_border:-crop_border]
  if y_only:
    if a.shape[-1] != 3:
      raise ValueError(f"`y_only=True` needs RGB images [H, W, 3], got shape {a.shape}.")
    return rgb_to_y(a, round_y=round_y)[..., None], rgb_to_y(b, round_y=round_y)[..., None]
  return a.astype(np.float64), b.astype(np.float64)


def psnr(
  img1: Any, img2: Any, *, crop_border: int = 0, y_only: bool = False, round_y: bool = True
) -> float:
  """Peak signal-to-noise ratio in dB, with the papers' conventions.

  Args:
    img1, img2: ``[H, W, C]`` or ``[H, W]`` images on [0, 255] of the same
      shape (non-uint8 input is clipped and rounded to uint8 first).
    crop_border: pixels removed from each side before measuring.
    y_only: measure the BT.601 Y channel of RGB images instead of RGB.
    round_y: with ``y_only``, round Y to integers (official cutblur) or keep
      it float (BasicSR).

  Returns:
    ``10 log10(255^2 / MSE)`` as a Python float; ``inf`` for identical images.

  Raises:
    ValueError: on different shapes (naming ``img1``/``img2``), a
      ``crop_border`` that leaves nothing, NaN values, or ``y_only`` without 3
      channels.

  Examples:
    >>> a = np.zeros((8, 8, 3), np.uint8)
    >>> round(psnr(a, a + 1), 4)
    48.1308
  """
  a, b = _prepare(img1, img2, crop_border, y_only, round_y)
  mse = float(np.mean((a - b) ** 2))
  if mse == 0.0:
    return math.inf
  return 10.0 * math.log10(255.0**2 / mse)


def _gaussian_window() -> np.ndarray:
  """The normalised 1-D Gaussian (size 11, sigma 1.5); the 2-D window is its outer product."""
  x = np.arange(_SSIM_SIZE, dtype=np.float64) - (_SSIM_SIZE - 1) / 2
  window = np.exp(-(x**2) / (2.0 * _SSIM_SIGMA**2))
  return window / window.sum()


def _filter_valid(image: np.ndarray, window: np.ndarray) -> np.ndarray:
  """Separable "valid" correlation of ``[H, W, C]`` with ``outer(window, window)``."""
  from scipy import ndimage  # pylint: disable=g-import-not-at-top  (scikit-image needs scipy)

  rim = window.shape[0] // 2
  # Zero padding only touches the rim that "valid" filtering drops afterwards.
  rows = ndimage.correlate1d(image, window, axis=0, mode="constant")[rim:-rim]
  return ndimage.correlate1d(rows, window, axis=1, mode="constant")[:, rim:-rim]


def ssim(
  img1: Any, img2: Any, *, crop_border: int = 0, y_only: bool = False, round_y: bool = True
) -> float:
  """Structural similarity (MATLAB ``ssim_index`` / BasicSR conventions).

  Args:
    img1, img2: ``[H, W, C]`` or ``[H, W]`` images on [0, 255] of the same
      shape (non-uint8 input is clipped and rounded to uint8 first); at least
      11x11 after cropping.
    crop_border: pixels removed from each side before measuring.
    y_only: measure the BT.601 Y channel of RGB images instead of RGB.
    round_y: with ``y_only``, round Y to integers (official) or not (BasicSR).

  Returns:
    The mean SSIM (mean over channels for RGB) as a Python float; 1.0 for
    identical images.

  Raises:
    ValueError: as ``psnr``, and for images smaller than the 11x11 window.

  Examples:
    >>> rng = np.random.default_rng(0)
    >>> a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    >>> ssim(a, a)
    1.0
  """
  a, b = _prepare(img1, img2, crop_border, y_only, round_y)
  if min(a.shape[:2]) < _SSIM_SIZE:
    raise ValueError(
      f"SSIM needs images of at least {_SSIM_SIZE}x{_SSIM_SIZE} after "
      f"cropping, got {a.shape[0]}x{a.shape[1]}."
    )
  window = _gaussian_window()
  mu_a, mu_b = _filter_valid(a, window), _filter_valid(b, window)
  var_a = _filter_valid(a * a, window) - mu_a * mu_a
  var_b = _filter_valid(b * b, window) - mu_b * mu_b
  cov = _filter_valid(a * b, window) - mu_a * mu_b
  ssim_map = ((2.0 * mu_a * mu_b + _C1) * (2.0 * cov + _C2)) / (
    (mu_a * mu_a + mu_b * mu_b + _C1) * (var_a + var_b + _C2)
  )
  return float(np.mean(ssim_map.mean(axis=(0, 1))))


# ------------------------------------------------------------------------------------------
# jax.numpy versions for use inside jit.


def _prepare_jax(
  img1: jax.Array, img2: jax.Array, crop_border: int, y_only: bool, round_y: bool
) -> tuple[jax.Array, jax.Array]:
  if img1.shape != img2.shape:
    raise ValueError(
      f"`img1` and `img2` must have the same shape, got {img1.shape} and {img2.shape}."
    )
  if img1.ndim < 3:
    raise ValueError(f"`img1` and `img2` must be [..., H, W, C], got shape {img1.shape}.")
  if (
    isinstance(crop_border, bool)
    or not isinstance(crop_border, (int, np.integer))
    or (crop_border < 0)
  ):
    raise ValueError(f"`crop_border` must be a non-negative integer, got {crop_border!r}.")
  height, width = img1.shape[-3:-1]
  if 2 * crop_border >= min(height, width):
    raise ValueError(f"`crop_border`={crop_border} leaves nothing of a {height}x{width} image.")

  def prepare(image):
    if image.dtype != jnp.uint8:
      image = quantize(image)
    image = image.astype(jnp.float32)
    if crop_border:
      image = image[..., crop_border:-crop_border, crop_border:-crop_border, :]
    if y_only:
      if image.shape[-1] != 3:
        raise ValueError(f"`y_only=True` needs RGB images [..., 3], got shape {image.shape}.")
      # Elementwise, not a matmul: GPUs may run float32 matmuls in TF32.
      luma = (
        image[..., 0] * _Y_WEIGHTS[0]
        + image[..., 1] * _Y_WEIGHTS[1]
        + image[..., 2] * _Y_WEIGHTS[2]
      ) / 255.0 + 16.0
      image = (jnp.round(luma) if round_y else luma)[..., None]
    return image

  return prepare(jnp.asarray(img1)), prepare(jnp.asarray(img2))


def psnr_jax(
  img1: jax.Array,
  img2: jax.Array,
  *,
  crop_border: int = 0,
  y_only: bool = False,
  round_y: bool = True,
) -> jax.Array:
  """``psnr`` in float32 ``jax.numpy`` for ``[..., H, W, C]`` batches; jit-compatible.

  The keyword options are static (Python values). Non-uint8 input is clipped
  and rounded half to even, as in ``psnr``.

  Returns:
    float32 PSNR per image, shape ``[...]`` (``inf`` where identical).

  Examples:
    >>> a = jnp.zeros((2, 8, 8, 3), jnp.uint8)
    >>> psnr_jax(a, a + 1).round(4)
    Array([48.1308, 48.1308], dtype=float32)
  """
  a, b = _prepare_jax(img1, img2, crop_border, y_only, round_y)
  mse = jnp.mean(jnp.square(a - b), axis=(-3, -2, -1))
  return 10.0 * jnp.log10(255.0**2 / mse)


def ssim_jax(
  img1: jax.Array,
  img2: jax.Array,
  *,
  crop_border: int = 0,
  y_only: bool = False,
  round_y: bool = True,
) -> jax.Array:
  """``ssim`` in float32 ``jax.numpy`` for ``[..., H, W, C]`` batches; jit-compatible.

  Returns:
    float32 SSIM per image (mean over channels), shape ``[...]``.

  Examples:
    >>> a = jnp.zeros((16, 16, 3), jnp.uint8)
    >>> ssim_jax(a, a)
    Array(1., dtype=float32)
  """
  a, b = _prepare_jax(img1, img2, crop_border, y_only, round_y)
  if min(a.shape[-3:-1]) < _SSIM_SIZE:
    raise ValueError(
      f"SSIM needs images of at least {_SSIM_SIZE}x{_SSIM_SIZE} after "
      f"cropping, got {a.shape[-3]}x{a.shape[-2]}."
    )
  window = jnp.asarray(_gaussian_window(), jnp.float32)
  size = _SSIM_SIZE

  def filt(x):
    height, width = x.shape[-3:-1]
    rows = sum(window[k] * x[..., k : height - size + 1 + k, :, :] for k in range(size))
    return sum(window[k] * rows[..., k : width - size + 1 + k, :] for k in range(size))

  # Variances from centred images: E[x^2] - mu^2 loses digits in float32.
  offset = 0.5 * (
    jnp.mean(a, axis=(-3, -2), keepdims=True) + jnp.mean(b, axis=(-3, -2), keepdims=True)
  )
  a, b = a - offset, b - offset
  mu_a, mu_b = filt(a), filt(b)
  var_a = filt(a * a) - mu_a * mu_a
  var_b = filt(b * b) - mu_b * mu_b
  cov = filt(a * b) - mu_a * mu_b
  mu_a, mu_b = mu_a + offset, mu_b + offset
  ssim_map = ((2.0 * mu_a * mu_b + _C1) * (2.0 * cov + _C2)) / (
    (mu_a * mu_a + mu_b * mu_b + _C1) * (var_a + var_b + _C2)
  )
  return jnp.mean(ssim_map, axis=(-3, -2, -1))
