"""The embedded default data set: scikit-image's RGB photos, no download needed.

A new user with no data set can train and evaluate at once on real photos. The
images are the colour photos that ship inside the scikit-image wheel (those
``skimage.data`` loads from its own package directory, never through pooch), with
a fixed split:

* train (7): ``astronaut`` (512x512 portrait), ``coffee`` (400x600 still life),
  ``colorwheel`` (370x371 synthetic colour gradients), ``hubble_deep_field``
  (872x1000 astronomy), ``immunohistochemistry`` (512x512 microscopy),
  ``retina`` (1411x1411 fundus photo), ``rocket`` (427x640 launch scene).
* validation (2, held out): ``chelsea`` (300x451 cat: fur, whiskers, soft
  background) and ``stereo_motorcycle`` (500x741 left view: man-made edges,
  spokes, printed text). One natural and one man-made scene, neither of which
  resembles a training image closely.

Each HR photo is optionally centre-cropped to ``max_size`` (both sides), then
mod-cropped to a multiple of ``scale`` (top-left kept, as the reference's data
loaders do), and its LR image is MATLAB-bicubic ``imresize(hr, 1/scale)``
rounded to ``uint8`` (half away from zero), exactly as DIV2K's LR images were made.
With a ``Degradation`` of kind ``"noise"`` or ``"jpeg"`` (``embedded_DN``,
``embedded_JPEG``), the input is instead the same-size photo with seeded Gaussian noise
or JPEG artifacts, and ``scale`` is 1.

Invariants: every ``ImagePair`` holds read-only, C-contiguous ``uint8`` arrays,
``hr.shape == (lr.shape[0] * scale, lr.shape[1] * scale, 3)``; the pairs are
built once per ``(split, scale, max_size)`` and cached in memory (a process-wide
``functools.lru_cache``), so repeated calls are free and return equal data.
"""

from __future__ import annotations

import collections.abc
import functools
from collections.abc import Sequence

import numpy as np

from cutblur_jax.data.bicubic import imresize
from cutblur_jax.data.degradations import Degradation
from cutblur_jax.data.spec import DataSpec
from cutblur_jax.data.types import ImagePair

__all__ = [
  "EmbeddedDataset",
  "TRAIN_IMAGES",
  "VALIDATION_IMAGES",
  "embedded_dataset",
  "embedded_source",
  "load_photo",
]

TRAIN_IMAGES = (
  "astronaut",
  "coffee",
  "colorwheel",
  "hubble_deep_field",
  "immunohistochemistry",
  "retina",
  "rocket",
)
VALIDATION_IMAGES = ("chelsea", "stereo_motorcycle")

_SPLITS = {
  "train": TRAIN_IMAGES,
  "validation": VALIDATION_IMAGES,
  # Aliases: the reference and the registry also say "valid" and "test".
  "valid": VALIDATION_IMAGES,
  "test": VALIDATION_IMAGES,
}


@functools.lru_cache(maxsize=None)
def load_photo(name: str) -> np.ndarray:
  """One of the embedded photos as a read-only ``uint8 [H, W, 3]`` array.

  Args:
    name: a name from ``TRAIN_IMAGES`` or ``VALIDATION_IMAGES``.

  Returns:
    The full-size RGB photo (for ``stereo_motorcycle``, the left view).

  Raises:
    ValueError: for a name outside the embedded set.

  Examples:
    >>> load_photo("chelsea").shape
    (300, 451, 3)
  """
  if name not in TRAIN_IMAGES + VALIDATION_IMAGES:
    raise ValueError(
      f"Unknown embedded photo {name!r}; known: {', '.join(TRAIN_IMAGES + VALIDATION_IMAGES)}."
    )
  from skimage import data  # pylint: disable=g-import-not-at-top  (slow import, load lazily)

  image = getattr(data, name)()
  if name == "stereo_motorcycle":
    image = image[0]
  image = np.ascontiguousarray(image, np.uint8)
  if image.ndim != 3 or image.shape[-1] != 3:  # Guards against a future skimage change.
    raise ValueError(f"skimage.data.{name}() is not an RGB image (shape {image.shape}).")
  image.flags.writeable = False
  return image


def _center_crop(image: np.ndarray, max_size: int | None) -> np.ndarray:
  if max_size is None:
    return image
  height, width = image.shape[:2]
  new_h, new_w = min(height, max_size), min(width, max_size)
  top, left = (height - new_h) // 2, (width - new_w) // 2
  return image[top : top + new_h, left : left + new_w]


@functools.lru_cache(maxsize=None)
def _pairs(
  names: tuple[str, ...], scale: int, max_size: int | None, degradation: Degradation | None
) -> tuple[ImagePair, ...]:
  pairs = []
  for name in names:
    hr = _center_crop(load_photo(name), max_size)
    height, width = hr.shape[:2]
    hr = np.ascontiguousarray(hr[: height - height % scale, : width - width % scale])
    if degradation is not None:
      lr = np.ascontiguousarray(degradation(name, hr)[1])
    else:
      lr = hr.copy() if scale == 1 else imresize(hr, 1.0 / scale)  # uint8 in, uint8 out.
    hr.flags.writeable = False
    lr.flags.writeable = False
    pairs.append(ImagePair(name, hr, lr))
  return tuple(pairs)


