"""Folder data sets in their published layouts: DIV2K, RealSR, benchmark sets, DN, JPEG.

Each layout is read by a private builder that takes the ``DataSpec`` whole
(``folder_source(spec, split)`` picks it) and returns a ``FolderDataset``
(``cutblur_jax.data.image_folders``: the listing, the pairing by name and the invariants of
every pair). The public builders (``div2k_dataset``, ``realsr_dataset``,
``benchmark_dataset``, ``folder_dataset``) are the boundary: they make the ``DataSpec``
from their arguments, with ``spec.DATA_DEFAULTS`` for the rest.

Synthesised inputs are deterministic: bicubic LR is MATLAB ``imresize`` of the
mod-cropped HR, Gaussian noise is seeded by ``(noise_seed, crc32(name))`` so an
image's noise does not depend on the split or the order, JPEG is Pillow's encoder
at ``quality``. ``write_lr_folder`` saves synthesised LR images once, in a layout
these data sets read back.
"""

from __future__ import annotations

import pathlib
import re
from typing import Any, Iterable

from cutblur_jax.data.degradations import Degradation
from cutblur_jax.data.image_folders import (
  IMAGE_EXTENSIONS,
  FolderDataset,
  PathLike,
  list_images,
  pair_by_name,
  write_lr_folder,
)
from cutblur_jax.data.spec import TASKS, DatasetName, DataSpec

# FolderDataset, IMAGE_EXTENSIONS, list_images and write_lr_folder are re-exported:
# they were first defined here.
__all__ = [
  "BENCHMARK_SETS",
  "FolderDataset",
  "IMAGE_EXTENSIONS",
  "benchmark_dataset",
  "div2k_dataset",
  "folder_dataset",
  "folder_source",
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


_SPLITS = ("train", "validation", "test")


def _check_split(split: str) -> str:
  if split not in _SPLITS:
    raise ValueError(f"`split` must be 'train', 'validation' or 'test', got {split!r}.")
  return split


def _degradation(spec: DataSpec) -> Degradation:
  return Degradation.for_task(
    spec.task,
    scale=spec.data_scale,
    sigma=spec.sigma,
    quality=spec.quality,
    noise_seed=spec.noise_seed,
  )


def _level(spec: DataSpec) -> str:
  """The LR folder's name for the task: ``X{scale}``, the noise sigma or the JPEG quality."""
  return {"SR": f"X{spec.data_scale}", "DN": f"{spec.sigma:g}", "JPEG": f"{spec.quality}"}[
    spec.task
  ]


def _synthesised(hr_paths: list[pathlib.Path], spec: DataSpec, description: str, lr_folder):
  """A data set whose LR is made from HR, when ``synthesize_lr`` allows it."""
  if not spec.synthesize_lr:
    raise ValueError(
      f"LR folder not found: {lr_folder}; {_SUFFIX_HINT} ({_synthesis_words(spec)}) "
      "or prepare the folder."
    )
  return FolderDataset(
    hr_paths,
    None,
    scale=spec.data_scale,
    degradation=_degradation(spec),
    description=description + " (synthesised LR)",
  )


def _paired(hr_paths, lr_paths, spec: DataSpec, description: str) -> FolderDataset:
  return FolderDataset(
    hr_paths, lr_paths, scale=spec.data_scale, input_scale=spec.data_scale, description=description
  )


def _div2k(spec: DataSpec, split: str) -> FolderDataset:
  root, scale, task = pathlib.Path(spec.dataset_root), spec.data_scale, spec.task
  train_range, valid_range = parse_div2k_range(spec.div2k_range)
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
      f"div2k_range {spec.div2k_range!r} asks for image {last} but "
      f"{', '.join(map(str, hr_dirs))} hold {len(hr_paths)} HR images."
    )
  hr_paths = hr_paths[first - 1 : last]
  sub = f"LR_bicubic/{_level(spec)}" if task == "SR" else f"{task}/{_level(spec)}"
  lr_dirs = [root / f"DIV2K_train_{sub}", root / f"DIV2K_valid_{sub}"]
  description = f"DIV2K_{task}{f' x{scale}' if task == 'SR' else ''} {split} [{first}-{last}]"
  if not any(d.is_dir() for d in lr_dirs):
    return _synthesised(hr_paths, spec, description, lr_dirs[0])
  lr_candidates = _unique_by_stem(
    p for d in lr_dirs if d.is_dir() for p in list_images(d, what="DIV2K LR images")
  )
  lr_paths = pair_by_name(
    hr_paths,
    lr_candidates,
    scale,
    lr_folder=" or ".join(str(d) for d in lr_dirs if d.is_dir()),
    strict_count=False,
  )
  return _paired(hr_paths, lr_paths, spec, description)


