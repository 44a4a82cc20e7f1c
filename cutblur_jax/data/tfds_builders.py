"""A TFDS builder that packs any folder data set into array_record, without TensorFlow.

``CutblurFolders`` (TFDS name ``cutblur_folders``) reads a folder set from
``manual_dir`` (the reference's ``dataset_root``) with ``folder_source`` and
writes its pairs, as PNG, to ``array_record`` files that ``tfds.data_source``
(and so ``TfdsDataset`` / ``dataset="tfds:cutblur_folders/<config>"``) reads
by random access.

Invariants and limits:

* TensorFlow is never imported. TFDS 4.9.10 generates without TensorFlow when
  the features are given as encoded bytes (it encodes NumPy images with
  ``tf.image``, so this builder hands it PNG bytes) and the file format is
  ``array_record`` (its TFRecord writer needs TensorFlow); the builder defaults
  to ``array_record``. Generation runs in one process (no Apache Beam).
* Files that are already 8-bit RGB PNG and need no alignment are stored
  byte for byte; anything else (synthesised LR, JPEG/BMP/16-bit/gray input,
  mod-cropped HR) is encoded losslessly with Pillow.
* A record is ``{"hr": image, "lr": image, "name": text}`` keyed by name; the
  splits are DIV2K: train/validation (``div2k_range``), RealSR: train/test,
  benchmark sets: test. TFDS stores records in hashed-key order.
* Config names are a function of the options (``folder_config_name``), e.g.
  ``div2k_sr_x4``, ``div2k_dn_sigma30``, ``realsr_canon_x4``, ``set5_sr_x4``;
  a non-default ``div2k_range`` adds a suffix like ``_r1-100_801-805`` and
  ``synthesize_lr`` adds ``_synth``. The common ones are predefined; any other
  is a custom config, which ``tfds.data_source`` reads back from its files.
"""

from __future__ import annotations

import argparse
import dataclasses
import io as _io
import os
import pathlib
from typing import Any, Iterator

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds
from etils import epath

from cutblur_jax.data.folders import folder_source, parse_div2k_range
from cutblur_jax.data.spec import (
  DATA_DEFAULTS,
  DEFAULT_DIV2K_RANGE,
  OPTION_TYPES,
  DataSpec,
  parse_dataset,
)

_VERSION = "1.0.0"


# The options a packed set is made with (DataSpec's, bar the folder it is read from).
_OPTIONS = tuple(key for key in DATA_DEFAULTS if key not in ("dataset", "dataset_root"))


def _folder_spec(dataset: str, options: dict[str, Any], root: str = "") -> DataSpec:
  spec = DataSpec.from_config(None, dataset=dataset, dataset_root=root, **options)
  if spec.dataset.kind not in ("div2k", "df2k", "realsr", "benchmark"):
    raise ValueError(f"Unknown folder dataset {dataset!r}.")
  return spec


def _config_name(spec: DataSpec) -> str:
  if spec.dataset.is_realsr:
    return f"realsr_{spec.camera}_x{spec.scale}"
  task = spec.task
  level = {"SR": f"x{spec.scale}", "DN": f"sigma{spec.sigma:g}", "JPEG": f"q{spec.quality}"}[task]
  name = f"{spec.dataset.set_name.lower()}_{task.lower()}_{level}"
  if spec.dataset.is_div2k and spec.div2k_range != DEFAULT_DIV2K_RANGE:
    (a, b), (c, d) = parse_div2k_range(spec.div2k_range)
    name += f"_r{a}-{b}_{c}-{d}"
  if spec.synthesize_lr:
    name += "_synth"
    if task == "DN" and spec.noise_seed:
      name += f"_seed{spec.noise_seed}"
  return name


def folder_config_name(dataset: str, **options: Any) -> str:
  """The ``cutblur_folders`` config name for a folder data set's options.

  Args:
    dataset: the reference's ``--dataset`` ("DIV2K_SR", "RealSR", "Set5_SR", ...).
    **options: ``DataSpec``'s options (``scale``, ``div2k_range``, ``camera``, ``sigma``,
      ``quality``, ``synthesize_lr``, which adds ``_synth``, and ``noise_seed``, which
      adds ``_seed<n>`` to synthesised DN sets when not 0).

  Returns:
    A TFDS config name.

  Examples:
    >>> folder_config_name("DIV2K_SR", scale=2)
    'div2k_sr_x2'
    >>> folder_config_name("DIV2K_DN", scale=1, sigma=30)
    'div2k_dn_sigma30'
  """
  return _config_name(_folder_spec(dataset, options))


