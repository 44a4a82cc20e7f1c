"""Folder data sets in their published layouts: DIV2K, RealSR, benchmark sets, DN, JPEG.

Every data set here is a ``Sequence[ImagePair]`` that reads (and, when asked,
synthesises) one pair per ``__getitem__``; nothing is cached, the training
pipeline caches decoded images.

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
* Synthesised inputs are deterministic: bicubic LR is MATLAB ``imresize`` of
  the mod-cropped HR, Gaussian noise is seeded by ``(noise_seed, crc32(name))``
  so an image's noise does not depend on the split or the order, JPEG is
  Pillow's encoder at ``quality``. ``write_lr_folder`` saves synthesised LR
  images once, in a layout these data sets read back.
"""

from __future__ import annotations

import collections.abc
import concurrent.futures
import os
import pathlib
import re
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from cutblur_jax.data.degradations import Degradation, align_pair
from cutblur_jax.data.spec import DEFAULT_DIV2K_RANGE, parse_dataset
from cutblur_jax.data.io import read_image, write_image
from cutblur_jax.data.types import ImagePair

PathLike = str | os.PathLike

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

BENCHMARK_SETS = ("Set5", "Set14", "B100", "Urban100", "Manga109")
# Other names the same benchmark set is published under.
_BENCHMARK_ALIASES = {"B100": ("BSD100", "BSDS100")}

_SUFFIX_HINT = "pass synthesize_lr=True to make it from HR"


def _infer_input_scale(hr_size: tuple[int, int], lr_size: tuple[int, int], scale: int, *,
                       hr_source: str, lr_source: str) -> int:
  """Returns 1 for same-size pairs, else ``scale`` when the sizes match it."""
  if tuple(hr_size) == tuple(lr_size):
    return 1
  if all(abs(big - small * scale) < scale for big, small in zip(hr_size, lr_size)):
    return scale
  raise ValueError(
      f"HR {hr_source} is {hr_size[1]}x{hr_size[0]} (WxH) but LR {lr_source} is "
      f"{lr_size[1]}x{lr_size[0]}: expected the same size or {scale} times larger (scale={scale}).")


