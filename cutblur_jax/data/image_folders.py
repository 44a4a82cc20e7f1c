"""Image folders as data sets: listing, pairing HR with LR by name, ``FolderDataset``.

A ``FolderDataset`` is a ``Sequence[ImagePair]`` that reads (and, when asked,
synthesises) one pair per ``__getitem__``; nothing is cached, the training
pipeline caches decoded images. ``cutblur_jax.data.folders`` builds them for the
published layouts (DIV2K, RealSR, the benchmark sets).

Invariants of every pair a data set returns:

* ``hr`` and ``lr`` are ``uint8 [H, W, 3]`` (``read_image`` turns grayscale,
  RGBA and 16-bit files into that, as it documents).
* ``hr.shape[:2] == lr.shape[:2] * input_scale`` exactly, where ``input_scale``
  is ``scale`` for bicubic SR and RealSR v3, and 1 for the same-size tasks
  (RealSR v1, denoising, JPEG). An HR image that is less than ``input_scale``
  pixels off (not mod-cropped, or an LR made with MATLAB's ``ceil`` size rule)
  is aligned by dropping its bottom/right remainder, as ``modcrop`` does; a
  larger mismatch is rejected with both file paths.
* HR and LR files are paired by name (``0001.png`` with ``0001x4.png``,
  ``Canon_001_HR.png`` with ``Canon_001_LR4.png``, ``baby.png`` with
  ``babyx4.png``), which equals the reference's pairing of sorted lists on
  well-formed folders and names the file when a folder is not.
* ``write_lr_folder`` saves synthesised LR images once, in a layout the data
  sets read back.
"""

from __future__ import annotations

import collections.abc
import concurrent.futures
import os
import pathlib
import re
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from cutblur_jax.data.bicubic import imresize
from cutblur_jax.data.degradations import align_pair, modcrop
from cutblur_jax.data.io import open_file, read_image, write_image
from cutblur_jax.data.types import ImagePair
from cutblur_jax.paths import as_path, file_identity

__all__ = [
  "FolderDataset",
  "IMAGE_EXTENSIONS",
  "PathLike",
  "hr_pairs",
  "list_images",
  "pair_by_name",
  "write_lr_folder",
]

PathLike = str | os.PathLike

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _infer_input_scale(
  hr_size: tuple[int, int], lr_size: tuple[int, int], scale: int, *, hr_source: str, lr_source: str
) -> int:
  """Returns 1 for same-size pairs, else ``scale`` when the sizes match it."""
  if tuple(hr_size) == tuple(lr_size):
    return 1
  if all(abs(big - small * scale) < scale for big, small in zip(hr_size, lr_size)):
    return scale
  raise ValueError(
    f"HR {hr_source} is {hr_size[1]}x{hr_size[0]} (WxH) but LR {lr_source} is "
    f"{lr_size[1]}x{lr_size[0]}: expected the same size or {scale} times larger (scale={scale})."
  )


def _image_size(path: pathlib.Path) -> tuple[int, int]:
  """(height, width) from the file header, without decoding pixels."""
  try:
    with open_file(path) as file, Image.open(file) as image:
      width, height = image.size
  except (OSError, ValueError, Image.DecompressionBombError) as error:
    raise ValueError(f"Cannot read image {path}: {error}") from error
  return height, width


def _file_identity(path: pathlib.Path) -> str:
  """``path``, its size and modification time: changes whenever the file does."""
  try:
    return file_identity(path)
  except OSError as error:
    raise ValueError(f"Cannot read image {path}: {error.strerror or error}") from error


def _pair_key(stem: str, scale: int) -> str:
  """Name shared by an HR file and its LR file (lowercase, size tags removed)."""
  stem = stem.lower()
  stem = re.sub(r"_hr$", "", stem)
  stem = re.sub(rf"(_lr{scale}|_lr|_?x{scale})$", "", stem)
  return stem


def _display_name(path: pathlib.Path) -> str:
  return re.sub(r"_HR$", "", path.stem)


