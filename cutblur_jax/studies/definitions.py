"""The studies of ``experiments/reproduce.py``: their data, budgets, settings and runs.

A *study* is a grid of runs. Every run starts from ``BASE_FIELDS`` over ``base_config()``:
the default run's network and optimiser (``experiments/configs/default.py``: EDSR 4 blocks
x 32 channels, x2, batch 16, 24x24 LR patches, Adam at 1e-3), on natural photographs only
(``cutblur_jax.data.photos``):

* it trains on ``PhotosTrain`` (36 scenes; ``regularization``'s tiny set: a few crops of it),
* keeps its best step by PSNR on ``PhotosValid`` (3 scenes), validated every tenth of the run,
  as ``solver.py`` keeps its best,
* and is measured on the study's test data set (``PhotosTest``: 12 scenes that nothing trains
  or validates on) at its final step and at its best step.

Every budget ends annealed (``schedule``): the learning rate halves at 2/7, 4/7 and 6/7 of the
run, the paper's 200k, 400k and 600k of 700k steps scaled to the budget. The run then takes
the study's shared fields, its *setting* (the augmentation, the only thing a setting changes),
its seed and, for ``regularization``, a training set. Runs that share a seed share the
initialisation and the batch order, so a setting's difference against ``none`` is paired by
seed and by test photo.

* ``hr_input``: none, moa and cutblur; the usual task and the HR-input PSNR.
* ``ablation``: the paper's augmentations one at a time (the reference's cutout at MoA's
  0.1% and at 25% of the pixels, and the original Cutout, one box of 25% of the area) and
  MoA; ``--settings`` adds the library's per-sample MoA, soft CutBlur and degradation mixup.
* ``regularization``: none against moa for a network that overfits a tiny set, on that
  set and on every training photo (designed in docs/reproducing.md before it ran).
* ``denoise``: a denoiser trained at sigma 30 with none, moa and degradation mixup,
  tested at sigma 10, 30 and 50.

Examples:
  >>> [s.name for s in STUDIES.values()]
  ['hr_input', 'ablation', 'regularization', 'denoise']
  >>> SETTINGS["pixel_drop_25"]
  {'augs': ('cutout',), 'alpha': (0.25,)}
  >>> schedule(1400)["decay"]
  '0.4-0.8-1.2'
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

BASELINE = "none"
# The default run's network and optimiser (experiments/configs/default.py; a test keeps them
# equal), on the photos: trained on PhotosTrain, best step chosen on PhotosValid.
BASE_FIELDS: Mapping[str, Any] = {
  "model": "EDSR",
  "dataset": "PhotosTrain_SR",
  "valid_dataset": "PhotosValid_SR",
  "synthesize_lr": True,
  "scale": 2,
  "num_blocks": 4,
  "num_channels": 32,
  "res_scale": 1.0,
  "patch_size": 24,
  "batch_size": 16,
  "lr": 1e-3,
  "log_every_steps": 50,
}
# The paper's milestones (200k, 400k, 600k of 700k steps) as fractions of a budget.
MILESTONE_FRACTIONS = (2 / 7, 4 / 7, 6 / 7)
EVALUATIONS = 10  # validations per run (and latest checkpoints)


def schedule(num_train_steps: int) -> dict[str, Any]:
  """The fields that anneal a budget and validate it: ``decay``, ``eval_every_steps`` and
  ``checkpoint_every_steps`` (every tenth of the run)."""
  steps = sorted({max(1, round(num_train_steps * f)) for f in MILESTONE_FRACTIONS})
  decay = "-".join(f"{step / 1000:.3f}".rstrip("0").rstrip(".") for step in steps)
  every = max(1, num_train_steps // EVALUATIONS)
  return {"decay": decay, "eval_every_steps": every, "checkpoint_every_steps": every}


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
  "cutout": _single("cutout", 0.001),  # MoA's: drops 0.1% of the pixels
  # The reference's cutout at alpha 0.25 drops 25% of the pixels, scattered; the paper's
  # "original Cutout" erases one rectangle of 25% of the area (sides half the image's).
  "pixel_drop_25": _single("cutout", 0.25),
  "box_cutout_25": _single("box_cutout", 0.5),
  "cutmix": _single("cutmix", 0.7),
  "cutmixup": _single("cutmixup", 0.7),
  "cutblur": _single("cutblur", 0.7),
  "moa": {"use_moa": True},
  "moa_per_sample": {"use_moa": True, "per_sample": True},
  "soft_cutblur": _single("soft_cutblur", 0.7),
  "degradation_mixup": _single("degradation_mixup", 1.0),
}
# The paper's ops one at a time, both cutouts and MoA. The library's own settings
# (moa_per_sample, soft_cutblur, degradation_mixup) run with --settings.
ABLATION_SETTINGS = (
  "none",
  "blend",
  "rgb",
  "mixup",
  "cutout",
  "pixel_drop_25",
  "box_cutout_25",
  "cutmix",
  "cutmixup",
  "cutblur",
  "moa",
)
# Old setting names, still accepted by --settings.
ALIASES = {"cutout_25": "pixel_drop_25"}
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
    test_dataset: the named data set every run is measured on.
    hr_input: whether runs measure the HR-input PSNR.
    train_sets: ``regularization``'s training sets, ``"tiny"`` and ``"medium"``.
    tiny_crops, tiny_size: ``regularization``'s tiny set: this many HR crops of this side,
      one from each of the first training photos (``photos.write_crops``).
    test_sigmas: ``denoise``'s test noise levels.

  What each study tests, its claim and its verdict are in docs/reproducing.md.
  """

  name: str
  settings: tuple[str, ...]
  num_train_steps: int
  fields: Mapping[str, Any]
  test_dataset: str = "PhotosTest_SR"
  hr_input: bool = True
  train_sets: tuple[str, ...] = ()
  tiny_crops: int = 1
  tiny_size: int = 64
  test_sigmas: tuple[int, ...] = ()

  @property
  def base_metrics(self) -> tuple[str, ...]:
    """What one checkpoint is measured by."""
    names = ("psnr", "ssim") + (("hr_input_psnr",) if self.hr_input else ())
    return names + tuple(f"psnr_sigma{sigma}" for sigma in self.test_sigmas)

  @property
  def metrics(self) -> tuple[str, ...]:
    """Every metric of a run: the final step's (``psnr``, ...) and the best step's
    (``best_psnr``, ...)."""
    return self.base_metrics + tuple(f"best_{name}" for name in self.base_metrics)

  @property
  def test_passes(self) -> int:
    """Passes over the test photos per run, at most: final and best step, each with the
    HR-input test and at each test sigma (the best step is skipped when it is the final)."""
    return 2 * (2 if self.hr_input else 1) * max(1, len(self.test_sigmas))

  @property
  def tested(self) -> tuple[str, ...]:
    """The metrics whose paired differences get p-values (the study's claims)."""
    if self.test_sigmas:
      return tuple(f"best_psnr_sigma{sigma}" for sigma in self.test_sigmas)
    return ("psnr", "best_psnr") + (("hr_input_psnr",) if self.name == "hr_input" else ())