@dataclasses.dataclass(eq=False)
class FolderSetConfig(tfds.core.BuilderConfig):
  """``cutblur_folders`` options: the reference's data options plus LR synthesis."""

  dataset: str = DATA_DEFAULTS["dataset"]
  scale: int = DATA_DEFAULTS["scale"]
  div2k_range: str = DATA_DEFAULTS["div2k_range"]
  camera: str = DATA_DEFAULTS["camera"]
  sigma: float = DATA_DEFAULTS["sigma"]
  quality: int = DATA_DEFAULTS["quality"]
  synthesize_lr: bool = DATA_DEFAULTS["synthesize_lr"]
  noise_seed: int = DATA_DEFAULTS["noise_seed"]

  def spec(self, root: str = "") -> DataSpec:
    """The ``DataSpec`` of these options, read from ``root``."""
    return _folder_spec(self.dataset, {key: getattr(self, key) for key in _OPTIONS}, root)

  @property
  def splits(self) -> tuple[str, ...]:
    kind = parse_dataset(self.dataset).kind
    if kind in ("div2k", "df2k"):
      return ("train", "validation")
    if kind == "realsr":
      return ("train", "test")
    return ("test",)


def _set_config(spec: DataSpec) -> FolderSetConfig:
  name = _config_name(spec)
  return FolderSetConfig(
    name=name,
    version=_VERSION,
    description=f"{spec.name} ({name}) packed from its folders.",
    dataset=spec.name,
    **{key: getattr(spec, key) for key in _OPTIONS},
  )


def folder_set_config(dataset: str, **options: Any) -> FolderSetConfig:
  """A ``FolderSetConfig`` named by ``folder_config_name`` (the same ``options``).

  Examples:
    >>> folder_set_config("RealSR", scale=4, camera="canon").name
    'realsr_canon_x4'
  """
  return _set_config(_folder_spec(dataset, options))


def _default_configs() -> list[FolderSetConfig]:
  configs = [folder_set_config("DIV2K_SR", scale=s) for s in (2, 3, 4)]
  configs += [folder_set_config("DIV2K_DN", scale=1, sigma=s) for s in (10, 30, 50, 70)]
  configs += [folder_set_config("DIV2K_JPEG", scale=1, quality=q) for q in (10, 20, 30, 40)]
  configs += [
    folder_set_config("RealSR", scale=s, camera=c)
    for c in ("canon", "nikon", "all")
    for s in (2, 3, 4)
  ]
  configs += [
    folder_set_config(f"{name}_SR", scale=s)
    for name in ("Set5", "Set14", "B100", "Urban100", "Manga109")
    for s in (2, 3, 4)
  ]
  return configs


def _png_bytes(image: np.ndarray, path: pathlib.Path | None) -> bytes:
  """The file's bytes when it is an 8-bit RGB PNG of exactly ``image``'s size, else a new PNG."""
  if path is not None and path.suffix.lower() == ".png":
    with Image.open(path) as header:
      # 16-bit RGB PNGs also open as mode "RGB"; their raw mode ("RGB;16B") tells them apart.
      eight_bit = bool(header.tile) and all(tile.args in ("RGB", ("RGB",)) for tile in header.tile)
      if (
        header.format == "PNG"
        and header.mode == "RGB"
        and eight_bit
        and header.size == (image.shape[1], image.shape[0])
      ):
        return path.read_bytes()
  buffer = _io.BytesIO()
  Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
  return buffer.getvalue()


