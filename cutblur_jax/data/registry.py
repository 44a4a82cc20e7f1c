"""Data set and pipeline selection by config, with the official CLI's names.

One field picks the data: ``dataset`` is one of the reference's names
(``DIV2K_SR``, ``DIV2K_DN``, ``DIV2K_JPEG``, ``RealSR``, ``Set5_SR``,
``Set14_SR``, ``B100_SR``, ``Urban100_SR``, ``Manga109_SR``, or any
``<Set>_SR/_DN/_JPEG`` benchmark folder), ``tfds:<name>`` for a prepared TFDS
data set (``dataset_root`` is then the TFDS ``data_dir``), or ``embedded`` for
the photos shipped with scikit-image (no download; ``embedded_DN`` and ``embedded_JPEG``
add synthesised noise of ``sigma`` or JPEG artifacts of ``quality`` to them).

The other fields keep the reference's names and defaults (``option.py``):
``dataset_root`` (""), ``scale`` (4), ``div2k_range`` ("1-800/801-810"),
``camera`` ("all"), ``sigma`` (10), ``quality`` (10), ``patch_size`` (48),
``batch_size`` (16), ``num_workers`` (2), ``seed`` (1); plus ours:
``synthesize_lr`` (False), ``noise_seed`` (0). A config is an
``ml_collections.ConfigDict``, a dict or any object with these attributes; other
fields are ignored, and a config without ``dataset`` but with a ``data``
sub-config is read from ``data``.
"""

from __future__ import annotations

import collections.abc
from typing import Any, Mapping, Sequence

from cutblur_jax.data.spec import (
  DATA_DEFAULTS,
  DATASET_NAMES,
  PIPELINE_DEFAULTS,
  DataSpec,
  config_value,
  parse_dataset,
  read_options,
)
from cutblur_jax.data.types import ImagePair

__all__ = [
  "DATASET_NAMES",
  "DEFAULTS",
  "create_dataset",
  "create_pipeline",
  "data_options",
  "data_spec",
  "first_images",
  "reference_dataset_name",
]

# Every data field with its default: spec.DATA_DEFAULTS and spec.PIPELINE_DEFAULTS.
DEFAULTS: Mapping[str, Any] = {**DATA_DEFAULTS, **PIPELINE_DEFAULTS}


def _data_config(config: Any) -> Any:
  """``config``, or its ``data`` sub-config when only that has a ``dataset``."""
  found, _ = config_value(config, "dataset")
  if not found:
    has_data, data = config_value(config, "data")
    if has_data and data is not None and config_value(data, "dataset")[0]:
      return data
  return config


def data_options(config_or_kwargs: Any = None, **overrides: Any) -> dict[str, Any]:
  """The data fields of a config, with the reference's defaults filled in.

  Args:
    config_or_kwargs: a ConfigDict, dict or attribute object (or None).
    **overrides: fields that take precedence over the config.

  Returns:
    A dict with every key of ``DEFAULTS``.

  Examples:
    >>> data_options({"dataset": "Set5_SR", "scale": 2})["patch_size"]
    48
  """
  options = read_options(_data_config(config_or_kwargs), DEFAULTS, overrides)
  options["dataset_root"] = str(options["dataset_root"] or "")
  for key in ("scale", "quality", "patch_size", "batch_size", "num_workers", "seed", "noise_seed"):
    options[key] = int(options[key])
  return options


def data_spec(config_or_kwargs: Any = None, **overrides: Any) -> DataSpec:
  """The ``DataSpec`` of a config (a ``DataSpec`` is returned as it is, with ``overrides``).

  Fields outside ``DataSpec`` (``patch_size``, ...) are ignored; an unknown one is a
  ``TypeError``.
  """
  unknown = set(overrides) - set(DEFAULTS)
  if unknown:
    raise TypeError(f"Unknown data options {sorted(unknown)}; known: {sorted(DEFAULTS)}.")
  overrides = {key: value for key, value in overrides.items() if key in DATA_DEFAULTS}
  if isinstance(config_or_kwargs, DataSpec):
    return config_or_kwargs.replace(**overrides) if overrides else config_or_kwargs
  return DataSpec.from_config(_data_config(config_or_kwargs), **overrides)


def reference_dataset_name(dataset: str) -> str:
  """The reference's ``--dataset`` name of a data set (``spec.DatasetName.reference``).

  The reference's names are returned unchanged; a ``tfds:`` name maps to the data it
  holds, so that a TFDS copy of DIV2K is trained and evaluated like DIV2K.

  Examples:
    >>> reference_dataset_name("tfds:div2k/bicubic_x4")
    'DIV2K_SR'
    >>> reference_dataset_name("tfds:cutblur_folders/div2k_dn_sigma30")
    'DIV2K_DN'
  """
  return parse_dataset(dataset).reference


def _source(kind: str):
  """The source constructor of a kind of data set: ``(spec, split) -> Sequence[ImagePair]``.

  Imported on use: TFDS takes seconds to import, the embedded photos need scikit-image.
  """
  if kind == "embedded":
    from cutblur_jax.data.embedded import embedded_source  # pylint: disable=g-import-not-at-top

    return embedded_source
  if kind == "tfds":
    from cutblur_jax.data.tfds_sources import tfds_source  # pylint: disable=g-import-not-at-top

    return tfds_source
  from cutblur_jax.data.folders import folder_source  # pylint: disable=g-import-not-at-top

  return folder_source


