"""Data set names and options, parsed once: ``DatasetName`` and ``DataSpec``.

A data set name is the reference's ``--dataset`` (``DIV2K_SR``, ``DIV2K_DN``,
``DIV2K_JPEG``, ``RealSR``, ``<Set>_SR``/``_DN``/``_JPEG`` for a benchmark folder such as
``Set5_SR``), ``embedded`` (the photos shipped with scikit-image; ``embedded_DN`` and
``embedded_JPEG`` synthesise noise or JPEG artifacts on them) or ``tfds:NAME`` (a
prepared TensorFlow Datasets copy). ``parse_dataset(name)`` is the one place that reads
such a string; everything else (the folder readers, the TFDS packer, the training
presets, the evaluation protocol, the MoA presets, the CLIs) asks the ``DatasetName`` it
returns:

* ``kind``: ``"div2k"``, ``"realsr"``, ``"benchmark"``, ``"embedded"`` or ``"tfds"``;
* ``task``: ``"SR"``, ``"DN"`` (denoising) or ``"JPEG"`` (artifact removal);
* ``reference``: the reference's name of the data it holds, so a TFDS copy of DIV2K is
  trained and evaluated like DIV2K (``tfds:div2k/bicubic_x4`` is ``DIV2K_SR``);
* ``eval_protocol(scale)``: the ``EvalProtocol`` (``option.py``'s ``crop_border`` and
  ``y_only``, and the Y rounding) its images are measured with.

``DataSpec`` is a name with the options that select and synthesise the data
(``dataset_root``, ``scale``, ``div2k_range``, ``camera``, ``sigma``, ``quality``,
``synthesize_lr``, ``noise_seed``), built from a config once
(``DataSpec.from_config``) and passed whole to the source constructors. Its field
defaults are the data defaults of the whole package (``DATA_DEFAULTS``): the training
config, the registry and the folder builders take theirs from here.

Examples:
  >>> parse_dataset("tfds:div2k/bicubic_x4").reference
  'DIV2K_SR'
  >>> parse_dataset("Urban100_SR").eval_protocol(4)
  EvalProtocol(crop_border=4, y_only=True, round_y=True)
  >>> DataSpec.from_config({"dataset": "DIV2K_DN", "scale": 4}).data_scale
  1
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Mapping

__all__ = [
  "DATASET_NAMES",
  "DATA_DEFAULTS",
  "DEFAULT_DATASET",
  "DEFAULT_DIV2K_RANGE",
  "PIPELINE_DEFAULTS",
  "DataSpec",
  "DatasetName",
  "EvalProtocol",
  "OPTION_TYPES",
  "TASKS",
  "config_value",
  "parse_dataset",
  "read_options",
  "tfds_scale",
]

TASKS = ("SR", "DN", "JPEG")
DATASET_NAMES = (
  "DIV2K_SR",
  "DIV2K_DN",
  "DIV2K_JPEG",
  "DF2K_SR",
  "DF2K_DN",
  "DF2K_JPEG",
  "RealSR",
  "Set5_SR",
  "Set14_SR",
  "B100_SR",
  "Urban100_SR",
  "Manga109_SR",
  "tfds:NAME",
  "embedded",
  "embedded_DN",
  "embedded_JPEG",
)
# The reference's default data set and train/validation split of DIV2K (1-based, inclusive).
DEFAULT_DATASET = "DIV2K_SR"
DEFAULT_DIV2K_RANGE = "1-800/801-810"

_BENCHMARK = re.compile(r"([A-Za-z0-9]+)_(SR|DN|JPEG)")
# Our TFDS packer's config names: "<set>_<task>_<level>[...]" or "realsr_<camera>_x<s>".
_FOLDER_CONFIG = re.compile(r"([a-z0-9]+)_(sr|dn|jpeg)_.*")
_TFDS_SCALE = re.compile(r"(?:^|_)x(\d+)(?:$|_)")


def _unknown(name: Any) -> ValueError:
  return ValueError(
    f"Unknown dataset {name!r}; use one of {', '.join(DATASET_NAMES)} "
    "(or <Set>_SR/_DN/_JPEG for another benchmark folder)."
  )


@dataclasses.dataclass(frozen=True)
class EvalProtocol:
  """How a data set's outputs are measured (``metrics.psnr``/``ssim``'s options).

  Made from a data set's description (``DatasetName.eval_protocol``, ``DataSpec.eval_protocol``)
  by ``EvalProtocol.of``, ``option.py``'s rule; evaluation, ``evaluate.py`` and training's
  validation all take one.

  Attributes:
    crop_border: pixels cropped from each side before measuring.
    y_only: measure the Y channel (BT.601) instead of RGB.
    round_y: Y rounded to integers (the official code) or kept float (BasicSR).

  Examples:
    >>> EvalProtocol.of("SR", 4, div2k=True)
    EvalProtocol(crop_border=10, y_only=False, round_y=True)
    >>> EvalProtocol.of("DN", 1).as_dict()
    {'crop_border': 4, 'y_only': False}
  """

  crop_border: int
  y_only: bool
  round_y: bool = True

  @classmethod
  def of(cls, task: str, scale: int, *, div2k: bool = False) -> "EvalProtocol":
    """``option.py``'s rule: ``crop_border = (6 if DIV2K else 0) + (scale if SR else 4)``;
    ``y_only`` is False for DIV2K and denoising, True otherwise."""
    crop = (6 if div2k else 0) + (int(scale) if task == "SR" else 4)
    return cls(crop, not (div2k or task == "DN"))

  def as_dict(self) -> dict[str, Any]:
    """``{"crop_border", "y_only"}``: ``metrics.eval_protocol``'s and the reports' form."""
    return {"crop_border": self.crop_border, "y_only": self.y_only}

  def options(self) -> dict[str, Any]:
    """The keywords of ``metrics.psnr``/``ssim``."""
    return dataclasses.asdict(self)

  def __str__(self) -> str:
    channel = "Y" if self.y_only else "RGB"
    return f"crop {self.crop_border}, {channel}{'' if self.round_y else ' (float Y)'}"


@dataclasses.dataclass(frozen=True)
class DatasetName:
  """A parsed data set name (``parse_dataset``).

  Attributes:
    name: the name as given.
    kind: "div2k", "df2k", "realsr", "benchmark", "embedded" or "tfds".
    task: "SR", "DN" or "JPEG".
    set_name: the folder set ("DIV2K", "RealSR", "Set5", ...); for TFDS, that of the data
      it holds when known, else None.
    tfds_name: the TFDS name after ``tfds:`` (None otherwise).
  """

  name: str
  kind: str
  task: str
  set_name: str | None = None
  tfds_name: str | None = None

  @property
  def reference(self) -> str:
    """The reference's ``--dataset`` for this data ("DIV2K_SR", "RealSR", "Set5_SR", ...)."""
    if self.set_name is None:
      return self.name
    if self.set_name == "RealSR":
      return "RealSR"
    return f"{self.set_name}_{self.task}"

  @property
  def is_div2k(self) -> bool:
    """DIV2K images, and so its protocol: DIV2K, or DF2K (validated on DIV2K)."""
    return self.set_name in ("DIV2K", "DF2K")

  @property
  def is_realsr(self) -> bool:
    return self.set_name == "RealSR"

  @property
  def same_size(self) -> bool:
    """The task keeps the image size (denoising and JPEG): its data scale is 1."""
    return self.task != "SR"

  def eval_protocol(self, scale: int) -> EvalProtocol:
    """The ``EvalProtocol`` of this data at ``scale`` (the embedded photos count as an SR
    benchmark)."""
    return EvalProtocol.of(self.task, scale, div2k=self.is_div2k)


