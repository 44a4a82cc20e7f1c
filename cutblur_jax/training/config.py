"""Training configuration: the fields every config has, and the reference's presets.

A training config is an ``ml_collections.ConfigDict`` with the flax-examples
fields (``num_train_steps``, ``batch_size``, ``seed``, ``eval_every_steps``,
``checkpoint_every_steps``, ``log_every_steps``) and the official CLI's names
(``option.py``) for everything it sets, so a user of the reference finds their
flags: ``model``, ``dataset``, ``dataset_root``, ``scale``, ``div2k_range``,
``camera``, ``sigma``, ``quality``, ``patch_size``, ``use_moa``, ``augs``,
``prob``, ``alpha``, ``mix_p``, ``aux_prob``, ``aux_alpha``, ``lr``,
``decay``, ``gamma``, ``gclip``, ``pretrain`` and the model template's
``num_blocks``, ``num_channels``, ``res_scale``, ``num_groups``, ``reduction``.

Presets are applied in one place, ``resolve_config``, the way ``option.py``'s
``make_template`` does, with one difference: a field you set explicitly always
wins. Fields whose preset depends on other fields default to ``None``
(meaning "the preset"):

* model template (``cutblur_jax.models.model_arch``): EDSR 32 blocks x 256
  channels, res_scale 0.1; RCAN 10 groups x 20 blocks x 64 channels,
  reduction 16; CARN 3 groups x 3 blocks x 64 channels.
* ``num_train_steps`` 700k (RCAN and denoising/JPEG: 1M); ``decay``
  "200-400-600" (RCAN "200-400-600-800", CARN "400", denoising/JPEG
  "300-550-800"); ``batch_size`` 16 (CARN 64); ``gclip`` 0 (RCAN fine-tuned
  from ``pretrain``: 0.5).
* ``use_moa=True``: the MoA policy of ``cutblur_jax.augment.moa(dataset, model)``
  fills ``augs``, ``prob``, ``alpha``, ``mix_p``, ``aux_prob``, ``aux_alpha``
  (setting any of them to something else as well is an error). Without MoA,
  ``augs`` defaults to ``("none",)`` and a single ``prob``/``alpha`` value
  applies to every listed augmentation.
* A ``tfds:`` data set gets the presets (and evaluation protocol) of the data it
  holds (``data.spec.parse_dataset``: ``tfds:div2k/bicubic_x4`` is DIV2K_SR).
* RealSR's ``patch_size *= scale`` is not a config change here: the input
  pipeline crops ``patch_size * scale`` pixels from same-size pairs, which is
  the same thing.

``resolve_config`` is idempotent, and everything downstream reads only the
resolved config (``config.json`` in the work directory is the resolved config).

Examples:
  >>> config = base_config()
  >>> config.model, config.dataset = "RCAN", "DIV2K_SR"
  >>> resolved = resolve_config(config)  # doctest: +SKIP
  >>> resolved.decay, resolved.num_train_steps  # doctest: +SKIP
  ('200-400-600-800', 1000000)
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import ml_collections
from ml_collections import config_dict

from cutblur_jax.data.spec import parse_dataset
from cutblur_jax.models.network import ARCH_FIELDS

DTYPES = ("float32", "bfloat16", "float16")


def base_config() -> ml_collections.ConfigDict:
  """Every field with ``option.py``'s default (``None`` where a preset decides).

  Returns:
    An unlocked ``ConfigDict`` to edit in a config file's ``get_config()``.

  Examples:
    >>> base_config().lr
    0.0001
  """
  c = ml_collections.ConfigDict()
  # --- run length and cadence (flax examples' names) -----------------------------------
  c.num_train_steps = config_dict.placeholder(int)  # option.py max_steps (preset)
  c.batch_size = config_dict.placeholder(int)  # 16 (CARN 64)
  c.seed = 1
  c.eval_every_steps = 1000  # option.py eval_steps
  c.checkpoint_every_steps = 1000
  c.log_every_steps = 100
  c.keep_checkpoints = 2  # latest N kept in WORKDIR/checkpoints/latest
  c.num_eval_images = config_dict.placeholder(int)  # None: the whole validation split
  c.num_train_images = config_dict.placeholder(int)  # None: the whole train split
  c.num_sample_images = 2  # LR/SR/HR triples written to TensorBoard per evaluation
  c.progress_bar = True
  # --- model (option.py) --------------------------------------------------------------
  c.model = "EDSR"  # EDSR, EDSR-baseline (16 x 64), RCAN or CARN
  c.pretrain = ""  # a checkpoint or work directory to fine-tune from (head/tail may differ)
  c.num_blocks = config_dict.placeholder(int)
  c.num_channels = config_dict.placeholder(int)
  c.res_scale = config_dict.placeholder(float)
  c.num_groups = config_dict.placeholder(int)
  c.reduction = config_dict.placeholder(int)
  c.dtype = "float32"  # compute dtype; parameters stay float32
  # --- data (option.py; read by cutblur_jax.data.registry) -----------------------------
  c.dataset = "DIV2K_SR"
  c.dataset_root = ""
  c.scale = 4
  c.div2k_range = "1-800/801-810"
  c.camera = "all"
  c.sigma = 10
  c.quality = 10
  c.patch_size = 48
  c.num_workers = 2
  c.synthesize_lr = False
  c.noise_seed = 0
  c.prefetch = 2
  # --- augmentation (option.py) ---------------------------------------------------------
  c.use_moa = False
  c.augs = config_dict.placeholder(tuple)  # e.g. --config.augs=cutblur --config.augs=mixup
  c.prob = config_dict.placeholder(tuple)
  c.alpha = config_dict.placeholder(tuple)
  c.mix_p = config_dict.placeholder(tuple)
  c.aux_prob = 1.0
  c.aux_alpha = 1.2
  c.per_sample = False  # augment.Policy(per_sample=True): an op per image, not per batch
  c.flip_and_rotate = True  # utils.flip_and_rotate, done on device in the train step
  # --- optimisation (option.py) ---------------------------------------------------------
  c.lr = 1e-4
  c.decay = config_dict.placeholder(str)  # milestones in thousands of steps, "200-400-600"
  c.gamma = 0.5
  c.gclip = config_dict.placeholder(float)  # gradient clip by value; 0 disables
  # Exponential moving average of the weights, validated and saved as the best model:
  # 0 (off, the paper's setting); 0.999 is the common choice (BasicSR, neosr).
  c.ema_decay = 0.0
  # --- devices -------------------------------------------------------------------------
  c.distributed = "auto"  # "auto", "on" or "off": jax.distributed.initialize
  c.coordinator_address = config_dict.placeholder(str)  # "host:port" of process 0
  c.num_processes = config_dict.placeholder(int)
  c.process_id = config_dict.placeholder(int)
  return c


# One line per field, for `train.py --help` and docs/training.md.
FIELD_HELP: dict[str, str] = {
  "num_train_steps": 'training steps (preset: 700k; RCAN, DN, JPEG 1M)',
  "batch_size": 'global batch size, all hosts together (preset: 16; CARN 64)',
  "seed": 'initialisation, run key and the whole batch stream',
  "eval_every_steps": 'validation interval (0: only at the end)',
  "checkpoint_every_steps": 'latest checkpoint interval (0: only at the end)',
  "log_every_steps": 'train log interval (0: only at the end)',
  "keep_checkpoints": 'how many latest steps to keep',
  "num_eval_images": 'validate on the first N images (None: the whole validation split)',
  "num_train_images": 'train on the first N images (None: the whole train split)',
  "num_sample_images": 'LR/SR/HR crops written to TensorBoard per validation',
  "progress_bar": 'show the progress bar',
  "model": 'EDSR, EDSR-baseline (16 x 64), RCAN or CARN',
  "pretrain": 'a checkpoint or work directory to fine-tune from (head/tail may differ)',
  "num_blocks": 'residual blocks (EDSR), blocks per group (RCAN, CARN) (preset)',
  "num_channels": 'feature channels (preset)',
  "res_scale": 'residual scaling (preset: EDSR 0.1, others 1.0)',
  "num_groups": 'residual groups (RCAN), cascading groups (CARN) (preset)',
  "reduction": 'RCAN channel-attention reduction (preset 16)',
  "dtype": 'compute dtype: float32, bfloat16 or float16; parameters stay float32',
  "dataset": 'the data set name (docs/data.md)',
  "dataset_root": 'its folder in the published layout; for tfds: the TFDS data_dir',
  "scale": "SR factor (the network's head/tail for same-size DN/JPEG pairs)",
  "div2k_range": '1-based inclusive train/validation ranges over the sorted DIV2K images',
  "camera": 'RealSR camera: canon, nikon or all',
  "sigma": 'DN noise level (folder name, or the std of synthesised noise)',
  "quality": "JPEG quality (folder name, or Pillow's encoder quality)",
  "patch_size": 'LR patch side; the HR patch is patch_size * scale',
  "num_workers": 'threads that decode images and build batches',
  "synthesize_lr": 'make a missing LR folder from HR instead of failing',
  "noise_seed": 'seed of synthesised DN noise',
  "prefetch": 'batches kept in flight to the devices',
  "use_moa": 'use the MoA policy augment.moa(dataset, model) (fills the six fields below)',
  "augs": 'op names of the policy (without MoA: ("none",))',
  "prob": 'per-op probability; one value applies to all (without MoA: 1.0)',
  "alpha": 'per-op strength; one value applies to all (without MoA: 1.0)',
  "mix_p": 'probabilities of choosing each op (None: uniform)',
  "aux_prob": "CutMixup's mixup probability",
  "aux_alpha": "CutMixup's mixup Beta parameter, soft CutBlur's mix_alpha",
  "per_sample": 'draw the op and its parameters per image instead of per batch',
  "flip_and_rotate": 'random h-flip, v-flip and transpose per sample, in the train step',
  "lr": 'initial learning rate',
  "decay": 'milestones in thousands of steps, "200-400-600" ("": none) (preset)',
  "gamma": 'learning-rate factor at each milestone',
  "gclip": 'clip every gradient entry to [-gclip, gclip]; 0 disables (preset)',
  "ema_decay": 'weight moving average in [0, 1); 0 is off',
  "distributed": '"auto", "on" or "off": start jax.distributed',
  "coordinator_address": '"host:port" of process 0 (multi-host)',
  "num_processes": 'number of processes (multi-host)',
  "process_id": "this process's index (multi-host)",
}


def fields_help() -> str:
  """Every config field with its default and meaning, one per line (``train.py --help``).

  Examples:
    >>> print(fields_help().splitlines()[0])  # doctest: +ELLIPSIS
    --config.num_train_steps (default: None, the preset) training steps ...
  """
  config = base_config()
  lines = []
  for name in config.keys():
    value = config[name]
    default = "None, the preset" if value is None else repr(value)
    lines.append(f"--config.{name} (default: {default}) {FIELD_HELP.get(name, '')}".rstrip())
  return "\n".join(lines)


def parse_decay(decay: str) -> tuple[int, ...]:
  """Milestone steps of ``option.py``'s ``decay`` string (thousands of steps).

  Args:
    decay: "200-400-600" (or "" for no decay).

  Returns:
    ``(200000, 400000, 600000)``.

  Raises:
    ValueError: for anything but dash-separated non-negative integers in increasing order.

  Examples:
    >>> parse_decay("300-550-800")
    (300000, 550000, 800000)
  """
  if not isinstance(decay, str):
    raise ValueError(f"`decay` must be a string like '200-400-600', got {decay!r}.")
  if not decay.strip():
    return ()
  try:
    thousands = [int(part) for part in decay.split("-")]
  except ValueError:
    raise ValueError(
      f"`decay` must be like '200-400-600' (thousands of steps), got {decay!r}."
    ) from None
  if any(t < 0 for t in thousands) or thousands != sorted(set(thousands)):
    raise ValueError(f"`decay` milestones must be non-negative and increasing, got {decay!r}.")
  return tuple(1000 * t for t in thousands)


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


# Seeds go to jax.random.key, which takes a signed 64-bit integer.
_MAX_SEED = 2**63 - 1


def _positive_int(config: Any, name: str, low: int = 1, high: int | None = None) -> None:
  value = config[name]
  if (
    isinstance(value, bool)
    or not isinstance(value, int)
    or value < low
    or (high is not None and value > high)
  ):
    bound = f">= {low}" if high is None else f"in [{low}, {high}]"
    raise ValueError(f"`{name}` must be an integer {bound}, got {value!r}.")


def resolve_config(config: Any) -> ml_collections.ConfigDict:
  """Fills presets (``option.py``'s ``make_template``) and checks every field.

  Args:
    config: a ``ConfigDict`` (or dict) with the fields of ``base_config``;
      missing fields take ``base_config``'s values.

  Returns:
    A new, locked ``ConfigDict`` with no ``None`` left in the preset fields,
    ``augs``/``prob``/``alpha``/``mix_p`` holding the policy actually used and
    the model template fields holding the architecture.

  Raises:
    ValueError: an unknown model, augmentation or dtype, bad numbers, or
      ``use_moa`` together with a different explicit policy. No JAX device is
      touched, so this is safe before ``jax.distributed.initialize``.

  Examples:
    >>> c = resolve_config({"model": "CARN", "use_moa": True})  # doctest: +SKIP
    >>> c.batch_size, c.decay, c.prob[0]  # doctest: +SKIP
    (64, '400', 0.2)
  """
  from cutblur_jax import augment, models  # pylint: disable=g-import-not-at-top

  given = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)
  resolved = base_config()
  unknown = sorted(set(given) - set(resolved.keys()))
  if unknown:
    raise ValueError(f"Unknown config fields {unknown}; known: {sorted(resolved.keys())}.")
  for key, value in given.items():
    resolved[key] = tuple(value) if isinstance(value, list) else value
  c = resolved

  if c.model not in models.PRESETS:
    raise ValueError(f"Unknown model {c.model!r}; use one of {', '.join(models.PRESETS)}.")
  if c.dtype not in DTYPES:
    raise ValueError(f"`dtype` must be one of {', '.join(DTYPES)}, got {c.dtype!r}.")
  for name in ("scale", "patch_size"):
    _positive_int(c, name)
  for name in (
    "eval_every_steps",
    "checkpoint_every_steps",
    "log_every_steps",
    "num_workers",
    "prefetch",
    "num_sample_images",
  ):
    _positive_int(c, name, 0)
  for name in ("seed", "noise_seed"):
    _positive_int(c, name, 0, _MAX_SEED)
  _positive_int(c, "keep_checkpoints", 1)
  for name in ("num_eval_images", "num_train_images"):
    if c[name] is not None:
      _positive_int(c, name)
  dataset = parse_dataset(str(c.dataset))  # a TFDS copy gets its data set's presets
  task = dataset.task

  # Model template: option.py's presets, explicit fields win.
  explicit = {name: c[name] for name in ARCH_FIELDS if c[name] is not None}
  arch = models.model_arch(c.model, c.scale, **explicit)
  for name in ARCH_FIELDS:
    if name in arch:
      c[name] = arch[name]

  # Training presets (make_template's order: model first, then task).
  network = models.network(arch)  # "EDSR-baseline" is an EDSR
  presets = {
    "num_train_steps": 700_000,
    "decay": "200-400-600",
    "gclip": 0.0,
    "batch_size": 16,
    **network.train_presets,
  }
  if c.pretrain:
    presets["gclip"] = network.pretrain_gclip
  if task in ("DN", "JPEG"):
    presets.update(num_train_steps=1_000_000, decay="300-550-800")
  for name, value in presets.items():
    if c[name] is None:
      c[name] = value
  _positive_int(c, "num_train_steps", 0)
  _positive_int(c, "batch_size")
  parse_decay(c.decay)
  if isinstance(c.ema_decay, bool) or not 0.0 <= float(c.ema_decay) < 1.0:
    raise ValueError(f"`ema_decay` must be in [0, 1) (0 turns EMA off), got {c.ema_decay!r}.")
  finite = all(math.isfinite(float(c[name])) for name in ("lr", "gamma", "gclip"))
  if not finite or not c.lr > 0 or not c.gamma > 0 or c.gclip < 0:
    raise ValueError(
      f"Need finite lr > 0, gamma > 0 and gclip >= 0 (0: no clipping); got "
      f"lr={c.lr}, gamma={c.gamma}, gclip={c.gclip}."
    )

  # Augmentation policy.
  if c.use_moa:
    policy = augment.moa(dataset.reference, c.model)
    ours = {
      "augs": tuple(policy.augs),
      "prob": tuple(policy.probs),
      "alpha": tuple(policy.alphas),
      "mix_p": None if policy.mix_p is None else tuple(policy.mix_p),
      "aux_prob": policy.aux_prob,
      "aux_alpha": policy.aux_alpha,
    }
    for name in ours:
      value = c[name]
      if value is not None and _normalise(value) != _normalise(ours[name]):
        raise ValueError(
          f"use_moa=True sets `{name}` to {ours[name]!r}, but the config sets it to {value!r}; "
          "unset it or set use_moa=False."
        )
  else:
    augs = c.augs if c.augs is not None else ("none",)
    augs = (augs,) if isinstance(augs, str) else tuple(str(a) for a in augs)
    prob = _broadcast(_floats(c.prob if c.prob is not None else (1.0,), "prob"), len(augs), "prob")
    alpha = _broadcast(
      _floats(c.alpha if c.alpha is not None else (1.0,), "alpha"), len(augs), "alpha"
    )
    mix_p = None if c.mix_p is None else _floats(c.mix_p, "mix_p")
    policy = augment.Policy(
      augs, prob, alpha, aux_prob=float(c.aux_prob), aux_alpha=float(c.aux_alpha), mix_p=mix_p
    )
  c.augs = tuple(policy.augs)
  c.prob = tuple(float(p) for p in policy.probs)
  c.alpha = tuple(float(a) for a in policy.alphas)
  c.mix_p = None if policy.mix_p is None else tuple(float(p) for p in policy.mix_p)
  c.aux_prob, c.aux_alpha = float(policy.aux_prob), float(policy.aux_alpha)
  c.lock()
  return c


def _normalise(value: Any) -> Any:
  if value is None:
    return None
  if isinstance(value, str):
    return (value,)
  if isinstance(value, (int, float)):
    return (float(value),)
  return tuple(float(v) if not isinstance(v, str) else v for v in value)


def model_arch_from_config(config: Any):
  """The ``models.Arch`` a resolved config describes."""
  from cutblur_jax import models  # pylint: disable=g-import-not-at-top

  explicit = {name: config[name] for name in ARCH_FIELDS if config.get(name) is not None}
  return models.model_arch(config.model, config.scale, **explicit)


def policy_from_config(config: Any):
  """The ``augment.Policy`` a resolved config describes."""
  from cutblur_jax import augment  # pylint: disable=g-import-not-at-top

  mix_p = config.mix_p
  return augment.Policy(
    tuple(config.augs),
    tuple(config.prob),
    tuple(config.alpha),
    aux_prob=float(config.aux_prob),
    aux_alpha=float(config.aux_alpha),
    mix_p=None if mix_p is None else tuple(mix_p),
    per_sample=bool(config.get("per_sample", False)),
  )


def config_summary(
  config: Any,
  names: Sequence[str] = (
    "model",
    "dataset",
    "scale",
    "use_moa",
    "batch_size",
    "patch_size",
    "num_train_steps",
    "lr",
    "decay",
  ),
) -> str:
  """One line naming the fields a user checks first."""
  return ", ".join(f"{name}={config.get(name)!r}" for name in names)
