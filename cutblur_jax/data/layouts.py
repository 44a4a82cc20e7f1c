"""The published folder layouts, read from a ``DataSpec``: DIV2K, DF2K, RealSR, benchmarks.

``folder_source(spec, split)`` picks the layout's reader; each returns a ``FolderDataset``
(``cutblur_jax.data.image_folders``: the listing, the pairing by name and the invariants of
every pair) and trusts the spec (``data.folders``' public builders and ``create_dataset`` make
it). Layouts:

* DIV2K: ``DIV2K_{train,valid}_HR`` with ``DIV2K_{train,valid}_LR_bicubic/X{s}`` (or
  ``_DN/{sigma}``, ``_JPEG/{quality}``); ``div2k_range`` picks the images of each split.
* DF2K: DIV2K's train range plus every Flickr2K image (``Flickr2K_HR``,
  ``Flickr2K_LR_bicubic/X{s}``, beside the DIV2K folders or in ``Flickr2K/``) for training;
  DIV2K's validation range for validation, so a DF2K run validates as a DIV2K run does.
* RealSR (v1 same-size or v3 scaled pairs, by camera) and benchmark folders (``HR`` +
  ``LR_bicubic/X{s}``, ``GTmod12`` + ``LRbicx{s}``, ...).
"""

from __future__ import annotations

import pathlib
import re
from typing import Iterable

from cutblur_jax.data.degradations import Degradation
from cutblur_jax.data.image_folders import FolderDataset, list_images, pair_by_name
from cutblur_jax.paths import as_path, check_backend
from cutblur_jax.data.spec import DataSpec

__all__ = ["BENCHMARK_SETS", "folder_source", "parse_div2k_range"]

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
  root, scale, task = as_path(spec.dataset_root), spec.data_scale, spec.task
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


def _flickr2k_folder(root: pathlib.Path) -> pathlib.Path | None:
  """The folder holding ``Flickr2K_HR``: ``root`` itself or ``root/Flickr2K`` (the tarball)."""
  for folder in (root, root / "Flickr2K"):
    if (folder / "Flickr2K_HR").is_dir():
      return folder
  return None


def _df2k(spec: DataSpec, split: str) -> FolderDataset:
  """DF2K: DIV2K's train range plus every Flickr2K image; validated on DIV2K's range.

  The Flickr2K images sit beside the DIV2K folders in their published layout
  (``Flickr2K_HR/000001.png``, ``Flickr2K_LR_bicubic/X4/000001x4.png``; DN/JPEG inputs in
  ``Flickr2K_DN/<sigma>``, ``Flickr2K_JPEG/<quality>``), or in a ``Flickr2K`` subfolder.
  """
  div2k = _div2k(spec, split)
  if split != "train":
    return div2k
  root = as_path(spec.dataset_root)
  folder = _flickr2k_folder(root)
  if folder is None:
    raise ValueError(
      f"Flickr2K HR folder not found: {root / 'Flickr2K_HR'} or "
      f"{root / 'Flickr2K' / 'Flickr2K_HR'} (dataset_root={root}); DF2K is DIV2K plus Flickr2K."
    )
  hr_paths = list_images(folder / "Flickr2K_HR", what="Flickr2K HR images")
  sub = f"LR_bicubic/{_level(spec)}" if spec.task == "SR" else f"{spec.task}/{_level(spec)}"
  lr_dir = folder / f"Flickr2K_{sub}"
  description = f"DF2K_{spec.task}{f' x{spec.scale}' if spec.task == 'SR' else ''} train"
  hr_paths = div2k.hr_paths + hr_paths
  if div2k.lr_paths is None or not lr_dir.is_dir():
    # One data set cannot mix files and synthesis: synthesise every LR (as allowed).
    return _synthesised(hr_paths, spec, description, lr_dir)
  flickr_lr = pair_by_name(
    hr_paths[len(div2k.hr_paths) :],
    list_images(lr_dir, what="Flickr2K LR images"),
    spec.data_scale,
    lr_folder=str(lr_dir),
    strict_count=True,
  )
  return _paired(hr_paths, list(div2k.lr_paths) + flickr_lr, spec, description)


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
  root, scale = as_path(spec.dataset_root), spec.scale
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
  folder = _benchmark_folder(as_path(spec.dataset_root), name)
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


_BUILDERS = {"div2k": _div2k, "df2k": _df2k, "realsr": _realsr, "benchmark": _benchmark}


def folder_source(spec: DataSpec, split: str = "train") -> FolderDataset:
  """The folder data set a ``DataSpec`` describes, in its published layout.

  Raises:
    ValueError: an empty ``dataset_root``, a name that is no folder data set, a bad split,
      or a folder that does not hold the layout (naming it).
  """
  if not spec.dataset_root:
    raise ValueError(f"`dataset_root` is empty: set it to the folder that holds {spec.name}.")
  check_backend(spec.dataset_root, what="`dataset_root`")
  builder = _BUILDERS.get(spec.dataset.kind)
  if builder is None:
    raise ValueError(
      f"Unknown folder dataset {spec.name!r}: use DIV2K_SR, DIV2K_DN, DIV2K_JPEG, DF2K_SR, RealSR or "
      f"<Set>_SR/_DN/_JPEG (e.g. Set5_SR)."
    )
  return builder(spec, _check_split(split))