def list_images(folder: PathLike, *, what: str = "images") -> list[pathlib.Path]:
  """Sorted image files (``IMAGE_EXTENSIONS``) directly inside ``folder``.

  Args:
    folder: directory to list.
    what: description used in error messages (e.g. "DIV2K HR images").

  Returns:
    Sorted paths.

  Raises:
    ValueError: if the folder does not exist or holds no image.

  Examples:
    >>> list_images("/data/DIV2K/DIV2K_train_HR")  # doctest: +SKIP
  """
  folder = as_path(folder)
  if not folder.is_dir():
    raise ValueError(f"Folder of {what} not found: {folder}")
  paths = sorted(
    p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
  )
  if not paths:
    raise ValueError(f"No {what} ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
  return paths


def pair_by_name(
  hr_paths: Sequence[pathlib.Path],
  lr_paths: Sequence[pathlib.Path],
  scale: int,
  *,
  lr_folder: str,
  strict_count: bool,
) -> list[pathlib.Path]:
  """LR path for each HR path, matched by ``_pair_key``."""
  if strict_count and len(hr_paths) != len(lr_paths):
    raise ValueError(
      f"{len(hr_paths)} HR images in {hr_paths[0].parent} but {len(lr_paths)} LR images "
      f"in {lr_folder}: every HR image needs exactly one LR image."
    )
  by_key: dict[str, pathlib.Path] = {}
  for path in lr_paths:
    key = _pair_key(path.stem, scale)
    if key in by_key:
      raise ValueError(
        f"LR images {by_key[key]} and {path} both pair with the same HR name {key!r}."
      )
    by_key[key] = path
  paired = []
  for path in hr_paths:
    key = _pair_key(path.stem, scale)
    if key not in by_key:
      raise ValueError(f"HR image {path} has no LR image named like it in {lr_folder}.")
    paired.append(by_key[key])
  return paired


# ----------------------------------------------------------------------------
# The data set.
# ----------------------------------------------------------------------------


class FolderDataset(collections.abc.Sequence):
  """Paired HR/LR images read from files on access.

  Attributes:
    description: what the data set is, e.g. "DIV2K_SR x4 train".
    scale: the model's upscaling factor for this data (1 for DN/JPEG).
    input_scale: HR size / LR size of every pair (``scale``, or 1 for
      same-size pairs).
    hr_paths: HR file of each pair.
    lr_paths: LR file of each pair, or ``None`` where LR is synthesised.
    names: name of each pair (HR file stem without ``_HR``).

  Examples:
    >>> data = div2k_dataset("/data/DIV2K", split="validation", scale=4)  # doctest: +SKIP
    >>> pair = data[0]; pair.hr.shape, pair.lr.shape  # doctest: +SKIP
    ((1356, 2040, 3), (339, 510, 3))
  """

  def __init__(
    self,
    hr_paths: Sequence[PathLike],
    lr_paths: Sequence[PathLike] | None = None,
    *,
    scale: int,
    input_scale: int | None = None,
    degradation: Callable[[str, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
    description: str = "folder",
  ):
    """Pairs ``hr_paths[i]`` with ``lr_paths[i]`` (or ``degradation`` of the HR image).

    Args:
      hr_paths: HR image files.
      lr_paths: LR image files in the same order, or ``None`` to synthesise.
      scale: model scale.
      input_scale: HR / LR size ratio; inferred from the first pair's file
        headers when ``None`` (RealSR v1 vs v3) and checked for every pair.
      degradation: ``(name, hr) -> (hr, lr)``, used when ``lr_paths`` is None.
      description: shown in errors and ``repr``.
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
      raise ValueError(f"`scale` must be a positive integer, got {scale!r}.")
    self.hr_paths = [as_path(p) for p in hr_paths]
    self.lr_paths = None if lr_paths is None else [as_path(p) for p in lr_paths]
    if not self.hr_paths:
      raise ValueError(f"{description}: no HR images.")
    if self.lr_paths is None and degradation is None:
      raise ValueError(f"{description}: give `lr_paths` or a `degradation` to synthesise LR.")
    if self.lr_paths is not None and len(self.lr_paths) != len(self.hr_paths):
      raise ValueError(
        f"{description}: {len(self.hr_paths)} HR images but {len(self.lr_paths)} LR images."
      )
    self.scale = int(scale)
    self.degradation = degradation
    self.description = description
    self.names = [_display_name(p) for p in self.hr_paths]
    if self.lr_paths is None:
      self.input_scale = (
        int(input_scale)
        if input_scale is not None
        else (self.scale if getattr(degradation, "kind", "bicubic") == "bicubic" else 1)
      )
    else:
      self.input_scale = self._check_sizes(input_scale)

  def _check_sizes(self, input_scale: int | None) -> int:
    """Checks every pair's header sizes; returns the common input scale."""
    self._lr_sizes = []
    for hr_path, lr_path in zip(self.hr_paths, self.lr_paths):
      hr_size, lr_size = _image_size(hr_path), _image_size(lr_path)
      self._lr_sizes.append(lr_size)
      pair_scale = _infer_input_scale(
        hr_size, lr_size, self.scale, hr_source=str(hr_path), lr_source=str(lr_path)
      )
      if input_scale is None:
        input_scale = pair_scale
      elif pair_scale != input_scale:
        raise ValueError(
          f"{self.description}: {hr_path} / {lr_path} have size ratio {pair_scale} but other "
          f"pairs have {input_scale}; a data set cannot mix same-size and scaled pairs."
        )
    return int(input_scale)

  def cache_key(self, index: int) -> str:
    """What pair ``index`` holds, for ``DecodedCache``: each file's path, size and
    modification time, or how its input is synthesised."""
    hr_path = self.hr_paths[index]
    parts = [f"scale {self.scale} input_scale {self.input_scale}", _file_identity(hr_path)]
    if self.lr_paths is None:
      parts.append(f"synthesised {self.degradation!r} of {self.names[index]!r}")
    else:
      parts.append(_file_identity(self.lr_paths[index]))
    return "\n".join(parts)

  def lr_sizes(self) -> list[tuple[int, int]]:
    """(height, width) of every pair's input, from the file headers (nothing is decoded;
    each header is read once, when the data set is built or on the first call)."""
    if getattr(self, "_lr_sizes", None) is None:
      sizes = [_image_size(path) for path in self.hr_paths]
      self._lr_sizes = [(h // self.input_scale, w // self.input_scale) for h, w in sizes]
    return list(self._lr_sizes)

  def decoded_bytes(self) -> int:
    """Bytes of every pair decoded as uint8 (HR and LR), from the file headers."""
    scale_area = self.input_scale**2
    return sum(3 * h * w * (scale_area + 1) for h, w in self.lr_sizes())

  def __len__(self) -> int:
    return len(self.hr_paths)

  def __getitem__(self, index: int) -> ImagePair:
    if not isinstance(index, (int, np.integer)):
      raise TypeError(
        f"{type(self).__name__} indices must be integers, got {type(index).__name__}."
      )
    if not -len(self) <= index < len(self):
      raise IndexError(f"index {index} out of range for {len(self)} pairs of {self.description}")
    index = int(index) % len(self)
    name, hr_path = self.names[index], self.hr_paths[index]
    hr = read_image(hr_path)
    if self.lr_paths is None:
      hr, lr = self.degradation(name, hr)
      lr_source = f"synthesised from {hr_path}"
    else:
      lr_source = str(self.lr_paths[index])
      lr = read_image(self.lr_paths[index])
    hr, lr = align_pair(hr, lr, self.input_scale, hr_source=str(hr_path), lr_source=lr_source)
    return ImagePair(name=name, hr=np.ascontiguousarray(hr), lr=np.ascontiguousarray(lr))

  def __repr__(self) -> str:
    source = "synthesised LR" if self.lr_paths is None else "LR files"
    return (
      f"FolderDataset({self.description!r}, {len(self)} pairs, scale={self.scale}, "
      f"input_scale={self.input_scale}, {source})"
    )


# ----------------------------------------------------------------------------
# Published layouts.
# ----------------------------------------------------------------------------


def write_lr_folder(
  dataset: Sequence[ImagePair],
  folder: PathLike,
  *,
  name_format: str | None = None,
  num_workers: int = 2,
  overwrite: bool = False,
) -> list[pathlib.Path]:
  """Writes the LR image of every pair as PNG, to prepare an LR folder once.

  Synthesising LR on the fly (``synthesize_lr=True``) costs a MATLAB-bicubic
  resize per image at every start (about 0.25 s for a DIV2K image on one CPU
  core); writing the folder once makes later runs read it like a published one.
  Each file is written atomically (``write_image``).

  Args:
    dataset: pairs to write, typically a ``FolderDataset`` with synthesised LR.
    folder: destination, e.g. ``<root>/DIV2K_train_LR_bicubic/X4`` or ``<root>/Set5/X4``.
    name_format: file name pattern with ``{name}`` and ``{scale}``; default
      ``"{name}x{scale}.png"`` for scaled pairs (DIV2K's ``0001x4.png``) and
      ``"{name}.png"`` for same-size pairs (DN, JPEG). The folder sets pair files
      by name, with or without the ``x{scale}`` tag.
    num_workers: writer threads (synthesis and PNG encoding release the GIL).
    overwrite: replace existing files (default: keep them, which makes an
      interrupted run resumable).

  Returns:
    The paths of the LR files, in data set order.

  Examples:
    >>> data = div2k_dataset(root, div2k_range="1-900/1-1", synthesize_lr=True)  # doctest: +SKIP
    >>> write_lr_folder(data, f"{root}/DIV2K_train_LR_bicubic/X4")  # doctest: +SKIP
  """
  folder = as_path(folder)
  scale = int(getattr(dataset, "input_scale", getattr(dataset, "scale", 1)))
  if name_format is None:
    name_format = "{name}x{scale}.png" if scale > 1 else "{name}.png"
  names = getattr(dataset, "names", None)

  def write(index: int) -> pathlib.Path:
    name = names[index] if names is not None else None
    if name is not None:
      path = folder / name_format.format(name=name, scale=scale)
      if path.exists() and not overwrite:
        return path
    pair = dataset[index]
    path = folder / name_format.format(name=pair.name, scale=scale)
    if path.exists() and not overwrite:
      return path
    return write_image(path, pair.lr)

  folder.mkdir(parents=True, exist_ok=True)
  if num_workers <= 0:
    return [write(i) for i in range(len(dataset))]
  with concurrent.futures.ThreadPoolExecutor(num_workers, thread_name_prefix="write_lr") as pool:
    return list(pool.map(write, range(len(dataset))))


def hr_pairs(path: str | os.PathLike, scale: int) -> list[ImagePair]:
  """Pairs made from HR images alone: an image file or a folder of images.

  Each HR image is read as RGB (``data.io.read_image``: grayscale, RGBA and
  16-bit converted), mod-cropped to a multiple of ``scale`` and its LR image
  made with MATLAB ``imresize(hr, 1/scale)``, ``uint8``, as DIV2K's.

  Args:
    path: an image file or a folder (its images, sorted by name; not recursive).
    scale: the downscaling factor.

  Returns:
    A list of ``ImagePair`` named by file stem.

  Raises:
    ValueError: the path does not exist, holds no image, or an image cannot be
      read or is smaller than ``scale``; the message names the path.
  """
  path = as_path(path)
  if path.is_dir():
    paths = list_images(path, what="HR images")
  elif path.is_file():
    paths = [path]
  else:
    raise ValueError(f"HR path {str(path)!r} does not exist.")
  pairs = []
  for image_path in paths:
    hr = read_image(image_path)
    if min(hr.shape[:2]) < scale:
      raise ValueError(
        f"HR image {str(image_path)!r} ({hr.shape[0]}x{hr.shape[1]}) is smaller "
        f"than the scale {scale}."
      )
    hr = modcrop(hr, scale)
    lr = hr.copy() if scale == 1 else imresize(hr, 1.0 / scale)
    pairs.append(ImagePair(image_path.stem, np.ascontiguousarray(hr), lr))
  return pairs