def create_dataset(
  config_or_kwargs: Any = None, split: str = "train", **overrides: Any
) -> Sequence[ImagePair]:
  """The data set a config (or a ``DataSpec``) names, as a sequence of full-image ``ImagePair``.

  Args:
    config_or_kwargs: a ``DataSpec``, or a ConfigDict / dict / object with the data fields
      (see the module docstring), or None for the defaults.
    split: "train", "validation" or "test" (benchmark sets give the same
      images for every split, like the reference).
    **overrides: data fields that take precedence over the config.

  Returns:
    A ``FolderDataset``, ``TfdsDataset`` or the embedded data set; each has ``scale`` and
    ``input_scale`` (HR size / LR size of its pairs) attributes.

  Raises:
    ValueError: for an unknown ``dataset`` (listing the names) or bad data.

  Examples:
    >>> data = create_dataset({"dataset": "embedded", "scale": 4}, "train")  # doctest: +SKIP
    >>> data = create_dataset(config.data, "validation")  # a ConfigDict  # doctest: +SKIP
  """
  spec = data_spec(config_or_kwargs, **overrides)
  return _source(spec.dataset.kind)(spec, split)


def create_pipeline(
  config_or_kwargs: Any = None,
  *,
  dataset: Sequence[ImagePair] | None = None,
  process_index: int | None = None,
  process_count: int | None = None,
  flip_and_rotate: bool = False,
  prefetch: int = 2,
  cache: bool = True,
  source: str | None = None,
  cache_dir: str | None = None,
  worker_processes: int = 0,
  **overrides: Any,
):
  """The training ``TrainPipeline`` for a config (its train split, patch and batch sizes, seed).

  Args:
    config_or_kwargs: as for ``create_dataset``.
    dataset: an already built train data set (default: ``create_dataset(config, "train")``).
    process_index, process_count: this host and the number of hosts (default: JAX's).
    flip_and_rotate: host-side flips/transposes (the train step does them on device).
    prefetch: batches built ahead.
    cache: decode every image once and keep it as uint8 (the reference does);
      ``False`` decodes per sample.
    source, cache_dir, worker_processes: ``TrainPipeline``'s: where crops read decoded
      images (``"memory"``, ``"disk"``, ``"files"`` or ``"auto"``), the disk source's
      folder, and grain worker processes.
    **overrides: data fields that take precedence over the config.

  Returns:
    A ``TrainPipeline``; ``get_state()``/``set_state()`` give its position.

  Examples:
    >>> config = {"dataset": "embedded", "scale": 2, "batch_size": 4}
    >>> pipeline = create_pipeline(config)  # doctest: +SKIP
    >>> next(pipeline)["hr"].shape  # doctest: +SKIP
    (4, 96, 96, 3)
  """
  from cutblur_jax.data.pipeline import TrainPipeline  # pylint: disable=g-import-not-at-top

  options = data_options(config_or_kwargs, **overrides)
  if dataset is None:
    dataset = create_dataset(config_or_kwargs, "train", **overrides)
  return TrainPipeline(
    dataset,
    patch_size=options["patch_size"],
    batch_size=options["batch_size"],
    scale=getattr(dataset, "scale", options["scale"]),
    seed=options["seed"],
    num_workers=options["num_workers"],
    prefetch=prefetch,
    process_index=process_index,
    process_count=process_count,
    flip_and_rotate=flip_and_rotate,
    cache=cache,
    source=source,
    cache_dir=cache_dir,
    worker_processes=worker_processes,
  )


class _FirstImages(collections.abc.Sequence):
  """The first ``count`` pairs of a data set, keeping its attributes (``scale``, ...)."""

  def __init__(self, dataset: Sequence[ImagePair], count: int):
    self._dataset = dataset
    self._count = count
    names = getattr(dataset, "names", None)
    if names is not None:
      self.names = list(names)[:count]

  def __len__(self) -> int:
    return self._count

  def __getitem__(self, index):
    if isinstance(index, slice):
      return [self[i] for i in range(*index.indices(self._count))]
    if not -self._count <= index < self._count:
      raise IndexError(f"index {index} out of range for {self._count} images")
    return self._dataset[index % self._count]

  def __getattr__(self, name: str) -> Any:
    if name.startswith("_"):
      raise AttributeError(name)
    return getattr(self._dataset, name)

  def __repr__(self) -> str:
    return f"first {self._count} of {self._dataset!r}"


def first_images(dataset: Sequence[ImagePair], count: int | None) -> Sequence[ImagePair]:
  """The first ``count`` images of ``dataset`` (all of them for ``None``).

  Raises:
    ValueError: if ``count`` is not a positive integer or exceeds the data set's size.

  Examples:
    >>> from cutblur_jax.data.embedded import embedded_dataset
    >>> first_images(embedded_dataset("train", 2), 3).names
    ['astronaut', 'coffee', 'colorwheel']
  """
  if count is None:
    return dataset
  if isinstance(count, bool) or not isinstance(count, int) or count < 1:
    raise ValueError(f"`num_train_images` must be a positive integer, got {count!r}.")
  if count > len(dataset):
    raise ValueError(
      f"`num_train_images` is {count}, but the train split has only {len(dataset)} images."
    )
  return dataset if count == len(dataset) else _FirstImages(dataset, count)