def _unique_by_stem(paths: Iterable[pathlib.Path]) -> list[pathlib.Path]:
  """Paths sorted by file name; of several with the same stem, the first seen is kept."""
  unique: dict[str, pathlib.Path] = {}
  for path in paths:
    unique.setdefault(path.stem, path)
  return sorted(unique.values(), key=lambda p: p.name)


def _synthesis_words(spec: DataSpec) -> str:
  return {
    "SR": f"MATLAB-bicubic imresize x1/{spec.data_scale}",
    "DN": f"Gaussian noise sigma={spec.sigma:g}",
    "JPEG": f"Pillow JPEG quality={spec.quality}",
  }[spec.task]


_CAMERAS = {"canon": ["Canon"], "nikon": ["Nikon"], "all": ["Canon", "Nikon"]}


def _realsr(spec: DataSpec, split: str) -> FolderDataset:
  if spec.camera not in _CAMERAS:
    raise ValueError(f"`camera` must be one of canon, nikon, all; got {spec.camera!r}.")
  root, scale = pathlib.Path(spec.dataset_root), spec.scale
  subdir = "Train" if split == "train" else "Test"
  hr_paths, lr_paths = [], []
  for name in _CAMERAS[spec.camera]:
    folder = root / name / subdir / str(scale)
    files = list_images(folder, what=f"RealSR {name} {subdir} x{scale} images")
    hrs = [p for p in files if re.search(r"_HR$", p.stem)]
    lrs = [p for p in files if re.search(r"_LR\d*$", p.stem)]
    if not hrs:
      raise ValueError(f"No *_HR images in {folder}.")
    hr_paths += hrs
    lr_paths += pair_by_name(hrs, lrs, scale, lr_folder=str(folder), strict_count=True)
  # input_scale None: read from the files (version 1 pairs are same-size, version 3 not).
  return FolderDataset(
    hr_paths, lr_paths, scale=scale, description=f"RealSR {spec.camera} x{scale} {split}"
  )


def _benchmark_folder(root: pathlib.Path, name: str | None) -> pathlib.Path:
  """``root`` itself, or ``root/<name>`` (or an alias) when it exists."""
  if name is None:
    return root
  for candidate in (name, *_BENCHMARK_ALIASES.get(name, ())):
    if (root / candidate).is_dir():
      return root / candidate
  return root


def _benchmark(spec: DataSpec, split: str) -> FolderDataset:
  del split  # a benchmark set gives the same images for every split, like the reference
  name, task, scale = spec.dataset.set_name, spec.task, spec.data_scale
  folder = _benchmark_folder(pathlib.Path(spec.dataset_root), name)
  level = _level(spec)
  if task == "SR":
    layouts = [("HR", level), ("HR", f"LR_bicubic/{level}"), ("GTmod12", f"LRbicx{scale}")]
  else:
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
    lr_images = list_images(lr_folder, what=f"{description} LR images")
    lr_paths = pair_by_name(hr_paths, lr_images, scale, lr_folder=str(lr_folder), strict_count=True)
    return _paired(hr_paths, lr_paths, spec, description)
  if hr_only is None:
    expected = " or ".join(f"{folder / h} + {folder / l}" for h, l in layouts)
    raise ValueError(f"No {description} images found: expected {expected}.")
  return _synthesised(hr_only[0], spec, description, hr_only[1])


_BUILDERS = {"div2k": _div2k, "realsr": _realsr, "benchmark": _benchmark}


