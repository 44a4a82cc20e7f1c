"""Degradations that synthesise a pair's low-quality input from HR, and pair alignment.

* ``bicubic_downsample``: DIV2K's bicubic LR, MATLAB ``imresize`` of the mod-cropped HR.
* ``gaussian_noise``: white Gaussian noise of ``sigma`` (denoising, ``*_DN``), seeded.
* ``jpeg_compress``: Pillow's JPEG encoder at ``quality`` (``*_JPEG``).
* ``Degradation``: one of them as a value a data set holds; ``Degradation(...)(name, hr)``
  gives ``(hr, lr)``, the noise seeded by ``(noise_seed, crc32(name))`` so an image's
  noise does not depend on the split or the order.
* ``align_pair``: checks that HR is ``input_scale`` times LR and drops a small remainder.
"""

from __future__ import annotations

import dataclasses
import io as _io
import zlib

import numpy as np
from PIL import Image

from cutblur_jax.data.bicubic import imresize
from cutblur_jax.data.types import ImagePair
from cutblur_jax.image import quantize

__all__ = [
  "Degradation",
  "align_pair",
  "bicubic_downsample",
  "gaussian_noise",
  "jpeg_compress",
  "modcrop",
]


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
  """Crops the bottom/right so that height and width are multiples of ``scale``.

  Args:
    image: ``[H, W, C]`` array.
    scale: positive integer.

  Returns:
    ``image[:H - H % scale, :W - W % scale]`` (a view).

  Examples:
    >>> modcrop(np.zeros((10, 7, 3), np.uint8), 4).shape
    (8, 4, 3)
  """
  height, width = image.shape[:2]
  return image[: height - height % scale, : width - width % scale]


def bicubic_downsample(hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
  """Makes a DIV2K-style bicubic LR image from HR with MATLAB ``imresize``.

  Args:
    hr: ``uint8 [H, W, 3]`` image.
    scale: integer downscaling factor.

  Returns:
    ``(hr_cropped, lr)``: HR mod-cropped to a multiple of ``scale`` and its
    ``uint8 [H // scale, W // scale, 3]`` LR (MATLAB rounding).

  Examples:
    >>> hr, lr = bicubic_downsample(np.zeros((10, 9, 3), np.uint8), 2)
    >>> hr.shape, lr.shape
    ((10, 8, 3), (5, 4, 3))
  """
  hr = modcrop(hr, scale)
  return hr, imresize(hr, 1.0 / scale)  # uint8 in, uint8 out (MATLAB rounding)


def gaussian_noise(image: np.ndarray, sigma: float, *, seed) -> np.ndarray:
  """Adds white Gaussian noise of standard deviation ``sigma`` (on [0, 255]).

  Args:
    image: ``uint8`` image.
    sigma: noise standard deviation in pixel units (the reference's ``sigma``).
    seed: anything ``np.random.default_rng`` accepts (an int or a sequence of
      ints); the same seed gives the same noise.

  Returns:
    ``uint8`` image: ``image + noise`` rounded and clipped to [0, 255].

  Examples:
    >>> noisy = gaussian_noise(np.full((4, 4, 3), 128, np.uint8), 10, seed=0)
    >>> noisy.dtype
    dtype('uint8')
  """
  if sigma < 0:
    raise ValueError(f"`sigma` must be non-negative, got {sigma}.")
  rng = np.random.default_rng(seed)
  noisy = image.astype(np.float64) + rng.normal(0.0, sigma, size=image.shape)
  return quantize(noisy, rounding="half_away")  # MATLAB's uint8(), as the reference's data


def jpeg_compress(image: np.ndarray, quality: int) -> np.ndarray:
  """Encodes with Pillow's JPEG encoder at ``quality`` and decodes again.

  Pillow's defaults apply (4:2:0 chroma subsampling, its quantisation tables);
  MATLAB ``imwrite`` differs slightly, so use a prepared folder to compare with
  published numbers exactly.

  Args:
    image: ``uint8 [H, W, 3]`` image.
    quality: JPEG quality, 1 to 100 (Pillow's scale, as the reference's ``quality``).

  Returns:
    The decoded ``uint8 [H, W, 3]`` image with JPEG artifacts.

  Examples:
    >>> jpeg_compress(np.zeros((8, 8, 3), np.uint8), 10).shape
    (8, 8, 3)
  """
  if not 1 <= int(quality) <= 100:
    raise ValueError(f"`quality` must be in [1, 100], got {quality}.")
  buffer = _io.BytesIO()
  Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="JPEG", quality=int(quality))
  buffer.seek(0)
  with Image.open(buffer) as decoded:
    return np.asarray(decoded.convert("RGB"))


