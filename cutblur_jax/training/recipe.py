"""The recipe: a training config checked and resolved once, at the boundary, into typed values.

``resolve_recipe(config)`` applies the reference's presets (``option.py``'s
``make_template``, ``training.presets``; a field set explicitly always wins), checks every
field, and returns a frozen ``Recipe``: the ``Arch``, the augmentation ``Policy``, the
``OptimizerConfig``, the ``DataSpec`` (the data set name is parsed here, once), its
``EvalProtocol``, the step counts and the input options. The loop, the input pipeline and
validation take the recipe and never read a config again.

``Recipe.config`` is the resolved config as ``config.json`` stores it: the presets filled
in, ``augs``/``prob``/``alpha``/``mix_p`` holding the policy used and the model template
fields the architecture. ``resolve_config`` returns it, and resolving it again gives the
same recipe. No JAX device is touched, so resolving is safe before
``jax.distributed.initialize``.

Examples:
  >>> recipe = resolve_recipe({"model": "CARN", "use_moa": True, "dataset": "embedded"})
  >>> recipe.input.batch_size, recipe.optimizer.milestones, recipe.policy.probs[0]
  (64, (400000,), 0.2)
  >>> recipe.protocol
  EvalProtocol(crop_border=4, y_only=True, round_y=True)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import ml_collections

from cutblur_jax import augment, models
from cutblur_jax.data.spec import DataSpec, EvalProtocol
from cutblur_jax.models.network import ARCH_FIELDS
from cutblur_jax.training.config import DTYPES, base_config, config_summary, parse_decay
from cutblur_jax.training.optimizer import OptimizerConfig
from cutblur_jax.training.presets import moa_flags, run_presets

__all__ = ["Cluster", "InputOptions", "Recipe", "Steps", "resolve_config", "resolve_recipe"]

# Seeds go to jax.random.key, which takes a signed 64-bit integer.
_MAX_SEED = 2**63 - 1
_POLICY_FIELDS = ("augs", "prob", "alpha", "mix_p", "aux_prob", "aux_alpha")


class Steps(NamedTuple):
  """How long a run trains and how often it logs, validates and saves (0: only at the end)."""

  total: int
  log_every: int
  eval_every: int
  checkpoint_every: int
  keep_checkpoints: int


class InputOptions(NamedTuple):
  """The training input pipeline's options and the validation subset."""

  batch_size: int
  patch_size: int
  num_workers: int
  prefetch: int
  data_source: str
  data_cache_dir: str
  worker_processes: int
  num_train_images: int | None
  num_eval_images: int | None
  num_sample_images: int


class Cluster(NamedTuple):
  """``sharding.initialize_distributed``'s fields."""

  distributed: Any
  coordinator_address: str | None
  num_processes: int | None
  process_id: int | None


@dataclasses.dataclass(frozen=True)
class Recipe:
  """One training run, resolved (module docstring).

  Attributes:
    config: the resolved, locked config: what ``config.json`` stores.
    arch: the network.
    policy: the augmentation policy.
    optimizer: Adam, its schedule and clipping.
    data: the training data set and its options.
    valid_data: the validation data set (``data`` itself unless ``valid_dataset`` is set).
    protocol: how validation measures (from ``valid_data``).
    steps: the run length and cadences.
    input: the pipeline and validation options.
    cluster: the multi-process start-up fields.
    seed: initialisation, run key and batch stream.
    dtype: the compute dtype name.
    ema_decay: the weight average's decay (0: off).
    flip_and_rotate: random flips and transposes in the train step.
    pretrain: a checkpoint or work directory to fine-tune from ("" for none).
    progress_bar: show the progress bar.
  """

  config: ml_collections.ConfigDict
  arch: models.Arch
  policy: augment.Policy
  optimizer: OptimizerConfig
  data: DataSpec
  valid_data: DataSpec
  protocol: EvalProtocol
  steps: Steps
  input: InputOptions
  cluster: Cluster
  seed: int
  dtype: str
  ema_decay: float
  flip_and_rotate: bool
  pretrain: str
  progress_bar: bool

  @property
  def summary(self) -> str:
    """One line naming the fields a user checks first."""
    return config_summary(self.config)

  def with_seed(self, seed: int) -> "Recipe":
    """The same recipe with another seed (a resumed run keeps its own)."""
    config = ml_collections.ConfigDict(self.config.to_dict())
    config.seed = int(seed)
    config.lock()
    return dataclasses.replace(self, config=config, seed=int(seed))