def folder_source(spec: DataSpec, split: str = "train") -> FolderDataset:
  """The folder data set a ``DataSpec`` describes, in its published layout.

  Raises:
    ValueError: an empty ``dataset_root``, a name that is no folder data set, a bad split,
      or a folder that does not hold the layout (naming it).
  """
  if not spec.dataset_root:
    raise ValueError(f"`dataset_root` is empty: set it to the folder that holds {spec.name}.")
  builder = _BUILDERS.get(spec.dataset.kind)
  if builder is None:
    raise ValueError(
      f"Unknown folder dataset {spec.name!r}: use DIV2K_SR, DIV2K_DN, DIV2K_JPEG, RealSR or "
      f"<Set>_SR/_DN/_JPEG (e.g. Set5_SR)."
    )
  return builder(spec, _check_split(split))


def _check_task(task: str) -> str:
  if task not in TASKS:
    raise ValueError(f"`task` must be 'SR', 'DN' or 'JPEG', got {task!r}.")
  return task


def div2k_dataset(
  root: PathLike, *, split: str = "train", task: str = "SR", **options: Any
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
    **options: ``DataSpec`` fields, defaults ``spec.DATA_DEFAULTS``: ``scale`` (ignored
      for DN and JPEG, whose pairs are same-size), ``div2k_range`` ("1-800/801-810"),
      ``sigma`` and ``quality`` (the LR folder's name, or the synthesis setting),
      ``synthesize_lr`` (when the LR folder is missing, make LR from HR with MATLAB-bicubic
      ``imresize``, seeded Gaussian noise or Pillow JPEG instead of raising) and
      ``noise_seed``.

  Returns:
    A ``FolderDataset``.

  Examples:
    >>> train = div2k_dataset("/data/DIV2K", split="train", scale=4)  # doctest: +SKIP
  """
  name = DatasetName(f"DIV2K_{_check_task(task)}", "div2k", task, "DIV2K")
  return _div2k(_spec(name, root, options), _check_split(split))


def realsr_dataset(root: PathLike, *, split: str = "train", **options: Any) -> FolderDataset:
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
    **options: ``scale`` (2, 3 or 4: the folder name; default 4) and ``camera``
      ("canon", "nikon" or "all", Canon then Nikon as the reference; default "all").

  Returns:
    A ``FolderDataset``.

  Examples:
    >>> test = realsr_dataset("/data/RealSR", split="test", camera="canon")  # doctest: +SKIP
  """
  name = DatasetName("RealSR", "realsr", "SR", "RealSR")
  return _realsr(_spec(name, root, options), _check_split(split))


def benchmark_dataset(
  root: PathLike, *, name: str | None = None, task: str = "SR", **options: Any
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
    **options: ``DataSpec`` fields as for ``div2k_dataset``: ``scale``, ``sigma``,
      ``quality``, ``synthesize_lr``, ``noise_seed``.

  Returns:
    A ``FolderDataset`` (the same images for every split, like the reference).

  Examples:
    >>> set5 = benchmark_dataset("/data/benchmark", name="Set5", scale=4)  # doctest: +SKIP
  """
  label = f"{name or 'benchmark'}_{_check_task(task)}"
  return _benchmark(_spec(DatasetName(label, "benchmark", task, name), root, options), "test")


def folder_dataset(dataset: str, root: PathLike, *, split: str = "train", **options: Any):
  """A folder data set chosen by the reference's ``--dataset`` name.

  Args:
    dataset: "DIV2K_SR", "DIV2K_DN", "DIV2K_JPEG", "RealSR", or
      "<Set>_SR" / "<Set>_DN" / "<Set>_JPEG" for a benchmark set (e.g.
      "Set5_SR", "Urban100_SR", "CBSD68_DN").
    root: the reference's ``dataset_root``.
    split: "train", "validation" or "test".
    **options: the other ``DataSpec`` fields (``scale``, ``div2k_range``, ``camera``,
      ``sigma``, ``quality``, ``synthesize_lr``, ``noise_seed``).

  Returns:
    A ``FolderDataset``.

  Examples:
    >>> folder_dataset("Set5_SR", "/data/benchmark/Set5", split="test", scale=4)  # doctest: +SKIP
  """
  return folder_source(
    DataSpec.from_config(None, dataset=dataset, dataset_root=root, **options), split
  )


def _spec(name: DatasetName, root: PathLike, options: dict[str, Any]) -> DataSpec:
  return DataSpec.from_config(None, dataset=name, dataset_root=root, **options)
