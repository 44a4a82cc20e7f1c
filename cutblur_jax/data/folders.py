"""Folder data sets in their published layouts: DIV2K, RealSR, benchmark sets, DN, JPEG.

Each builder returns a ``FolderDataset`` (``cutblur_jax.data.image_folders``: the
listing, the pairing by name and the invariants of every pair). ``folder_dataset``
picks the builder from a data set name.

Synthesised inputs are deterministic: bicubic LR is MATLAB ``imresize`` of the
mod-cropped HR, Gaussian noise is seeded by ``(noise_seed, crc32(name))`` so an
image's noise does not depend on the split or the order, JPEG is Pillow's encoder
at ``quality``. ``write_lr_folder`` saves synthesised LR images once, in a layout
these data sets read back.
"""

from __future__ import annotations

import pathlib
import re
from typing import Iterable

from cutblur_jax.data.degradations import Degradation
from cutblur_jax.data.image_folders import (
  IMAGE_EXTENSIONS,
  FolderDataset,
  PathLike,
  list_images,
  pair_by_name,
  write_lr_folder,
)
from cutblur_jax.data.spec import DEFAULT_DIV2K_RANGE, parse_dataset

# FolderDataset, IMAGE_EXTENSIONS, list_images and write_lr_folder are re-exported:
# they were first defined here.
__all__ = [
  "BENCHMARK_SETS",
  "FolderDataset",
  "IMAGE_EXTENSIONS",
  "benchmark_dataset",
  "div2k_dataset",
  "folder_dataset",
  "list_images",
  "parse_div2k_range",
  "realsr_dataset",
  "write_lr_folder",
]

BENCHMARK_SETS = ("Set5", "Set14", "B100", "Urban100", "Manga109")
# Other names the same benchmark set is published under.
_BENCHMARK_ALIASES = {"B100": ("BSD100", "BSDS100")}

_SUFFIX_HINT = (
  "set synthesize_lr to make it from HR (train.py --config.synthesize_lr=True, "
  "evaluate.py --synthesize_lr)"
)


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


def _task_degradation(
  task: str, scale: int, sigma: float, quality: int, noise_seed: int
) -> Degradation:
  return Degradation.for_task(
    task, scale=scale, sigma=sigma, quality=quality, noise_seed=noise_seed
  )


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


def div2k_dataset(
  root: PathLike,
  *,
  split: str = "train",
  task: str = "SR",
  scale: int = 4,
  div2k_range: str = DEFAULT_DIV2K_RANGE,
  sigma: float = 10,
  quality: int = 10,
  synthesize_lr: bool = False,
  noise_seed: int = 0,
) -> FolderDataset:
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
  hr_paths = _unique_by_stem(
    p for d in hr_dirs if d.is_dir() for p in list_images(d, what="DIV2K HR images")
  )
  if last > len(hr_paths):
    raise ValueError(
      f"div2k_range {div2k_range!r} asks for image {last} but {', '.join(map(str, hr_dirs))} "
      f"hold {len(hr_paths)} HR images."
    )
  hr_paths = hr_paths[first - 1 : last]
  sub = {"SR": f"LR_bicubic/X{scale}", "DN": f"DN/{sigma:g}", "JPEG": f"JPEG/{quality}"}[task]
  lr_dirs = [root / f"DIV2K_train_{sub}", root / f"DIV2K_valid_{sub}"]
  description = f"DIV2K_{task}{f' x{scale}' if task == 'SR' else ''} {split} [{first}-{last}]"
  if not any(d.is_dir() for d in lr_dirs):
    if not synthesize_lr:
      raise ValueError(
        f"LR folder not found: {lr_dirs[0]}; {_SUFFIX_HINT} "
        f"({_synthesis_words(task, scale, sigma, quality)}) or prepare the folder."
      )
    return FolderDataset(
      hr_paths,
      None,
      scale=scale,
      degradation=_task_degradation(task, scale, sigma, quality, noise_seed),
      description=description + " (synthesised LR)",
    )
  lr_candidates = _unique_by_stem(
    p for d in lr_dirs if d.is_dir() for p in list_images(d, what="DIV2K LR images")
  )
  lr_paths = pair_by_name(
    hr_paths,
    lr_candidates,
    scale if task == "SR" else 1,
    lr_folder=" or ".join(str(d) for d in lr_dirs if d.is_dir()),
    strict_count=False,
  )
  return FolderDataset(
    hr_paths,
    lr_paths,
    scale=scale,
    input_scale=scale if task == "SR" else 1,
    description=description,
  )


