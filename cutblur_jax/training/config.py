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

Presets are applied in one place, ``training.recipe.resolve_recipe``, the way ``option.py``'s
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

The resolved config (``resolve_config``, ``config.json`` in the work directory) is
idempotent; everything downstream reads the ``Recipe`` resolved from it
(``training.recipe``), never the config.

Examples:
  >>> config = base_config()
  >>> config.model, config.dataset = "RCAN", "DIV2K_SR"
  >>> from cutblur_jax.training.recipe import resolve_config
  >>> resolved = resolve_config(config)
  >>> resolved.decay, resolved.num_train_steps
  ('200-400-600-800', 1000000)
"""

from __future__ import annotations

from typing import Any, Sequence

import ml_collections
from ml_collections import config_dict

from cutblur_jax.data.spec import DATA_DEFAULTS, PIPELINE_DEFAULTS

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
  c.seed = PIPELINE_DEFAULTS["seed"]
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
  # --- data (option.py; the defaults are data.spec's, the one place they are written) ----
  data = DATA_DEFAULTS
  c.dataset = data["dataset"]  # "DIV2K_SR"
  c.dataset_root = data["dataset_root"]  # ""
  c.scale = data["scale"]  # 4
  c.div2k_range = data["div2k_range"]  # "1-800/801-810"
  c.camera = data["camera"]  # "all"
  c.sigma = data["sigma"]  # 10
  c.quality = data["quality"]  # 10
  c.patch_size = PIPELINE_DEFAULTS["patch_size"]  # 48
  c.num_workers = PIPELINE_DEFAULTS["num_workers"]  # 2
  # Where crops read decoded images: "memory", "disk" (a decoded copy on local disk, read
  # a crop at a time) or "auto" (disk above 2 GiB of decoded pairs, or with worker processes).
  c.data_source = "auto"
  c.data_cache_dir = ""  # the disk source's folder ("": $CUTBLUR_JAX_CACHE or ~/.cache/...)
  c.worker_processes = 0  # grain worker processes building batches (0: in this process)
  c.synthesize_lr = data["synthesize_lr"]  # False
  c.noise_seed = data["noise_seed"]  # 0
  # Validation on another data set's images (any benchmark folder), or, by default, on the
  # training data set's own validation split.
  c.valid_dataset = ""
  c.valid_dataset_root = ""  # its folder; default dataset_root
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
  "num_workers": 'threads that decode images and build batches (in each worker process)',
  "data_source": '"auto", "memory" or "disk": where crops read decoded images (docs/data.md)',
  "data_cache_dir": 'the disk source\'s folder ("": $CUTBLUR_JAX_CACHE or ~/.cache/cutblur_jax/decoded)',
  "worker_processes": 'grain worker processes that build batches (0: in the training process)',
  "synthesize_lr": 'make a missing LR folder from HR instead of failing',
  "noise_seed": 'seed of synthesised DN noise',
  "valid_dataset": 'validate on this data set (e.g. Set14_SR); "": the training set\'s validation split',
  "valid_dataset_root": 'the folder of valid_dataset ("": dataset_root)',
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
    decay: "200-400-600" (or "" for no decay); a short budget may give fractions of a
      thousand, "0.429-0.857-1.286", each rounded to a whole step.

  Returns:
    ``(200000, 400000, 600000)``.

  Raises:
    ValueError: for anything but dash-separated non-negative numbers in increasing order.

  Examples:
    >>> parse_decay("300-550-800")
    (300000, 550000, 800000)
    >>> parse_decay("0.429-0.857-1.286")
    (429, 857, 1286)
  """
  if not isinstance(decay, str):
    raise ValueError(f"`decay` must be a string like '200-400-600', got {decay!r}.")
  if not decay.strip():
    return ()
  try:
    steps = [round(1000 * float(part)) for part in decay.split("-")]
  except (ValueError, OverflowError):
    raise ValueError(
      f"`decay` must be like '200-400-600' (thousands of steps), got {decay!r}."
    ) from None
  if any(step < 0 for step in steps) or steps != sorted(set(steps)):
    raise ValueError(f"`decay` milestones must be non-negative and increasing, got {decay!r}.")
  return tuple(steps)


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