class CutblurFolders(tfds.core.GeneratorBasedBuilder):
  """Folder data sets (DIV2K, RealSR, benchmark sets, DN, JPEG) as array_record."""

  VERSION = tfds.core.Version(_VERSION)
  RELEASE_NOTES = {_VERSION: "First release."}
  BUILDER_CONFIGS = _default_configs()
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
    "Set manual_dir to the data set's folder in its published layout (the reference's "
    "dataset_root), e.g. the folder holding DIV2K_train_HR/ and DIV2K_train_LR_bicubic/, "
    "or Canon/ and Nikon/ for RealSR, or HR/ and X4/ for a benchmark set."
  )

  def __init__(self, *, file_format: str | None = "array_record", **kwargs):
    # TFRecord, TFDS's default, needs TensorFlow to write; array_record does not.
    super().__init__(file_format=file_format, **kwargs)

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    # TFDS's own lookup imports `importlib_resources`, which TFDS does not
    # install on Python >= 3.9; the file itself is all it needs.
    return epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description=(
        "HR/LR image pairs packed from a folder data set by cutblur-jax. "
        + (self.builder_config.description or "")
      ),
      features=tfds.features.FeaturesDict(
        {
          "hr": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
          "lr": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
          "name": tfds.features.Text(),
        }
      ),
      supervised_keys=("lr", "hr"),
      homepage="https://github.com/clovaai/cutblur",
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = dl_manager.manual_dir
    return {
      split: self._generate_examples(root=root, split=split) for split in self.builder_config.splits
    }

  def _generate_examples(self, root, split: str) -> Iterator[tuple[str, dict]]:
    config = self.builder_config
    data = folder_source(config.spec(os.fspath(root)), split)
    for index in range(len(data)):
      pair = data[index]
      lr_path = None if data.lr_paths is None else data.lr_paths[index]
      yield (
        pair.name,
        {
          "hr": _png_bytes(pair.hr, data.hr_paths[index]),
          "lr": _png_bytes(pair.lr, lr_path),
          "name": pair.name,
        },
      )


def build_folder_tfds(
  dataset: str, *, manual_dir: str | os.PathLike, data_dir: str | os.PathLike, **options: Any
) -> str:
  """Packs a folder data set into ``data_dir`` as ``cutblur_folders/<config>`` (array_record).

  Args:
    dataset: the reference's ``--dataset`` ("DIV2K_SR", "RealSR", "Set5_SR", ...).
    manual_dir: the folder set's root (the reference's ``dataset_root``).
    data_dir: TFDS data directory to write to.
    **options: ``DataSpec``'s options: ``scale``, ``div2k_range``, ``camera``, ``sigma``,
      ``quality``, ``synthesize_lr`` (synthesise missing LR folders, see
      ``folder_dataset``) and ``noise_seed`` (the seed of synthesised noise).

  Returns:
    The TFDS name to read it back with, e.g. ``"cutblur_folders/div2k_sr_x4"``
    (``dataset="tfds:<that>"``, ``dataset_root=data_dir``).

  Examples:
    >>> build_folder_tfds("Set5_SR", manual_dir="/data/Set5",
    ...                   data_dir="/data/tfds")  # doctest: +SKIP
    'cutblur_folders/set5_sr_x4'
  """
  config = folder_set_config(dataset, **options)
  # A predefined config must be asked for by name: TFDS rejects an equal copy.
  predefined = CutblurFolders.builder_configs.get(config.name)
  builder = CutblurFolders(
    config=config.name if predefined is not None else config, data_dir=os.fspath(data_dir)
  )
  builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir))
  )
  return f"{builder.name}/{config.name}"


def main(argv: list[str] | None = None) -> None:
  """The CLI: ``python -m cutblur_jax.data.tfds_builders --dataset DIV2K_SR ...``.

  Required flags: ``--dataset``, ``--dataset_root`` (the folder set, TFDS's
  ``manual_dir``) and ``--data_dir`` (where to write); the others are the
  reference's options.
  """
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--dataset", required=True)
  parser.add_argument("--dataset_root", required=True, help="the folder set (TFDS manual_dir)")
  parser.add_argument("--data_dir", required=True, help="TFDS data_dir to write")
  for key in _OPTIONS:
    default = DATA_DEFAULTS[key]
    if isinstance(default, bool):
      parser.add_argument(f"--{key}", action="store_true")
    else:
      parser.add_argument(f"--{key}", type=OPTION_TYPES[key], default=default)
  args = parser.parse_args(argv)
  name = build_folder_tfds(
    args.dataset,
    manual_dir=args.dataset_root,
    data_dir=args.data_dir,
    **{key: getattr(args, key) for key in _OPTIONS},
  )
  print(f"Read it with dataset='tfds:{name}', dataset_root={args.data_dir!r}")


if __name__ == "__main__":
  main()