def _unique_by_stem(paths: Iterable[pathlib.Path]) -> list[pathlib.Path]:
  """Paths sorted by file name; of several with the same stem, the first seen is kept."""
  unique: dict[str, pathlib.Path] = {}
  for path in paths:
    unique.setdefault(path.stem, path)
  return sorted(unique.values(), key=lambda p: p.name)


def _synthesis_words(task: str, scale: int, sigma: float, quality: int) -> str:
  return {
    "SR": f"MATLAB-bicubic imresize x1/{scale}",
    "DN": f"Gaussian noise sigma={sigma}",
    "JPEG": f"Pillow JPEG quality={quality}",
  }[task]


def realsr_dataset(
  root: PathLike, *, split: str = "train", scale: int = 4, camera: str = "all"
) -> FolderDataset:
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
    lr_paths += pair_by_name(hrs, lrs, scale, lr_folder=str(folder), strict_count=True)
  return FolderDataset(
    hr_paths, lr_paths, scale=scale, description=f"RealSR {camera} x{scale} {split}"
  )


def _benchmark_folder(root: pathlib.Path, name: str | None) -> pathlib.Path:
  """``root`` itself, or ``root/<name>`` (or an alias) when it exists."""
  if name is None:
    return root
  for candidate in (name, *_BENCHMARK_ALIASES.get(name, ())):
    if (root / candidate).is_dir():
      return root / candidate
  return root


def benchmark_dataset(
  root: PathLike,
  *,
  name: str | None = None,
  task: str = "SR",
  scale: int = 4,
  sigma: float = 10,
  quality: int = 10,
  synthesize_lr: bool = False,
  noise_seed: int = 0,
) -> FolderDataset:
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
    lr_paths = pair_by_name(
      hr_paths,
      list_images(lr_folder, what=f"{description} LR images"),
      scale,
      lr_folder=str(lr_folder),
      strict_count=True,
    )
    return FolderDataset(
      hr_paths,
      lr_paths,
      scale=scale,
      input_scale=scale if task == "SR" else 1,
      description=description,
    )
  expected = " or ".join(f"{folder / h} + {folder / l}" for h, l in layouts)
  if hr_only is None:
    raise ValueError(f"No {description} images found: expected {expected}.")
  if not synthesize_lr:
    raise ValueError(
      f"LR folder not found: {hr_only[1]}; {_SUFFIX_HINT} "
      f"({_synthesis_words(task, scale, sigma, quality)}) or prepare the folder."
    )
  return FolderDataset(
    hr_only[0],
    None,
    scale=scale,
    degradation=_task_degradation(task, scale, sigma, quality, noise_seed),
    description=description + " (synthesised LR)",
  )


def folder_dataset(
  dataset: str,
  root: PathLike,
  *,
  split: str = "train",
  scale: int = 4,
  div2k_range: str = DEFAULT_DIV2K_RANGE,
  camera: str = "all",
  sigma: float = 10,
  quality: int = 10,
  synthesize_lr: bool = False,
  noise_seed: int = 0,
) -> FolderDataset:
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
    return div2k_dataset(
      root,
      split=split,
      task=name.task,
      scale=scale,
      div2k_range=div2k_range,
      sigma=sigma,
      quality=quality,
      synthesize_lr=synthesize_lr,
      noise_seed=noise_seed,
    )
  if name.kind == "realsr":
    return realsr_dataset(root, split=split, scale=scale, camera=camera)
  if name.kind != "benchmark":
    raise ValueError(
      f"Unknown folder dataset {dataset!r}: use DIV2K_SR, DIV2K_DN, DIV2K_JPEG, RealSR or "
      f"<Set>_SR/_DN/_JPEG (e.g. Set5_SR)."
    )
  _check_split(split)
  return benchmark_dataset(
    root,
    name=name.set_name,
    task=name.task,
    scale=scale,
    sigma=sigma,
    quality=quality,
    synthesize_lr=synthesize_lr,
    noise_seed=noise_seed,
  )