def _check_int(config: Any, name: str, low: int = 1, high: int | None = None) -> int:
  value = config[name]
  if (
    isinstance(value, bool)
    or not isinstance(value, int)
    or value < low
    or (high is not None and value > high)
  ):
    bound = f">= {low}" if high is None else f"in [{low}, {high}]"
    raise ValueError(f"`{name}` must be an integer {bound}, got {value!r}.")
  return value


def _floats(values: Any, name: str) -> tuple[float, ...]:
  if isinstance(values, (int, float, str)):
    values = (values,)
  try:
    return tuple(float(v) for v in values)
  except (TypeError, ValueError):
    raise ValueError(f"`{name}` must be numbers, got {values!r}.") from None


def _broadcast(values: tuple[float, ...], count: int, name: str) -> tuple[float, ...]:
  if len(values) == 1:
    return values * count
  if len(values) != count:
    raise ValueError(f"`{name}` has {len(values)} values for {count} augmentations.")
  return values


def _normalise(value: Any) -> Any:
  if value is None:
    return None
  if isinstance(value, str):
    return (value,)
  if isinstance(value, (int, float)):
    return (float(value),)
  return tuple(float(v) if not isinstance(v, str) else v for v in value)


def _given(config: Any) -> ml_collections.ConfigDict:
  """``base_config`` with the given fields; an unknown field is refused."""
  given = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)
  c = base_config()
  unknown = sorted(set(given) - set(c.keys()))
  if unknown:
    raise ValueError(f"Unknown config fields {unknown}; known: {sorted(c.keys())}.")
  for key, value in given.items():
    c[key] = tuple(value) if isinstance(value, list) else value
  return c


def _check_fields(c: ml_collections.ConfigDict) -> None:
  if c.model not in models.PRESETS:
    raise ValueError(f"Unknown model {c.model!r}; use one of {', '.join(models.PRESETS)}.")
  if c.dtype not in DTYPES:
    raise ValueError(f"`dtype` must be one of {', '.join(DTYPES)}, got {c.dtype!r}.")
  for name in ("scale", "patch_size"):
    _check_int(c, name)
  for name in (
    "eval_every_steps",
    "checkpoint_every_steps",
    "log_every_steps",
    "num_workers",
    "prefetch",
    "num_sample_images",
    "worker_processes",
  ):
    _check_int(c, name, 0)
  if c.data_source not in ("auto", "memory", "disk"):
    raise ValueError(f"`data_source` must be 'auto', 'memory' or 'disk', got {c.data_source!r}.")
  for name in ("seed", "noise_seed"):
    _check_int(c, name, 0, _MAX_SEED)
  _check_int(c, "keep_checkpoints", 1)
  for name in ("num_eval_images", "num_train_images"):
    if c[name] is not None:
      _check_int(c, name)


def _check_optimisation(c: ml_collections.ConfigDict) -> None:
  _check_int(c, "num_train_steps", 0)
  _check_int(c, "batch_size")
  parse_decay(c.decay)
  if isinstance(c.ema_decay, bool) or not 0.0 <= float(c.ema_decay) < 1.0:
    raise ValueError(f"`ema_decay` must be in [0, 1) (0 turns EMA off), got {c.ema_decay!r}.")
  finite = all(math.isfinite(float(c[name])) for name in ("lr", "gamma", "gclip"))
  if not finite or not c.lr > 0 or not c.gamma > 0 or c.gclip < 0:
    raise ValueError(
      f"Need finite lr > 0, gamma > 0 and gclip >= 0 (0: no clipping); got "
      f"lr={c.lr}, gamma={c.gamma}, gclip={c.gclip}."
    )


def _policy(c: ml_collections.ConfigDict, data: DataSpec) -> augment.Policy:
  """The MoA preset (``use_moa``) or the explicit policy fields."""
  if c.use_moa:
    policy = augment.moa(**moa_flags(data.dataset, c.model))
    ours = {
      "augs": policy.augs,
      "prob": policy.probs,
      "alpha": policy.alphas,
      "mix_p": policy.mix_p,
      "aux_prob": policy.aux_prob,
      "aux_alpha": policy.aux_alpha,
    }
    for name in _POLICY_FIELDS:
      value = c[name]
      if value is not None and _normalise(value) != _normalise(ours[name]):
        raise ValueError(
          f"use_moa=True sets `{name}` to {ours[name]!r}, but the config sets it to {value!r}; "
          "unset it or set use_moa=False."
        )
    return dataclasses.replace(policy, per_sample=bool(c.per_sample))
  augs = c.augs if c.augs is not None else ("none",)
  augs = (augs,) if isinstance(augs, str) else tuple(str(a) for a in augs)
  prob = _floats(c.prob if c.prob is not None else (1.0,), "prob")
  alpha = _floats(c.alpha if c.alpha is not None else (1.0,), "alpha")
  return augment.Policy(
    augs,
    _broadcast(prob, len(augs), "prob"),
    _broadcast(alpha, len(augs), "alpha"),
    aux_prob=float(c.aux_prob),
    aux_alpha=float(c.aux_alpha),
    mix_p=None if c.mix_p is None else _floats(c.mix_p, "mix_p"),
    per_sample=bool(c.per_sample),
  )


