"""Folder data sets in their published layouts: DIV2K, DF2K, RealSR, benchmark sets, DN, JPEG.

The public builders (``div2k_dataset``, ``realsr_dataset``, ``benchmark_dataset``,
``folder_dataset``) are the boundary: they make the ``DataSpec`` from their arguments, with
``spec.DATA_DEFAULTS`` for the rest, and hand it whole to ``folder_source``
(``cutblur_jax.data.layouts``: one reader per layout, each returning a ``FolderDataset``).

Synthesised inputs are deterministic: bicubic LR is MATLAB ``imresize`` of the
mod-cropped HR, Gaussian noise is seeded by ``(noise_seed, crc32(name))`` so an
image's noise does not depend on the split or the order, JPEG is Pillow's encoder
at ``quality``. ``write_lr_folder`` saves synthesised LR images once, in a layout
these data sets read back.
"""

from __future__ import annotations

from typing import Any

from cutblur_jax.data.image_folders import (
  IMAGE_EXTENSIONS,
  FolderDataset,
  PathLike,
  list_images,
  write_lr_folder,
)
from cutblur_jax.data.layouts import BENCHMARK_SETS, folder_source, parse_div2k_range
from cutblur_jax.data.spec import TASKS, DatasetName, DataSpec

# FolderDataset, IMAGE_EXTENSIONS, list_images, write_lr_folder and the layouts' names are
# re-exported: they were first defined here.
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
  return folder_source(_spec(name, root, options), split)


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
  return folder_source(_spec(name, root, options), split)


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
  return folder_source(_spec(DatasetName(label, "benchmark", task, name), root, options), "test")


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
  return folder_source(_spec(dataset, root, options), split)


def _spec(name: DatasetName | str, root: PathLike, options: dict[str, Any]) -> DataSpec:
  return DataSpec.from_config(None, dataset=name, dataset_root=root, **options)
