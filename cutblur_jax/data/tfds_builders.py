"""A TFDS builder that packs any folder data set into array_record, without TensorFlow.

``CutblurFolders`` (TFDS name ``cutblur_folders``) reads a folder set from
``manual_dir`` (the reference's ``dataset_root``) with ``folder_dataset`` and
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
from typing import Iterator

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds
from etils import epath

from cutblur_jax.data.folders import folder_dataset, parse_div2k_range
from cutblur_jax.data.spec import DEFAULT_DIV2K_RANGE, parse_dataset

_VERSION = "1.0.0"


def folder_config_name(
  dataset: str,
  *,
  scale: int = 4,
  div2k_range: str = DEFAULT_DIV2K_RANGE,
  camera: str = "all",
  sigma: float = 10,
  quality: int = 10,
  synthesize_lr: bool = False,
  noise_seed: int = 0,
) -> str:
  """The ``cutblur_folders`` config name for a folder data set's options.

  Args:
    dataset: the reference's ``--dataset`` ("DIV2K_SR", "RealSR", "Set5_SR", ...).
    scale, div2k_range, camera, sigma, quality: the reference's options.
    synthesize_lr: adds ``_synth`` (the LR may be synthesised).
    noise_seed: adds ``_seed<n>`` to synthesised DN sets when not 0.

  Returns:
    A TFDS config name.

  Examples:
    >>> folder_config_name("DIV2K_SR", scale=2)
    'div2k_sr_x2'
    >>> folder_config_name("DIV2K_DN", scale=1, sigma=30)
    'div2k_dn_sigma30'
  """
  parsed = parse_dataset(dataset)
  if parsed.kind not in ("div2k", "realsr", "benchmark"):
    raise ValueError(f"Unknown folder dataset {dataset!r}.")
  if parsed.is_realsr:
    return f"realsr_{camera}_x{scale}"
  task = parsed.task
  level = {"SR": f"x{scale}", "DN": f"sigma{sigma:g}", "JPEG": f"q{quality}"}[task]
  name = f"{parsed.set_name.lower()}_{task.lower()}_{level}"
  if parsed.is_div2k and div2k_range != DEFAULT_DIV2K_RANGE:
    (a, b), (c, d) = parse_div2k_range(div2k_range)
    name += f"_r{a}-{b}_{c}-{d}"
  if synthesize_lr:
    name += "_synth"
    if task == "DN" and noise_seed:
      name += f"_seed{noise_seed}"
  return name


@dataclasses.dataclass(eq=False)
class FolderSetConfig(tfds.core.BuilderConfig):
  """``cutblur_folders`` options: the reference's data options plus LR synthesis."""

  dataset: str = "DIV2K_SR"
  scale: int = 4
  div2k_range: str = DEFAULT_DIV2K_RANGE
  camera: str = "all"
  sigma: float = 10
  quality: int = 10
  synthesize_lr: bool = False
  noise_seed: int = 0

  @property
  def splits(self) -> tuple[str, ...]:
    kind = parse_dataset(self.dataset).kind
    if kind == "div2k":
      return ("train", "validation")
    if kind == "realsr":
      return ("train", "test")
    return ("test",)


def folder_set_config(
  dataset: str,
  *,
  scale: int = 4,
  div2k_range: str = DEFAULT_DIV2K_RANGE,
  camera: str = "all",
  sigma: float = 10,
  quality: int = 10,
  synthesize_lr: bool = False,
  noise_seed: int = 0,
) -> FolderSetConfig:
  """A ``FolderSetConfig`` named by ``folder_config_name``.

  Examples:
    >>> folder_set_config("RealSR", scale=4, camera="canon").name
    'realsr_canon_x4'
  """
  name = folder_config_name(
    dataset,
    scale=scale,
    div2k_range=div2k_range,
    camera=camera,
    sigma=sigma,
    quality=quality,
    synthesize_lr=synthesize_lr,
    noise_seed=noise_seed,
  )
  return FolderSetConfig(
    name=name,
    version=_VERSION,
    description=f"{dataset} ({name}) packed from its folders.",
    dataset=dataset,
    scale=scale,
    div2k_range=div2k_range,
    camera=camera,
    sigma=sigma,
    quality=quality,
    synthesize_lr=synthesize_lr,
    noise_seed=noise_seed,
  )


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
    data = folder_dataset(
      config.dataset,
      os.fspath(root),
      split=split,
      scale=config.scale,
      div2k_range=config.div2k_range,
      camera=config.camera,
      sigma=config.sigma,
      quality=config.quality,
      synthesize_lr=config.synthesize_lr,
      noise_seed=config.noise_seed,
    )
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
  dataset: str,
  *,
  manual_dir: str | os.PathLike,
  data_dir: str | os.PathLike,
  scale: int = 4,
  div2k_range: str = DEFAULT_DIV2K_RANGE,
  camera: str = "all",
  sigma: float = 10,
  quality: int = 10,
  synthesize_lr: bool = False,
  noise_seed: int = 0,
) -> str:
  """Packs a folder data set into ``data_dir`` as ``cutblur_folders/<config>`` (array_record).

  Args:
    dataset: the reference's ``--dataset`` ("DIV2K_SR", "RealSR", "Set5_SR", ...).
    manual_dir: the folder set's root (the reference's ``dataset_root``).
    data_dir: TFDS data directory to write to.
    scale, div2k_range, camera, sigma, quality: the reference's options.
    synthesize_lr: synthesise missing LR folders (see ``folder_dataset``).
    noise_seed: seed of synthesised noise.

  Returns:
    The TFDS name to read it back with, e.g. ``"cutblur_folders/div2k_sr_x4"``
    (``dataset="tfds:<that>"``, ``dataset_root=data_dir``).

  Examples:
    >>> build_folder_tfds("Set5_SR", manual_dir="/data/Set5",
    ...                   data_dir="/data/tfds")  # doctest: +SKIP
    'cutblur_folders/set5_sr_x4'
  """
  config = folder_set_config(
    dataset,
    scale=scale,
    div2k_range=div2k_range,
    camera=camera,
    sigma=sigma,
    quality=quality,
    synthesize_lr=synthesize_lr,
    noise_seed=noise_seed,
  )
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
  parser.add_argument("--scale", type=int, default=4)
  parser.add_argument("--div2k_range", default=DEFAULT_DIV2K_RANGE)
  parser.add_argument("--camera", default="all")
  parser.add_argument("--sigma", type=float, default=10)
  parser.add_argument("--quality", type=int, default=10)
  parser.add_argument("--synthesize_lr", action="store_true")
  parser.add_argument("--noise_seed", type=int, default=0)
  args = parser.parse_args(argv)
  name = build_folder_tfds(
    args.dataset,
    manual_dir=args.dataset_root,
    data_dir=args.data_dir,
    scale=args.scale,
    div2k_range=args.div2k_range,
    camera=args.camera,
    sigma=args.sigma,
    quality=args.quality,
    synthesize_lr=args.synthesize_lr,
    noise_seed=args.noise_seed,
  )
  print(f"Read it with dataset='tfds:{name}', dataset_root={args.data_dir!r}")


if __name__ == "__main__":
  main()
