"""The four studies of ``experiments/reproduce.py``: their settings and their runs.

A *study* is a grid of runs. Every run starts from ``BASE_FIELDS`` over ``base_config()``:
the default run of ``experiments/configs/default.py`` (EDSR 4 blocks x 32 channels, x2,
batch 16, 24x24 LR patches, Adam at 1e-3, the embedded photos), with validation and
checkpoints only at the end. It takes the study's shared fields, then its *setting* (the
augmentation, the only thing a setting changes), its seed and, for ``regime``, a network
size and a number of training photos. Runs that share a setting and
a seed share the initialisation and the batch order, so a setting's difference against
``none`` can be taken seed by seed (a paired difference).

* ``hr_input``: none, moa and cutblur; the usual task and the HR-input PSNR.
* ``ablation``: the paper's augmentations one at a time, MoA (batch and per-sample) and
  this library's soft CutBlur and degradation mixup.
* ``regime``: none against moa over network sizes and training-set sizes.
* ``denoise``: a denoiser trained at sigma 30 with none, moa and degradation mixup,
  tested at sigma 10, 30 and 50.

``hr_input`` trains the default run's 1500 steps (lr halved at 1k); the other studies take
a few hundred steps per run, so that each fits in about an hour of a 2-core CPU.

Examples:
  >>> [s.name for s in STUDIES.values()]
  ['hr_input', 'ablation', 'regime', 'denoise']
  >>> SETTINGS["cutout_25"]
  {'augs': ('cutout',), 'alpha': (0.25,)}
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

BASELINE = "none"
# The default run's fields (experiments/configs/default.py; a test keeps them equal), with
# validation and checkpoints only at the end: a report measures the final parameters,
# never a best-by-validation pick on its test photos.
BASE_FIELDS: Mapping[str, Any] = {
  "model": "EDSR",
  "dataset": "embedded",
  "scale": 2,
  "num_blocks": 4,
  "num_channels": 32,
  "res_scale": 1.0,
  "patch_size": 24,
  "batch_size": 16,
  "lr": 1e-3,
  "decay": "1",
  "eval_every_steps": 0,
  "checkpoint_every_steps": 0,
  "log_every_steps": 50,
}


def _single(op: str, alpha: float) -> dict[str, Any]:
  """A setting that applies one op to every batch (prob 1, the reference's default)."""
  return {"augs": (op,), "alpha": (alpha,)}


# The augmentation fields of each setting; the others keep base_config's values
# (use_moa False, prob 1.0, aux_prob 1.0, aux_alpha 1.2, per_sample False). The single
# ops take MoA's alpha for that op (option.py), so each is the op as MoA runs it.
SETTINGS: dict[str, dict[str, Any]] = {
  "none": {"augs": ("none",)},
  "blend": _single("blend", 0.6),
  "rgb": _single("rgb", 1.0),
  "mixup": _single("mixup", 1.2),
  "cutout": _single("cutout", 0.001),  # MoA's: 0.1% of the pixels
  "cutout_25": _single("cutout", 0.25),
  "cutmix": _single("cutmix", 0.7),
  "cutmixup": _single("cutmixup", 0.7),
  "cutblur": _single("cutblur", 0.7),
  "moa": {"use_moa": True},
  "moa_per_sample": {"use_moa": True, "per_sample": True},
  "soft_cutblur": _single("soft_cutblur", 0.7),
  "degradation_mixup": _single("degradation_mixup", 1.0),
}
# The fields a setting may set: nothing else differs between the settings of a study.
AUGMENT_FIELDS = (
  "use_moa",
  "augs",
  "prob",
  "alpha",
  "mix_p",
  "aux_prob",
  "aux_alpha",
  "per_sample",
)


@dataclasses.dataclass(frozen=True)
class Study:
  """One study: its settings, defaults and what it measures.

  Attributes:
    name: the ``--study`` name.
    settings: the setting names it runs by default, ``none`` first.
    num_train_steps: the default budget per run.
    fields: config fields every run of the study shares (over ``BASE_FIELDS``).
    hr_input: whether runs measure the HR-input PSNR.
    sizes: ``regime``'s network sizes, ``(num_blocks, num_channels)``.
    train_images: ``regime``'s training-set sizes (the first N embedded photos).
    test_sigmas: ``denoise``'s test noise levels.

  What each study tests, its claim and its verdict are in docs/reproducing.md.
  """

  name: str
  settings: tuple[str, ...]
  num_train_steps: int
  fields: Mapping[str, Any]
  hr_input: bool = True
  sizes: tuple[tuple[int, int], ...] = ()
  train_images: tuple[int, ...] = ()
  test_sigmas: tuple[int, ...] = ()

  @property
  def metrics(self) -> tuple[str, ...]:
    names = ("psnr", "ssim") + (("hr_input_psnr",) if self.hr_input else ())
    return names + tuple(f"psnr_sigma{sigma}" for sigma in self.test_sigmas)


STUDIES: dict[str, Study] = {
  study.name: study
  for study in (
    Study("hr_input", ("none", "moa", "cutblur"), 1500, {}),
    Study("ablation", tuple(SETTINGS), 300, {}),
    Study(
      "regime",
      ("none", "moa"),
      400,
      {"batch_size": 8, "patch_size": 16},
      sizes=((2, 16), (4, 32), (8, 64)),
      train_images=(1, 3, 7),
    ),
    Study(
      "denoise",
      ("none", "moa", "degradation_mixup"),
      300,
      {"dataset": "embedded_DN", "sigma": 30, "scale": 1},
      hr_input=False,
      test_sigmas=(10, 30, 50),
    ),
  )
}


@dataclasses.dataclass(frozen=True)
class Cell:
  """One run of a study: a setting, a seed and (``regime``) a size and a data count."""

  setting: str
  seed: int
  num_blocks: int | None = None
  num_channels: int | None = None
  num_train_images: int | None = None

  @property
  def name(self) -> str:
    """The run's sub-directory, e.g. ``moa-seed0`` or ``moa-4x32-n3-seed0``."""
    if self.num_blocks is None:
      return f"{self.setting}-seed{self.seed}"
    return (
      f"{self.setting}-{self.num_blocks}x{self.num_channels}-n{self.num_train_images}"
      f"-seed{self.seed}"
    )

  @property
  def group(self) -> dict[str, Any]:
    """The fields a summary groups by: everything but the seed."""
    fields = dataclasses.asdict(self)
    fields.pop("seed")
    return {key: value for key, value in fields.items() if value is not None}

  def fields(self) -> dict[str, Any]:
    """The config fields this cell sets."""
    fields = {key: value for key, value in self.group.items() if key != "setting"}
    return {**SETTINGS[self.setting], **fields, "seed": self.seed}


def cells(
  study: Study,
  settings: Sequence[str],
  seeds: Sequence[int],
  *,
  sizes: Sequence[tuple[int, int]] = (),
  train_images: Sequence[int] = (),
) -> list[Cell]:
  """Every run of a study, seed-major so that a stopped study has whole seeds done."""
  if study.name != "regime":
    return [Cell(setting, seed) for seed in seeds for setting in settings]
  return [
    Cell(setting, seed, blocks, channels, count)
    for seed in seeds
    for blocks, channels in sizes
    for count in train_images
    for setting in settings
  ]


def expected_seconds(config: Mapping[str, Any]) -> float:
  """A rough CPU time of one run on this project's 2-core machine.

  Calibrated on the default network (4 x 32, batch 16, 24x24 LR patches at x2: about
  0.12 s a step) and scaled by the body's multiply-adds; 25 s per run for compiling and
  the final measurement. A per-sample policy runs every op, about 1.3x.
  """
  channels, blocks = config["num_channels"], config["num_blocks"]
  work = config["batch_size"] * config["patch_size"] ** 2 * (2 * blocks + 4) * channels**2
  per_step = 0.012 + 0.12 * work / (16 * 24**2 * 12 * 32**2)
  if config.get("per_sample"):
    per_step *= 1.3
  return 25.0 + per_step * config["num_train_steps"]