def _from_folder_config(config: str) -> tuple[str | None, str]:
  """(set name, task) of one of our ``cutblur_folders`` TFDS configs."""
  if config.startswith("realsr_"):
    return "RealSR", "SR"
  match = _FOLDER_CONFIG.fullmatch(config)
  if not match:
    return None, "SR"
  base = match.group(1)
  known = {
    "div2k": "DIV2K",
    "set5": "Set5",
    "set14": "Set14",
    "b100": "B100",
    "urban100": "Urban100",
    "manga109": "Manga109",
  }
  return known.get(base, base.upper()), match.group(2).upper()  # the case is lost in TFDS names


def parse_dataset(name: str) -> DatasetName:
  """Reads a data set name once (module docstring).

  Raises:
    ValueError: an unknown name, listing the known ones.

  Examples:
    >>> parse_dataset("tfds:cutblur_folders/div2k_dn_sigma30").reference
    'DIV2K_DN'
    >>> parse_dataset("CBSD68_DN").kind, parse_dataset("RealSR").task
    ('benchmark', 'SR')
  """
  if not isinstance(name, str):
    raise TypeError(f"`dataset` must be a string, got {type(name).__name__}.")
  if name == "embedded":
    return DatasetName(name, "embedded", "SR")
  if name in ("embedded_DN", "embedded_JPEG"):
    return DatasetName(name, "embedded", name[len("embedded_") :])
  if name == "RealSR":
    return DatasetName(name, "realsr", "SR", "RealSR")
  if name.startswith("tfds:"):
    tfds_name = name[len("tfds:") :]
    if not tfds_name:
      raise _unknown(name)
    builder, _, config = tfds_name.split(":")[0].partition("/")
    set_name, task = None, "SR"
    if builder == "div2k":
      set_name = "DIV2K"
    elif builder == "cutblur_folders" and config:
      set_name, task = _from_folder_config(config)
    return DatasetName(name, "tfds", task, set_name, tfds_name)
  for set_name in ("DIV2K", "DF2K"):
    if name.startswith(f"{set_name}_"):
      task = name[len(set_name) + 1 :]
      if task not in TASKS:
        raise ValueError(
          f"Unknown {set_name} task in dataset {name!r}: use {set_name}_SR, {set_name}_DN or "
          f"{set_name}_JPEG."
        )
      return DatasetName(name, set_name.lower(), task, set_name)
  match = _BENCHMARK.fullmatch(name)
  if match:
    return DatasetName(name, "benchmark", match.group(2), match.group(1))
  raise _unknown(name)