class EmbeddedDataset(collections.abc.Sequence):
  """A ``Sequence[ImagePair]`` over embedded photos (see the module docstring).

  Attributes:
    split: "train" or "validation".
    scale: the super-resolution factor; ``hr`` is ``scale`` times ``lr``.
    input_scale: HR size / LR size (equal to ``scale``).
    max_size: the centre-crop bound applied to HR, or ``None``.
    names: the photo names, in order.
    description: e.g. ``"embedded x4 validation"``.
  """

  def __init__(
    self,
    pairs: Sequence[ImagePair],
    *,
    split: str,
    scale: int,
    max_size: int | None = None,
    degradation: Degradation | None = None,
  ):
    self._pairs = tuple(pairs)
    self.split = split
    self.scale = self.input_scale = int(scale)
    self.max_size = max_size
    self.degradation = degradation
    self.names = [pair.name for pair in self._pairs]
    if degradation is None or degradation.kind == "bicubic":
      self.description = f"embedded x{self.scale} {split}"
    elif degradation.kind == "noise":
      self.description = f"embedded DN sigma {degradation.sigma:g} {split}"
    else:
      self.description = f"embedded JPEG quality {degradation.quality} {split}"

  def __len__(self) -> int:
    return len(self._pairs)

  def __getitem__(self, index):
    if isinstance(index, slice):
      return [self._pairs[i] for i in range(*index.indices(len(self._pairs)))]
    return self._pairs[index]

  def __repr__(self) -> str:
    return f"EmbeddedDataset({self.description}: {', '.join(self.names)})"


def embedded_dataset(
  split: str = "train",
  scale: int = 4,
  *,
  max_size: int | None = None,
  degradation: Degradation | None = None,
) -> EmbeddedDataset:
  """The embedded photos of one split, with MATLAB-bicubic LR images (or noisy / JPEG ones).

  Args:
    split: "train" (7 photos) or "validation" (2 held-out photos); "valid" and
      "test" mean "validation".
    scale: positive integer downscaling factor (x2, x3, x4 as in the paper).
    max_size: if set, centre-crop every HR photo to at most
      ``max_size x max_size`` before mod-cropping (e.g. 256 for quick CPU
      validation); ``None`` keeps the full photos.
    degradation: how the input is made (default: bicubic at ``scale``); a ``"noise"`` or
      ``"jpeg"`` ``Degradation`` makes same-size pairs and needs ``scale=1``.

  Returns:
    An ``EmbeddedDataset``: ``len``, indexing, ``names``, ``scale``.

  Raises:
    ValueError: for an unknown split, a bad scale, a ``max_size`` below ``scale`` or a
      degradation that does not match ``scale``.

  Examples:
    >>> valid = embedded_dataset("validation", scale=4)
    >>> valid.names, valid[0].hr.shape, valid[0].lr.shape
    (['chelsea', 'stereo_motorcycle'], (300, 448, 3), (75, 112, 3))
    >>> noisy = embedded_dataset("validation", 1, degradation=Degradation("noise", sigma=30))
    >>> noisy[0].lr.shape == noisy[0].hr.shape
    True
  """
  if split not in _SPLITS:
    raise ValueError(f"Unknown `split` {split!r}; use 'train' or 'validation'.")
  if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
    raise ValueError(f"`scale` must be a positive integer, got {scale!r}.")
  if max_size is not None:
    if (
      isinstance(max_size, bool)
      or not isinstance(max_size, (int, np.integer))
      or (max_size < scale)
    ):
      raise ValueError(f"`max_size` must be an integer >= scale ({scale}), got {max_size!r}.")
    max_size = int(max_size)
  if degradation is not None:
    if not isinstance(degradation, Degradation):
      raise TypeError(f"`degradation` must be a Degradation, got {type(degradation).__name__}.")
    if degradation.kind == "bicubic" and degradation.scale != scale:
      raise ValueError(
        f"A bicubic `degradation` of scale {degradation.scale} does not match `scale` {scale}."
      )
    if degradation.kind != "bicubic" and scale != 1:
      raise ValueError(
        f"A {degradation.kind} `degradation` keeps the image size: use scale=1, got {scale}."
      )
    if degradation.kind == "bicubic":
      degradation = None  # the default, and one cache entry for it
  canonical = "train" if split == "train" else "validation"
  pairs = _pairs(_SPLITS[split], int(scale), max_size, degradation)
  return EmbeddedDataset(
    pairs, split=canonical, scale=int(scale), max_size=max_size, degradation=degradation
  )


def embedded_source(spec: DataSpec, split: str = "train") -> EmbeddedDataset:
  """The embedded data set a ``DataSpec`` names (``embedded``, ``embedded_DN``, ``embedded_JPEG``).

  Like the folder sets, "test" reads the held-out photos.
  """
  degradation = None
  if spec.task != "SR":
    degradation = Degradation.for_task(
      spec.task, sigma=spec.sigma, quality=spec.quality, noise_seed=spec.noise_seed
    )
  return embedded_dataset(
    "train" if split == "train" else "validation", spec.data_scale, degradation=degradation
  )