def _valid_data(c: ml_collections.ConfigDict, data: DataSpec) -> DataSpec:
  """The validation data set: ``valid_dataset`` with the training set's options, or ``data``."""
  if not c.valid_dataset:
    if c.valid_dataset_root:
      raise ValueError("`valid_dataset_root` is set but `valid_dataset` is not; set both.")
    return data
  valid = data.replace(
    dataset=str(c.valid_dataset), dataset_root=str(c.valid_dataset_root or data.dataset_root)
  )
  if valid.data_scale != data.data_scale:
    raise ValueError(
      f"`valid_dataset` {valid.name!r} has HR/LR {valid.data_scale} but `dataset` "
      f"{data.name!r} has {data.data_scale}: validate on data of the same task."
    )
  return valid


def resolve_recipe(config: Any) -> Recipe:
  """Fills the presets, checks every field and resolves the config into a ``Recipe``.

  Args:
    config: a ``ConfigDict`` (or dict) with fields of ``base_config``; missing fields take
      ``base_config``'s values. A ``Recipe`` is returned as it is.

  Raises:
    ValueError: an unknown field, model, data set, augmentation or dtype, bad numbers, or
      ``use_moa`` together with a different explicit policy.
  """
  if isinstance(config, Recipe):
    return config
  c = _given(config)
  _check_fields(c)
  data = DataSpec.from_config(c)  # the one parse of the data set name
  explicit = {name: c[name] for name in ARCH_FIELDS if c[name] is not None}
  arch = models.model_arch(c.model, c.scale, **explicit)
  for name, value in run_presets(arch, data.task, fine_tuning=bool(c.pretrain)).items():
    if c[name] is None:
      c[name] = value
  _check_optimisation(c)
  policy = _policy(c, data)
  valid_data = _valid_data(c, data)
  # The config as config.json stores it: the architecture and the policy actually used.
  for name in ARCH_FIELDS:
    if name in arch:
      c[name] = arch[name]
  c.augs, c.prob, c.alpha = policy.augs, policy.probs, policy.alphas
  c.mix_p, c.aux_prob, c.aux_alpha = policy.mix_p, policy.aux_prob, policy.aux_alpha
  c.lock()
  return Recipe(
    config=c,
    arch=arch,
    policy=policy,
    optimizer=OptimizerConfig.from_config(c),
    data=data,
    valid_data=valid_data,
    protocol=valid_data.eval_protocol,
    steps=Steps(
      c.num_train_steps,
      c.log_every_steps,
      c.eval_every_steps,
      c.checkpoint_every_steps,
      c.keep_checkpoints,
    ),
    input=InputOptions(
      c.batch_size,
      c.patch_size,
      c.num_workers,
      c.prefetch,
      str(c.data_source),
      str(c.data_cache_dir or ""),
      c.worker_processes,
      c.num_train_images,
      c.num_eval_images,
      c.num_sample_images,
    ),
    cluster=Cluster(c.distributed, c.coordinator_address, c.num_processes, c.process_id),
    seed=c.seed,
    dtype=c.dtype,
    ema_decay=float(c.ema_decay),
    flip_and_rotate=bool(c.flip_and_rotate),
    pretrain=str(c.pretrain or ""),
    progress_bar=bool(c.progress_bar),
  )


def resolve_config(config: Any) -> ml_collections.ConfigDict:
  """The resolved config (``Recipe.config``): presets filled in, every field checked.

  Returns:
    A new, locked ``ConfigDict`` with no ``None`` left in the preset fields,
    ``augs``/``prob``/``alpha``/``mix_p`` holding the policy actually used and the model
    template fields holding the architecture; what ``config.json`` stores.

  Raises:
    ValueError: as ``resolve_recipe``.

  Examples:
    >>> c = resolve_config({"model": "CARN", "use_moa": True})
    >>> c.batch_size, c.decay, c.prob[0]
    (64, '400', 0.2)
  """
  return resolve_recipe(config).config