def _image_size(path: pathlib.Path) -> tuple[int, int]:
  """(height, width) from the file header, without decoding pixels."""
  try:
    with Image.open(path) as image:
      width, height = image.size
  except (OSError, ValueError, Image.DecompressionBombError) as error:
    raise ValueError(f"Cannot read image {path}: {error}") from error
  return height, width


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
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    raise ValueError(f"Folder of {what} not found: {folder}")
  paths = sorted(p for p in folder.iterdir()
                 if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
  if not paths:
    raise ValueError(f"No {what} ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
  return paths


def _pair_by_name(hr_paths: Sequence[pathlib.Path], lr_paths: Sequence[pathlib.Path], scale: int,
                  *, lr_folder: str, strict_count: bool) -> list[pathlib.Path]:
  """LR path for each HR path, matched by ``_pair_key``."""
  if strict_count and len(hr_paths) != len(lr_paths):
    raise ValueError(
        f"{len(hr_paths)} HR images in {hr_paths[0].parent} but {len(lr_paths)} LR images "
        f"in {lr_folder}: every HR image needs exactly one LR image.")
  by_key: dict[str, pathlib.Path] = {}
  for path in lr_paths:
    key = _pair_key(path.stem, scale)
    if key in by_key:
      raise ValueError(
          f"LR images {by_key[key]} and {path} both pair with the same HR name {key!r}.")
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

  def __init__(self, hr_paths: Sequence[PathLike], lr_paths: Sequence[PathLike] | None = None, *,
               scale: int, input_scale: int | None = None,
               degradation: Callable[[str, np.ndarray],
                                     tuple[np.ndarray, np.ndarray]] | None = None,
               description: str = "folder"):
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
    self.hr_paths = [pathlib.Path(p) for p in hr_paths]
    self.lr_paths = None if lr_paths is None else [pathlib.Path(p) for p in lr_paths]
    if not self.hr_paths:
      raise ValueError(f"{description}: no HR images.")
    if self.lr_paths is None and degradation is None:
      raise ValueError(f"{description}: give `lr_paths` or a `degradation` to synthesise LR.")
    if self.lr_paths is not None and len(self.lr_paths) != len(self.hr_paths):
      raise ValueError(
          f"{description}: {len(self.hr_paths)} HR images but {len(self.lr_paths)} LR images.")
    self.scale = int(scale)
    self.degradation = degradation
    self.description = description
    self.names = [_display_name(p) for p in self.hr_paths]
    if self.lr_paths is None:
      self.input_scale = int(input_scale) if input_scale is not None else (
          self.scale if getattr(degradation, "kind", "bicubic") == "bicubic" else 1)
    else:
      self.input_scale = self._check_sizes(input_scale)

  def _check_sizes(self, input_scale: int | None) -> int:
    """Checks every pair's header sizes; returns the common input scale."""
    for hr_path, lr_path in zip(self.hr_paths, self.lr_paths):
      hr_size, lr_size = _image_size(hr_path), _image_size(lr_path)
      pair_scale = _infer_input_scale(hr_size, lr_size, self.scale,
                                      hr_source=str(hr_path), lr_source=str(lr_path))
      if input_scale is None:
        input_scale = pair_scale
      elif pair_scale != input_scale:
        raise ValueError(
            f"{self.description}: {hr_path} / {lr_path} have size ratio {pair_scale} but other "
            f"pairs have {input_scale}; a data set cannot mix same-size and scaled pairs.")
    return int(input_scale)

  def __len__(self) -> int:
    return len(self.hr_paths)

  def __getitem__(self, index: int) -> ImagePair:
    if not isinstance(index, (int, np.integer)):
      raise TypeError(
          f"{type(self).__name__} indices must be integers, got {type(index).__name__}.")
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
    return (f"FolderDataset({self.description!r}, {len(self)} pairs, scale={self.scale}, "
            f"input_scale={self.input_scale}, {source})")


# ----------------------------------------------------------------------------
# Published layouts.
# ----------------------------------------------------------------------------


def parse_div2k_range(div2k_range: str) -> tuple[tuple[int, int], tuple[int, int]]:
  """Parses the reference's ``div2k_range`` ("1-800/801-810").

  Args:
    div2k_range: ``"a-b/c-d"``: 1-based inclusive train and validation ranges
      over the sorted DIV2K HR images.

  Returns:
    ``((a, b), (c, d))``.

  Examples:
    >>> parse_div2k_range("1-800/801-810")
    ((1, 800), (801, 810))
  """
  match = re.fullmatch(r"\s*(\d+)-(\d+)/(\d+)-(\d+)\s*", str(div2k_range))
  if not match:
    raise ValueError(f"`div2k_range` must look like '1-800/801-810', got {div2k_range!r}.")
  a, b, c, d = (int(g) for g in match.groups())
  if not (1 <= a <= b and 1 <= c <= d):
    raise ValueError(f"`div2k_range` ranges must be 1-based and increasing, got {div2k_range!r}.")
  return (a, b), (c, d)


def _check_split(split: str) -> str:
  if split not in ("train", "validation", "test"):
    raise ValueError(f"`split` must be 'train', 'validation' or 'test', got {split!r}.")
  return split


def _task_degradation(task: str, scale: int, sigma: float, quality: int,
                      noise_seed: int) -> Degradation:
  return Degradation.for_task(task, scale=scale, sigma=sigma, quality=quality,
                              noise_seed=noise_seed)


def _data_scale(task: str, scale: int) -> int:
  """The HR/LR scale of a task's data: ``scale`` for SR, 1 for the same-size DN and JPEG.

  A DN or JPEG data set is the same whatever the network's scale: the official code trains
  them at its default ``--scale 4``, a network whose x4 space-to-depth head and pixel-shuffle
  tail keep the image size, on 48x48 same-size patches; ``scale=1`` (our configs' default)
  builds a network without either.
  """
  if task not in ("SR", "DN", "JPEG"):
    raise ValueError(f"`task` must be 'SR', 'DN' or 'JPEG', got {task!r}.")
  return scale if task == "SR" else 1


def div2k_dataset(root: PathLike, *, split: str = "train", task: str = "SR", scale: int = 4,
                  div2k_range: str = DEFAULT_DIV2K_RANGE, sigma: float = 10, quality: int = 10,
                  synthesize_lr: bool = False, noise_seed: int = 0) -> FolderDataset:
  """DIV2K in its published layout (the reference's ``DIV2K_SR/DN/JPEG``).

  Layout under ``root`` (``DIV2K_valid_*`` are optional; when present they are
  appended, so ``801-900`` works with the official zips as with the merged
  folder the reference uses)::

    DIV2K_train_HR/0001.png ...            DIV2K_valid_HR/0801.png ...
    DIV2K_train_LR_bicubic/X4/0001x4.png   DIV2K_valid_LR_bicubic/X4/0801x4.png   (task "SR")
    DIV2K_train_DN/{sigma}/0001.png                                               (task "DN")
    DIV2K_train_JPEG/{quality}/0001.jpg                                           (task "JPEG")

  Args:
    root: the reference's ``dataset_root``.
    split: "train" takes the first range of ``div2k_range``; "validation" and
      "test" take the second, over the sorted HR images.
    task: "SR" (bicubic), "DN" (Gaussian noise) or "JPEG".
    scale: SR scale (ignored for DN and JPEG, whose pairs are same-size).
    div2k_range: e.g. "1-800/801-810".
    sigma: noise level for DN (folder name, or synthesis sigma).
    quality: JPEG quality (folder name, or Pillow quality).
    synthesize_lr: when the LR folder is missing, synthesise LR from HR
      (MATLAB-bicubic ``imresize``, seeded Gaussian noise, or Pillow JPEG)
      instead of raising.
    noise_seed: seed of the synthesised noise (DN only).

  Returns:
    A ``FolderDataset``.

  Examples:
    >>> train = div2k_dataset("/data/DIV2K", split="train", scale=4)  # doctest: +SKIP
  """
  root = pathlib.Path(root)
  _check_split(split)
  scale = _data_scale(task, scale)
  train_range, valid_range = parse_div2k_range(div2k_range)
  first, last = train_range if split == "train" else valid_range
  hr_dirs = [root / "DIV2K_train_HR", root / "DIV2K_valid_HR"]
  if not hr_dirs[0].is_dir() and not hr_dirs[1].is_dir():
    raise ValueError(f"DIV2K HR folder not found: {hr_dirs[0]} (dataset_root={root}).")
  # The official zips split train (0001-0800) and valid (0801-0900); the reference
  # merges them into DIV2K_train_HR. Either works; a name in both counts once.
  hr_paths = _unique_by_stem(p for d in hr_dirs if d.is_dir()
                             for p in list_images(d, what="DIV2K HR images"))
  if last > len(hr_paths):
    raise ValueError(
        f"div2k_range {div2k_range!r} asks for image {last} but {', '.join(map(str, hr_dirs))} "
        f"hold {len(hr_paths)} HR images.")
  hr_paths = hr_paths[first - 1:last]
  sub = {"SR": f"LR_bicubic/X{scale}", "DN": f"DN/{sigma:g}", "JPEG": f"JPEG/{quality}"}[task]
  lr_dirs = [root / f"DIV2K_train_{sub}", root / f"DIV2K_valid_{sub}"]
  description = f"DIV2K_{task}{f' x{scale}' if task == 'SR' else ''} {split} [{first}-{last}]"
  if not any(d.is_dir() for d in lr_dirs):
    if not synthesize_lr:
      raise ValueError(
          f"LR folder not found: {lr_dirs[0]}; {_SUFFIX_HINT} "
          f"({_synthesis_words(task, scale, sigma, quality)}) or prepare the folder.")
    return FolderDataset(hr_paths, None, scale=scale,
                         degradation=_task_degradation(task, scale, sigma, quality, noise_seed),
                         description=description + " (synthesised LR)")
  lr_candidates = _unique_by_stem(p for d in lr_dirs if d.is_dir()
                                  for p in list_images(d, what="DIV2K LR images"))
  lr_paths = _pair_by_name(hr_paths, lr_candidates, scale if task == "SR" else 1,
                           lr_folder=" or ".join(str(d) for d in lr_dirs if d.is_dir()),
                           strict_count=False)
  return FolderDataset(hr_paths, lr_paths, scale=scale,
                       input_scale=scale if task == "SR" else 1, description=description)


def _unique_by_stem(paths: Iterable[pathlib.Path]) -> list[pathlib.Path]:
  """Paths sorted by file name; of several with the same stem, the first seen is kept."""
  unique: dict[str, pathlib.Path] = {}
  for path in paths:
    unique.setdefault(path.stem, path)
  return sorted(unique.values(), key=lambda p: p.name)


def _synthesis_words(task: str, scale: int, sigma: float, quality: int) -> str:
  return {"SR": f"MATLAB-bicubic imresize x1/{scale}",
          "DN": f"Gaussian noise sigma={sigma}",
          "JPEG": f"Pillow JPEG quality={quality}"}[task]


def realsr_dataset(root: PathLike, *, split: str = "train", scale: int = 4,
                   camera: str = "all") -> FolderDataset:
  """RealSR (v1 or v3) in its published layout (the reference's ``RealSR``).

  Layout under ``root``::

    Canon/Train/4/Canon_001_HR.png, Canon_001_LR4.png, ...
    Canon/Test/4/...   Nikon/Train/4/...   Nikon/Test/4/...

  Version 1 pairs have LR at HR size (``input_scale`` 1: the pipeline crops
  ``patch_size * scale`` from both, as the reference does); version 3 pairs
  have LR ``scale`` times smaller (``input_scale == scale``). The version is
  read from the files' sizes.

  Args:
    root: the reference's ``dataset_root`` (the folder holding Canon/ and Nikon/).
    split: "train" reads ``Train/``; "validation" and "test" read ``Test/``.
    scale: 2, 3 or 4 (the folder name).
    camera: "canon", "nikon" or "all" (Canon then Nikon, as the reference).

  Returns:
    A ``FolderDataset``.

  Examples:
    >>> test = realsr_dataset("/data/RealSR", split="test", camera="canon")  # doctest: +SKIP
  """
  root = pathlib.Path(root)
  _check_split(split)
  cameras = {"canon": ["Canon"], "nikon": ["Nikon"], "all": ["Canon", "Nikon"]}
  if camera not in cameras:
    raise ValueError(f"`camera` must be one of canon, nikon, all; got {camera!r}.")
  subdir = "Train" if split == "train" else "Test"
  hr_paths, lr_paths = [], []
  for name in cameras[camera]:
    folder = root / name / subdir / str(scale)
    files = list_images(folder, what=f"RealSR {name} {subdir} x{scale} images")
    hrs = [p for p in files if re.search(r"_HR$", p.stem)]
    lrs = [p for p in files if re.search(r"_LR\d*$", p.stem)]
    if not hrs:
      raise ValueError(f"No *_HR images in {folder}.")
    hr_paths += hrs
    lr_paths += _pair_by_name(hrs, lrs, scale, lr_folder=str(folder), strict_count=True)
  return FolderDataset(hr_paths, lr_paths, scale=scale,
                       description=f"RealSR {camera} x{scale} {split}")


def _benchmark_folder(root: pathlib.Path, name: str | None) -> pathlib.Path:
  """``root`` itself, or ``root/<name>`` (or an alias) when it exists."""
  if name is None:
    return root
  for candidate in (name, *_BENCHMARK_ALIASES.get(name, ())):
    if (root / candidate).is_dir():
      return root / candidate
  return root


def benchmark_dataset(root: PathLike, *, name: str | None = None, task: str = "SR", scale: int = 4,
                      sigma: float = 10, quality: int = 10, synthesize_lr: bool = False,
                      noise_seed: int = 0) -> FolderDataset:
  """A benchmark set (Set5, Set14, B100, Urban100, Manga109, or any set) in a published layout.

  ``root`` is the set's folder, or a folder that holds it as ``root/<name>``.
  Recognised layouts (first match wins)::

    SR:   HR/ + X{s}/                 (the reference's layout)
          HR/ + LR_bicubic/X{s}/      (EDSR / BasicSR "benchmark" layout, files like babyx4.png)
          GTmod12/ + LRbicx{s}/       (BasicSR's Set5/Set14 archives)
    DN:   HQ/ + {sigma}/              (the reference's layout)
    JPEG: HQ/ + {quality}/

  Args:
    root: set folder or its parent.
    name: set name ("Set5", ...), used to find ``root/<name>`` and in messages.
    task: "SR", "DN" or "JPEG".
    scale: SR scale (1 for DN/JPEG).
    sigma: DN noise level.
    quality: JPEG quality.
    synthesize_lr: when HR is found but not the LR folder, synthesise LR
      instead of raising.
    noise_seed: seed of synthesised noise.

  Returns:
    A ``FolderDataset`` (the same images for every split, like the reference).

  Examples:
    >>> set5 = benchmark_dataset("/data/benchmark", name="Set5", scale=4)  # doctest: +SKIP
  """
  scale = _data_scale(task, scale)
  folder = _benchmark_folder(pathlib.Path(root), name)
  if task == "SR":
    layouts = [("HR", f"X{scale}"), ("HR", f"LR_bicubic/X{scale}"), ("GTmod12", f"LRbicx{scale}")]
  else:
    level = f"{sigma:g}" if task == "DN" else f"{quality}"
    layouts = [("HQ", level), ("HR", level)]
  description = f"{name or folder.name}_{task}{f' x{scale}' if task == 'SR' else ''}"
  hr_only = None
  for hr_sub, lr_sub in layouts:
    if not (folder / hr_sub).is_dir():
      continue
    hr_paths = list_images(folder / hr_sub, what=f"{description} HR images")
    if not (folder / lr_sub).is_dir():
      hr_only = hr_only or (hr_paths, folder / lr_sub)
      continue
    lr_folder = folder / lr_sub
    lr_paths = _pair_by_name(hr_paths, list_images(lr_folder, what=f"{description} LR images"),
                             scale, lr_folder=str(lr_folder), strict_count=True)
    return FolderDataset(hr_paths, lr_paths, scale=scale, input_scale=scale if task == "SR" else 1,
                         description=description)
  expected = " or ".join(f"{folder / h} + {folder / l}" for h, l in layouts)
  if hr_only is None:
    raise ValueError(f"No {description} images found: expected {expected}.")
  if not synthesize_lr:
    raise ValueError(f"LR folder not found: {hr_only[1]}; {_SUFFIX_HINT} "
                     f"({_synthesis_words(task, scale, sigma, quality)}) or prepare the folder.")
  return FolderDataset(hr_only[0], None, scale=scale,
                       degradation=_task_degradation(task, scale, sigma, quality, noise_seed),
                       description=description + " (synthesised LR)")


def folder_dataset(dataset: str, root: PathLike, *, split: str = "train", scale: int = 4,
                   div2k_range: str = DEFAULT_DIV2K_RANGE, camera: str = "all", sigma: float = 10,
                   quality: int = 10, synthesize_lr: bool = False,
                   noise_seed: int = 0) -> FolderDataset:
  """A folder data set chosen by the reference's ``--dataset`` name.

  Args:
    dataset: "DIV2K_SR", "DIV2K_DN", "DIV2K_JPEG", "RealSR", or
      "<Set>_SR" / "<Set>_DN" / "<Set>_JPEG" for a benchmark set (e.g.
      "Set5_SR", "Urban100_SR", "CBSD68_DN").
    root: the reference's ``dataset_root``.
    split: "train", "validation" or "test".
    scale, div2k_range, camera, sigma, quality: the reference's options.
    synthesize_lr: synthesise missing LR folders instead of raising.
    noise_seed: seed of synthesised noise.

  Returns:
    A ``FolderDataset``.

  Examples:
    >>> folder_dataset("Set5_SR", "/data/benchmark/Set5", split="test", scale=4)  # doctest: +SKIP
  """
  if not str(root):
    raise ValueError(f"`dataset_root` is empty: set it to the folder that holds {dataset}.")
  name = parse_dataset(dataset)
  if name.kind == "div2k":
    return div2k_dataset(root, split=split, task=name.task, scale=scale, div2k_range=div2k_range,
                         sigma=sigma, quality=quality, synthesize_lr=synthesize_lr,
                         noise_seed=noise_seed)
  if name.kind == "realsr":
    return realsr_dataset(root, split=split, scale=scale, camera=camera)
  if name.kind != "benchmark":
    raise ValueError(
        f"Unknown folder dataset {dataset!r}: use DIV2K_SR, DIV2K_DN, DIV2K_JPEG, RealSR or "
        f"<Set>_SR/_DN/_JPEG (e.g. Set5_SR).")
  _check_split(split)
  return benchmark_dataset(root, name=name.set_name, task=name.task, scale=scale,
                           sigma=sigma, quality=quality, synthesize_lr=synthesize_lr,
                           noise_seed=noise_seed)


def write_lr_folder(dataset: Sequence[ImagePair], folder: PathLike, *,
                    name_format: str | None = None, num_workers: int = 2,
                    overwrite: bool = False) -> list[pathlib.Path]:
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
  folder = pathlib.Path(folder)
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