def tfds_scale(tfds_name: str) -> int | None:
  """The SR scale a TFDS name implies ("div2k/bicubic_x3" -> 3), or None when it has none.

  Examples:
    >>> tfds_scale("div2k/realistic_mild_x4"), tfds_scale("cutblur_folders/div2k_dn_sigma30")
    (4, None)
  """
  config = tfds_name.split(":")[0].split("/")[-1]
  match = _TFDS_SCALE.search(config)
  return int(match.group(1)) if match else None


def config_value(config: Any, key: str) -> tuple[bool, Any]:
  """(found, value) for a ConfigDict, a mapping or an attribute object."""
  if config is None:
    return False, None
  if hasattr(config, "get") and hasattr(config, "__contains__"):
    return (True, config.get(key)) if key in config else (False, None)
  if hasattr(config, key):
    return True, getattr(config, key)
  return False, None


def read_options(
  config: Any, defaults: Mapping[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
  """``defaults``' keys read from ``config``; a missing or ``None`` field takes its default.

  ``overrides`` win over the config; a key outside ``defaults`` is a ``TypeError``.
  """
  unknown = set(overrides) - set(defaults)
  if unknown:
    raise TypeError(f"Unknown data options {sorted(unknown)}; known: {sorted(defaults)}.")
  options = {}
  for key, default in defaults.items():
    found, value = config_value(config, key)
    options[key] = overrides.get(key, value if found and value is not None else default)
  return options


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """A data set name with the options that select and synthesise its data.

  Attributes:
    dataset: the parsed name.
    dataset_root: the folder (or TFDS ``data_dir``) that holds it.
    scale: the network's scale; the data's own HR/LR ratio is ``data_scale``.
    div2k_range: DIV2K's train/validation image ranges ("1-800/801-810").
    camera: RealSR's camera ("canon", "nikon" or "all").
    sigma: the noise level of denoising data (pixel units).
    quality: the JPEG quality of artifact-removal data.
    synthesize_lr: make missing LR folders from HR instead of refusing.
    noise_seed: the seed of synthesised noise.
  """

  dataset: DatasetName
  dataset_root: str = ""
  scale: int = 4
  div2k_range: str = DEFAULT_DIV2K_RANGE
  camera: str = "all"
  sigma: float = 10
  quality: int = 10
  synthesize_lr: bool = False
  noise_seed: int = 0

  @classmethod
  def from_config(cls, config: Any = None, **overrides: Any) -> "DataSpec":
    """From a ConfigDict, mapping or object with ``dataset`` and the data fields.

    Missing or ``None`` fields take ``DATA_DEFAULTS``; ``overrides`` win. This is where a
    run parses its data set name, once.
    """
    options = read_options(config, DATA_DEFAULTS, overrides)
    name = options.pop("dataset")
    dataset = name if isinstance(name, DatasetName) else parse_dataset(str(name))
    return cls(dataset, **{key: OPTION_TYPES[key](value) for key, value in options.items()})

  @property
  def name(self) -> str:
    return self.dataset.name

  @property
  def task(self) -> str:
    return self.dataset.task

  @property
  def data_scale(self) -> int:
    """HR/LR of the data: ``scale`` for SR, 1 for the same-size DN and JPEG.

    A DN or JPEG data set is the same whatever the network's scale: the official code
    trains them at its default ``--scale 4``, a network whose x4 space-to-depth head and
    pixel-shuffle tail keep the image size.
    """
    return 1 if self.dataset.same_size else self.scale

  @property
  def eval_protocol(self) -> EvalProtocol:
    """The ``EvalProtocol`` of this data at this scale."""
    return self.dataset.eval_protocol(self.scale)

  def replace(self, **changes: Any) -> "DataSpec":
    if "dataset" in changes and isinstance(changes["dataset"], str):
      changes["dataset"] = parse_dataset(changes["dataset"])
    return dataclasses.replace(self, **changes)


# The data defaults, from DataSpec's fields: the one place they are written.
DATA_DEFAULTS: Mapping[str, Any] = {
  "dataset": DEFAULT_DATASET,
  **{f.name: f.default for f in dataclasses.fields(DataSpec) if f.name != "dataset"},
}
# How from_config brings a config value to the field's type ("" for a None root).
OPTION_TYPES: Mapping[str, Callable[[Any], Any]] = {
  "dataset_root": lambda root: str(root or ""),
  "scale": int,
  "div2k_range": str,
  "camera": str,
  "sigma": float,
  "quality": int,
  "synthesize_lr": bool,
  "noise_seed": int,
}
# The input pipeline's defaults (option.py's patch_size, batch_size, num_workers, seed).
PIPELINE_DEFAULTS: Mapping[str, Any] = {
  "patch_size": 48,
  "batch_size": 16,
  "num_workers": 2,
  "seed": 1,
}