# Studies of version 1 that version 2 retired, and why (``--study`` says so).
RETIRED = {
  "regime": "retired in version 2 in favour of --study regularization, where a network "
  "overfits (docs/reproducing.md)"
}
STUDIES: dict[str, Study] = {
  study.name: study
  for study in (
    Study("hr_input", ("none", "moa", "cutblur"), 1500, {}),
    Study("ablation", ABLATION_SETTINGS, 300, {}, hr_input=False),
    Study(
      "regularization",
      ("none", "moa"),
      2000,
      {"num_blocks": 8, "num_channels": 64, "batch_size": 8, "patch_size": 16},
      hr_input=False,
      train_sets=("tiny", "medium"),
    ),
    Study(
      "denoise",
      ("none", "moa", "degradation_mixup"),
      300,
      {"dataset": "PhotosTrain_DN", "valid_dataset": "PhotosValid_DN", "sigma": 30, "scale": 1},
      test_dataset="PhotosTest_DN",
      hr_input=False,
      test_sigmas=(10, 30, 50),
    ),
  )
}


@dataclasses.dataclass(frozen=True)
class Cell:
  """One run of a study: a setting, a seed and, for ``regularization``, a training set."""

  setting: str
  seed: int
  train_set: str | None = None

  @property
  def name(self) -> str:
    """The run's sub-directory, e.g. ``moa-seed0`` or ``moa-tiny-seed0``."""
    if self.train_set is not None:
      return f"{self.setting}-{self.train_set}-seed{self.seed}"
    return f"{self.setting}-seed{self.seed}"

  @property
  def group(self) -> dict[str, Any]:
    """The fields a summary groups by: everything but the seed."""
    fields = dataclasses.asdict(self)
    fields.pop("seed")
    return {key: value for key, value in fields.items() if value is not None}

  def fields(self) -> dict[str, Any]:
    """The config fields this cell sets (a tiny training set's data set is the runner's)."""
    return {**SETTINGS[self.setting], "seed": self.seed}


def cells(
  study: Study, settings: Sequence[str], seeds: Sequence[int], *, train_sets: Sequence[str] = ()
) -> list[Cell]:
  """Every run of a study, seed-major so that a stopped study has whole seeds done."""
  if study.name == "regularization":
    return [
      Cell(setting, seed, train_set=train_set)
      for seed in seeds
      for train_set in train_sets or study.train_sets
      for setting in settings
    ]
  return [Cell(setting, seed) for seed in seeds for setting in settings]


def expected_seconds(config: Mapping[str, Any], *, test_passes: int = 2) -> float:
  """A rough CPU time of one run on this project's 2-core machine.

  Calibrated on the default network (4 x 32, batch 16, 24x24 LR patches at x2: about
  0.12 s a step) and scaled by the body's multiply-adds: 25 s per run for compiling, the
  steps, each validation (3 photos, about 2 s) and ``test_passes`` passes over the 12 test
  photos (about 12 s each; ``Study.test_passes``). A per-sample policy runs every op,
  about 1.3x a step.
  """
  channels, blocks = config["num_channels"], config["num_blocks"]
  body = (2 * blocks + 4) * channels**2 / (12 * 32**2)  # relative to 4 x 32
  per_step = 0.012 + 0.12 * body * config["batch_size"] * config["patch_size"] ** 2 / (16 * 24**2)
  if config.get("per_sample"):
    per_step *= 1.3
  validations = config["num_train_steps"] // max(1, config.get("eval_every_steps") or 1) + 1
  return (
    25.0
    + per_step * config["num_train_steps"]
    + 2.0 * body * validations
    + 12.0 * body * test_passes
  )