@dataclasses.dataclass(frozen=True)
class Degradation:
  """Synthesises the low-quality input of a pair from its HR image.

  Attributes:
    kind: "bicubic" (``scale``), "noise" (``sigma``, ``noise_seed``) or "jpeg"
      (``quality``).
  """

  kind: str
  scale: int = 1
  sigma: float = 0.0
  noise_seed: int = 0
  quality: int = 10

  def __post_init__(self):
    if self.kind not in ("bicubic", "noise", "jpeg"):
      raise ValueError(f"Degradation `kind` must be bicubic, noise or jpeg, got {self.kind!r}.")

  @classmethod
  def for_task(
    cls, task: str, *, scale: int = 1, sigma: float = 0.0, quality: int = 10, noise_seed: int = 0
  ) -> "Degradation":
    """The degradation that makes a ``task``'s input: SR bicubic, DN noise, JPEG artifacts.

    Examples:
      >>> Degradation.for_task("DN", sigma=30).kind
      'noise'
    """
    kinds = {
      "SR": cls("bicubic", scale=int(scale)),
      "DN": cls("noise", sigma=float(sigma), noise_seed=int(noise_seed)),
      "JPEG": cls("jpeg", quality=int(quality)),
    }
    if task not in kinds:
      raise ValueError(f"Unknown task {task!r}; use SR, DN or JPEG.")
    return kinds[task]

  def __call__(self, name: str, hr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(hr, lr)`` for the image called ``name``."""
    if self.kind == "bicubic":
      return bicubic_downsample(hr, self.scale)
    if self.kind == "noise":
      seed = (int(self.noise_seed), zlib.crc32(name.encode("utf-8")))
      return hr, gaussian_noise(hr, self.sigma, seed=seed)
    return hr, jpeg_compress(hr, self.quality)


def align_pair(
  hr: np.ndarray, lr: np.ndarray, input_scale: int, *, hr_source: str = "HR", lr_source: str = "LR"
) -> tuple[np.ndarray, np.ndarray]:
  """Checks that ``hr`` is ``input_scale`` times ``lr`` and aligns a small remainder.

  Args:
    hr: ``[H, W, C]`` HR image.
    lr: ``[h, w, C]`` LR image.
    input_scale: size ratio HR / LR (1 for same-size pairs).
    hr_source: the HR file (or record) named in errors.
    lr_source: the LR file named in errors.

  Returns:
    ``(hr, lr)`` cropped at the bottom/right so that
    ``hr.shape[:2] == (lr.shape[0] * input_scale, lr.shape[1] * input_scale)``.

  Raises:
    ValueError: if a side is off by ``input_scale`` pixels or more, naming both sources.

  Examples:
    >>> hr, lr = align_pair(np.zeros((9, 8, 3)), np.zeros((4, 4, 3)), 2)
    >>> hr.shape
    (8, 8, 3)
  """
  rows, cols = [], []
  for axis, out in ((0, rows), (1, cols)):
    big, small = hr.shape[axis], lr.shape[axis]
    if abs(big - small * input_scale) >= input_scale:
      raise ValueError(
        f"HR {hr_source} has shape {hr.shape[:2]} but LR {lr_source} has shape "
        f"{lr.shape[:2]}: HR must be {input_scale} times LR."
      )
    small = min(small, big // input_scale)
    out.append(small)
  return (hr[: rows[0] * input_scale, : cols[0] * input_scale], lr[: rows[0], : cols[0]])


def center_crop_pair(pair: ImagePair, max_size: int, input_scale: int) -> ImagePair:
  """Centre-crops a pair to at most ``max_size`` HR pixels a side, keeping HR and LR aligned.

  The crop offsets are multiples of ``input_scale`` so the LR crop covers
  exactly the HR crop. A quick-look option, not the papers' protocol.

  Examples:
    >>> pair = ImagePair("x", np.zeros((40, 64, 3), np.uint8), np.zeros((10, 16, 3), np.uint8))
    >>> cropped = center_crop_pair(pair, 32, 4)
    >>> cropped.hr.shape, cropped.lr.shape
    ((32, 32, 3), (8, 8, 3))
  """
  lr_h, lr_w = pair.lr.shape[:2]
  size = max(1, max_size // input_scale)
  new_h, new_w = min(lr_h, size), min(lr_w, size)
  top, left = (lr_h - new_h) // 2, (lr_w - new_w) // 2
  s = input_scale
  return ImagePair(
    pair.name,
    np.ascontiguousarray(pair.hr[top * s : (top + new_h) * s, left * s : (left + new_w) * s]),
    np.ascontiguousarray(pair.lr[top : top + new_h, left : left + new_w]),
  )
