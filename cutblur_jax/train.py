"""Training: one fused XLA train step, data-parallel over every device, and the training loop.

``train_step(state, batch, key)`` is a single jitted program (state donated):

  uint8 patches -> random h-flip / v-flip / transpose per sample (the reference's
  ``utils.flip_and_rotate``) -> float32 -> LR nearest-upsampled to HR size ->
  ``augment.apply_augment`` with the state's policy (MoA picks one augmentation
  per batch inside the graph) -> model -> L1 loss on ``SR * mask`` and
  ``HR * mask`` (the cutout mask, all ones otherwise; ``solver.py``) -> gradient
  -> optional clip by value (``gclip``) -> Adam(0.9, 0.999, 1e-8) with the
  reference's multi-step decay -> new state (and, with ``ema_decay > 0``, the
  moving average of the parameters, updated in the same program).

Invariants:

* The step's randomness is ``jax.random.fold_in(key, state.step)``: a run is a
  pure function of its seed and data, and a resumed run continues the same stream.
* Everything that changes the compiled program is a static, value-compared field
  of ``TrainState`` (architecture, optimizer hyper-parameters, policy, flips,
  dtype); two states built alike share one compiled step, and the MoA choice
  is data inside the graph, never a retrace.
* No host callback is in the step: augmentations, flips and the loss are XLA ops.
* Sharding: the batch is split over the mesh's ``"data"`` axis and the state is
  replicated; jit inserts the gradient all-reduce (``cutblur_jax.sharding``).

``train_and_evaluate(config, workdir)`` runs a whole experiment (the CLI
``experiments/train.py`` is a thin wrapper): presets, multi-host start-up,
input pipeline, resume, periodic validation on full images against the
bicubic baseline, TensorBoard + ``metrics.jsonl`` logs, and ``latest``/``best``
orbax checkpoints. It returns the final metrics.

Examples:
  >>> from cutblur_jax import train
  >>> config = train.base_config()
  >>> config.dataset = "embedded"  # doctest: +SKIP
  >>> result = train.train_and_evaluate(config, "/tmp/run")  # doctest: +SKIP
  >>> result["psnr"] > result["bicubic_psnr"]  # doctest: +SKIP
  True
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import pathlib
import time
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from cutblur_jax import sharding as sharding_lib
from cutblur_jax.image import upsample_nearest
from cutblur_jax.train_config import (base_config, config_summary, model_arch_from_config,
                                      parse_decay, policy_from_config, resolve_config)

__all__ = [
    "NonFiniteLossError", "OptimizerConfig", "TrainState", "abstract_train_state",
    "base_config", "baseline_metrics", "create_optimizer", "create_train_state",
    "learning_rate_schedule", "random_flip_and_rotate", "resolve_config",
    "train_and_evaluate", "train_step", "validate",
]

logger = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
  """The loss or gradient became NaN/inf; the run stopped without saving that state."""


# ----------------------------------------------------------------------------------------
# Optimizer.
# ----------------------------------------------------------------------------------------


class OptimizerConfig(NamedTuple):
  """Adam with ``torch.optim.lr_scheduler.MultiStepLR`` decay, and optional clip by value.

  Attributes:
    learning_rate: the initial learning rate (``lr``).
    milestones: update counts at which the rate is multiplied by ``gamma``.
    gamma: decay factor.
    gclip: clip every gradient entry to ``[-gclip, gclip]`` (0 disables).
    b1, b2, eps: Adam's (PyTorch's defaults, as ``solver.py``).
  """
  learning_rate: float = 1e-4
  milestones: tuple[int, ...] = (200_000, 400_000, 600_000)
  gamma: float = 0.5
  gclip: float = 0.0
  b1: float = 0.9
  b2: float = 0.999
  eps: float = 1e-8

  @classmethod
  def from_config(cls, config: Any) -> "OptimizerConfig":
    """From a resolved config's ``lr``, ``decay``, ``gamma`` and ``gclip``."""
    return cls(learning_rate=float(config.lr), milestones=parse_decay(config.decay),
               gamma=float(config.gamma), gclip=float(config.gclip))


def learning_rate_schedule(optimizer: OptimizerConfig) -> optax.Schedule:
  """The learning rate of update ``count``: ``lr * gamma ** (milestones <= count)``.

  Equals PyTorch's ``MultiStepLR`` stepped once after every optimizer step, as
  ``solver.py`` does: update number ``200000`` (0-based) already uses the decayed rate.

  Examples:
    >>> schedule = learning_rate_schedule(OptimizerConfig(1e-4, (2, 4), 0.5))
    >>> [round(float(schedule(i)) * 1e5, 3) for i in (0, 1, 2, 4)]
    [10.0, 10.0, 5.0, 2.5]
  """
  return optax.piecewise_constant_schedule(
      optimizer.learning_rate, {int(m): float(optimizer.gamma) for m in optimizer.milestones})


def create_optimizer(optimizer: OptimizerConfig) -> optax.GradientTransformation:
  """``optax.clip(gclip)`` (when ``gclip > 0``) then Adam with ``learning_rate_schedule``.

  Examples:
    >>> tx = create_optimizer(OptimizerConfig(gclip=0.5))
    >>> state = tx.init({"w": jnp.zeros(3)})
  """
  adam = optax.adam(learning_rate_schedule(optimizer), b1=optimizer.b1, b2=optimizer.b2,
                    eps=optimizer.eps)
  if optimizer.gclip > 0:
    return optax.chain(optax.clip(optimizer.gclip), adam)
  return adam


# ----------------------------------------------------------------------------------------
# Train state and the fused step.
# ----------------------------------------------------------------------------------------


def _frozen_arch(arch: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
  return tuple(sorted((str(k), v) for k, v in dict(arch).items()))


class TrainState(struct.PyTreeNode):
  """Everything a train step reads and writes.

  Array fields (donated and replaced by every step): ``step`` (int32 scalar),
  ``params``, ``opt_state`` and ``ema_params`` (the exponential moving average of the
  parameters, ``None`` when ``ema_decay`` is 0). Static fields (compared by value, part
  of the compiled program): ``arch`` (the sorted items of the architecture dict),
  ``optimizer`` (``OptimizerConfig``), ``policy`` (``augment.Policy``),
  ``flip_and_rotate``, ``dtype`` (the model's compute dtype name) and ``ema_decay``.
  """
  step: jax.Array
  params: Any
  opt_state: Any
  arch: tuple = struct.field(pytree_node=False)
  optimizer: OptimizerConfig = struct.field(pytree_node=False)
  policy: Any = struct.field(pytree_node=False)
  flip_and_rotate: bool = struct.field(pytree_node=False, default=True)
  dtype: str = struct.field(pytree_node=False, default="float32")
  ema_params: Any = None
  ema_decay: float = struct.field(pytree_node=False, default=0.0)

  @property
  def eval_params(self) -> Any:
    """The weights to validate and ship: the moving average when EMA is on, else ``params``."""
    return self.ema_params if self.ema_decay > 0 else self.params

  @property
  def arch_dict(self) -> dict[str, Any]:
    return dict(self.arch)

  @property
  def model(self):
    from cutblur_jax import models  # pylint: disable=g-import-not-at-top
    return models.create_model(self.arch_dict, dtype=jnp.dtype(self.dtype))

  @property
  def tx(self) -> optax.GradientTransformation:
    return create_optimizer(self.optimizer)


def _init_input(arch: Mapping[str, Any]) -> jax.ShapeDtypeStruct:
  side = 8 * int(arch["scale"])  # any size divisible by the scale: parameters do not depend on it
  return jax.ShapeDtypeStruct((1, side, side, 3), jnp.float32)


@functools.lru_cache(maxsize=16)
def _optimizer_init_fn(optimizer: OptimizerConfig, sharding: jax.sharding.Sharding) -> Callable:
  return jax.jit(create_optimizer(optimizer).init, out_shardings=sharding)


def _initial_params(key: jax.Array, arch: Mapping[str, Any], mesh: jax.sharding.Mesh) -> Any:
  """Freshly initialised parameters of ``arch``, replicated over ``mesh``.

  Initialised op by op, not as one jitted program: XLA's compile time for the unrolled
  initialisers of a deep network grows faster than linearly with its depth (RCAN's 200
  blocks took over 10 minutes to compile on a 2-core CPU, at any optimisation level),
  while running them eagerly takes about 2 s and compiles only a few small kernels, which
  same-shaped layers share. Every process computes the same values from the same key.
  """
  from cutblur_jax import models  # pylint: disable=g-import-not-at-top
  model = models.create_model(dict(arch))
  params = model.init(key, jnp.zeros(_init_input(arch).shape, jnp.float32))["params"]
  return sharding_lib.replicate(params, mesh)


def create_train_state(key: jax.Array, arch: Mapping[str, Any], *,
                       optimizer: OptimizerConfig = OptimizerConfig(), policy: Any = None,
                       flip_and_rotate: bool = True, dtype: str = "float32",
                       params: Any = None, mesh: jax.sharding.Mesh | None = None,
                       ema_decay: float = 0.0, ema_params: Any = None) -> TrainState:
  """A fresh ``TrainState`` (step 0), replicated over ``mesh``.

  Args:
    key: initialisation key (ignored when ``params`` is given).
    arch: architecture dict (``models.model_arch``).
    optimizer: ``OptimizerConfig``.
    policy: ``augment.Policy`` (default: no augmentation).
    flip_and_rotate: random flips and transposes in the step.
    dtype: compute dtype name ("float32", "bfloat16", "float16").
    params: initial parameters (e.g. merged from a pretrained model).
    mesh: the device mesh (default: every device).
    ema_decay: keep ``ema = ema_decay * ema + (1 - ema_decay) * params`` after every
      update (0, the paper's setting, keeps none; 0.999 is the common choice).
    ema_params: the average to continue from (default: a copy of the initial params).

  Returns:
    The state, every array replicated over ``mesh``.

  Examples:
    >>> arch = models.model_arch("EDSR", 2, num_blocks=2, num_channels=8)  # doctest: +SKIP
    >>> state = create_train_state(jax.random.key(0), arch)  # doctest: +SKIP
  """
  from cutblur_jax import augment  # pylint: disable=g-import-not-at-top

  if not 0.0 <= float(ema_decay) < 1.0:
    raise ValueError(f"`ema_decay` must be in [0, 1), got {ema_decay!r}.")
  mesh = sharding_lib.create_mesh() if mesh is None else mesh
  replicated = sharding_lib.replicated_sharding(mesh)
  policy = augment.Policy(("none",), (1.0,), (1.0,)) if policy is None else policy
  params = (_initial_params(key, arch, mesh) if params is None
            else sharding_lib.replicate(params, mesh))
  opt_state = _optimizer_init_fn(optimizer, replicated)(params)
  step = sharding_lib.replicate(np.int32(0), mesh)
  if ema_decay > 0:
    # A copy, not the same buffers: the step donates both trees.
    ema_params = (jax.tree.map(jnp.copy, params) if ema_params is None
                  else sharding_lib.replicate(ema_params, mesh))
  else:
    ema_params = None
  return TrainState(step=step, params=params, opt_state=opt_state, arch=_frozen_arch(arch),
                    optimizer=optimizer, policy=policy, flip_and_rotate=bool(flip_and_rotate),
                    dtype=str(dtype), ema_params=ema_params, ema_decay=float(ema_decay))


def abstract_train_state(arch: Mapping[str, Any], optimizer: OptimizerConfig,
                         mesh: jax.sharding.Mesh) -> tuple[Any, Any]:
  """``(params, opt_state)`` as ``ShapeDtypeStruct`` trees replicated over ``mesh`` (to restore)."""
  from cutblur_jax import models  # pylint: disable=g-import-not-at-top

  model = models.create_model(dict(arch))
  replicated = sharding_lib.replicated_sharding(mesh)
  params = jax.eval_shape(lambda k, x: model.init(k, x)["params"], jax.random.key(0),
                          _init_input(arch))
  opt_state = jax.eval_shape(create_optimizer(optimizer).init, params)
  with_sharding = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated)
  return jax.tree.map(with_sharding, params), jax.tree.map(with_sharding, opt_state)


def random_flip_and_rotate(key: jax.Array, hr: jax.Array,
                           lr: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Random h-flip, v-flip and transpose, each with probability 1/2, drawn per sample.

  The same transform is applied to a sample's HR and LR patch, as the
  reference's ``utils.flip_and_rotate``; the eight results are the dihedral
  group of the square, so every orientation has probability 1/8.

  Args:
    key: PRNG key.
    hr, lr: ``[N, H, W, C]`` and ``[N, h, w, C]`` batches of square patches.

  Returns:
    ``(hr, lr)`` transformed, same shapes and dtypes.

  Raises:
    ValueError: if the patches are not square (a transpose would change their shape).

  Examples:
    >>> hr = jnp.arange(16.0).reshape(1, 4, 4, 1)
    >>> out, _ = random_flip_and_rotate(jax.random.key(0), hr, hr)
    >>> out.shape
    (1, 4, 4, 1)
  """
  if hr.ndim != 4 or lr.ndim != 4 or hr.shape[0] != lr.shape[0]:
    raise ValueError(f"`hr` and `lr` must be [N, H, W, C] batches of one size N, got {hr.shape} "
                     f"and {lr.shape}.")
  if hr.shape[1] != hr.shape[2] or lr.shape[1] != lr.shape[2]:
    raise ValueError(f"Random transposes need square patches, got HR {hr.shape[1:3]} and LR "
                     f"{lr.shape[1:3]}; set flip_and_rotate=False.")
  flips = jax.random.bernoulli(key, 0.5, (3, hr.shape[0]))

  def apply(images):
    def where(flag, transformed, images):
      return jnp.where(flag[:, None, None, None], transformed, images)
    images = where(flips[0], images[:, :, ::-1], images)
    images = where(flips[1], images[:, ::-1], images)
    return where(flips[2], jnp.swapaxes(images, 1, 2), images)

  return apply(hr), apply(lr)


def _prepare_inputs(key: jax.Array, batch: Mapping[str, jax.Array],
                    flip_and_rotate: bool) -> tuple[jax.Array, jax.Array]:
  hr, lr = batch["hr"], batch["lr"]
  if hr.shape[1] % lr.shape[1] or hr.shape[2] % lr.shape[2] or \
      hr.shape[1] // lr.shape[1] != hr.shape[2] // lr.shape[2]:
    raise ValueError(f"HR {hr.shape} must be an integer multiple of LR {lr.shape}.")
  if flip_and_rotate:
    hr, lr = random_flip_and_rotate(key, hr, lr)  # on uint8: flips commute with nearest upsampling
  hr = hr.astype(jnp.float32)
  lr = upsample_nearest(lr.astype(jnp.float32), hr.shape[1] // lr.shape[1])
  return hr, lr


@functools.partial(jax.jit, donate_argnums=0)
def train_step(state: TrainState, batch: Mapping[str, jax.Array],
               key: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimisation step, fused into one XLA program (``state`` is donated).

  Args:
    state: ``TrainState``.
    batch: ``{"hr": uint8 [B, H, W, 3], "lr": uint8 [B, H/s, W/s, 3]}`` (LR may be
      HR-sized for same-size tasks), sharded over the batch axis.
    key: the run's key; the step uses ``fold_in(key, state.step)``.

  Returns:
    ``(new_state, metrics)`` with scalar metrics ``loss`` (masked L1 on [0, 255]),
    ``grad_norm`` (before clipping), ``params_finite`` (no NaN/inf in the new
    parameters), ``learning_rate`` (of this update) and ``aug_index`` (the
    policy's augmentation drawn this step).

  Examples:
    >>> state, metrics = train_step(state, next(batches), run_key)  # doctest: +SKIP
  """
  from cutblur_jax import augment  # pylint: disable=g-import-not-at-top

  step_key = jax.random.fold_in(key, state.step)
  flip_key, augment_key = jax.random.split(step_key)
  hr, lr = _prepare_inputs(flip_key, batch, state.flip_and_rotate)
  hr, lr, mask, aug_index = augment.apply_augment(augment_key, hr, lr, state.policy)
  model = state.model

  def loss_fn(params):
    sr = model.apply({"params": params}, lr).astype(jnp.float32)
    return jnp.mean(jnp.abs(sr * mask - hr * mask))

  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  ema_params = state.ema_params
  if state.ema_decay > 0:  # static: with EMA off the program is the one without this line
    ema_params = optax.incremental_update(params, ema_params, step_size=1.0 - state.ema_decay)
  # One cheap reduction over the parameters: lets the loop refuse to checkpoint a state
  # whose update overflowed even though its loss and gradient were still finite.
  params_finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(params)]))
  metrics = {
      "loss": loss,
      "grad_norm": optax.tree.norm(grads),
      "params_finite": params_finite,
      "learning_rate": learning_rate_schedule(state.optimizer)(state.step),
      "aug_index": jnp.asarray(aug_index, jnp.int32),
  }
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                       ema_params=ema_params), metrics


# ----------------------------------------------------------------------------------------
# Validation.
# ----------------------------------------------------------------------------------------


def _input_scale(pair) -> int:
  return pair.hr.shape[0] // pair.lr.shape[0]


def baseline_metrics(pairs: Sequence[Any], protocol: Mapping[str, Any]) -> dict[str, float]:
  """PSNR/SSIM of the input alone: MATLAB-bicubic ``imresize`` of LR, or LR itself when same-size.

  Returns:
    ``{"bicubic_psnr", "bicubic_ssim"}`` for SR data, ``{"input_psnr", "input_ssim"}``
    for same-size pairs.
  """
  from cutblur_jax import evaluation, metrics  # pylint: disable=g-import-not-at-top

  psnrs, ssims = [], []
  same_size = all(_input_scale(pair) == 1 for pair in pairs)
  for pair in pairs:
    estimate = evaluation.bicubic_upscale(pair.lr, _input_scale(pair))
    psnrs.append(float(metrics.psnr(estimate, pair.hr, **protocol)))
    ssims.append(float(metrics.ssim(estimate, pair.hr, **protocol)))
  name = "input" if same_size else "bicubic"
  return {f"{name}_psnr": float(np.mean(psnrs)), f"{name}_ssim": float(np.mean(ssims))}


def validate(params: Any, arch: Mapping[str, Any], pairs: Sequence[Any],
             protocol: Mapping[str, Any], *, num_samples: int = 0,
             sample_size: int = 256) -> tuple[dict[str, float], dict[str, np.ndarray]]:
  """Mean PSNR and SSIM of the model on full validation images (the training loop's check).

  ``cutblur_jax.evaluation.evaluate_model`` is the full report (per image, with the
  bicubic baseline and the HR-input test); this is the cheaper periodic validation,
  whose baseline ``baseline_metrics`` computes once per run.

  Args:
    params: model parameters (replicated arrays are fine).
    arch: architecture dict.
    pairs: ``ImagePair`` sequence (full images).
    protocol: ``metrics.eval_protocol(dataset, scale)`` (``crop_border``, ``y_only``).
    num_samples: how many pairs to return LR/SR/HR crops of (for TensorBoard).
    sample_size: side of those crops (HR pixels, centred).

  Returns:
    ``({"psnr", "ssim"}, images)`` with images named ``"<i>/lr"`` (nearest
    upsampled to HR size), ``"<i>/sr"``, ``"<i>/hr"``.
  """
  from cutblur_jax import inference, metrics  # pylint: disable=g-import-not-at-top

  local_params = sharding_lib.to_local(params)
  psnrs, ssims, images = [], [], {}
  for index, pair in enumerate(pairs):
    # Same-size pairs (RealSR v1 with scale > 1) feed the network their input as it is.
    sr = np.asarray(inference.super_resolve(local_params, dict(arch), pair.lr,
                                            input_is_hr_size=_input_scale(pair) == 1))
    if sr.shape != pair.hr.shape:
      raise ValueError(f"super_resolve gave {sr.shape} for {pair.name!r}, expected "
                       f"{pair.hr.shape}.")
    psnrs.append(float(metrics.psnr(sr, pair.hr, **protocol)))
    ssims.append(float(metrics.ssim(sr, pair.hr, **protocol)))
    if index < num_samples:
      scale = _input_scale(pair)
      height, width = pair.hr.shape[:2]
      side_y = min(sample_size, height) // scale * scale
      side_x = min(sample_size, width) // scale * scale
      y0, x0 = (height - side_y) // 2 // scale * scale, (width - side_x) // 2 // scale * scale
      crop = (slice(y0, y0 + side_y), slice(x0, x0 + side_x))
      lr_crop = pair.lr[y0 // scale:(y0 + side_y) // scale, x0 // scale:(x0 + side_x) // scale]
      images[f"{index}/lr"] = np.asarray(upsample_nearest(lr_crop, scale)) if scale > 1 else lr_crop
      images[f"{index}/sr"] = sr[crop]
      images[f"{index}/hr"] = pair.hr[crop]
  return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims))}, images


# ----------------------------------------------------------------------------------------
# The training loop.
# ----------------------------------------------------------------------------------------


def _arch_differences(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
  keys = sorted(set(stored) | set(wanted))
  differences = []
  for key in keys:
    a, b = stored.get(key), wanted.get(key)
    same = a == b or (isinstance(a, (int, float)) and isinstance(b, (int, float))
                      and math.isclose(a, b, rel_tol=1e-9))
    if not same:
      differences.append(f"{key}: checkpoint {a!r} vs config {b!r}")
  return differences


def _host_scalar(value: jax.Array) -> float:
  if isinstance(value, jax.Array) and not value.is_fully_addressable:
    value = value.addressable_data(0)
  return np.asarray(value).item()


def _is_due(step: int, every: int, last: int) -> bool:
  return step == last or (every > 0 and step % every == 0)


def _echo(config: Any, message: str) -> None:
  """Prints a run event on process 0 (with the progress bar; logs it otherwise)."""
  if jax.process_index() == 0 and config.progress_bar:
    from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
    tqdm.write(message)
  else:
    logger.info(message)


def _config_json(config: Any) -> dict[str, Any]:
  return json.loads(config.to_json_best_effort())


# Architecture fields that set parameter shapes outside the head and tail: a model to
# fine-tune from must agree on them (its scale, hence head and tail, may differ).
_BODY_FIELDS = ("model", "num_blocks", "num_channels", "num_groups", "reduction")


def _read_pretrained(path: str, arch: Mapping[str, Any]) -> Any:
  """The parameters of the model to fine-tune from, checked against ``arch`` before any compile."""
  from cutblur_jax import checkpoint  # pylint: disable=g-import-not-at-top

  pretrained, pretrained_arch = checkpoint.load_model(path)
  differences = _arch_differences({k: pretrained_arch.get(k) for k in _BODY_FIELDS},
                                  {k: arch.get(k) for k in _BODY_FIELDS})
  if differences:
    raise ValueError(f"`pretrain` {path} holds another network ({'; '.join(differences)}); "
                     "only the scale may differ when fine-tuning.")
  return pretrained


def train_and_evaluate(config: Any, workdir: str | os.PathLike) -> dict[str, Any]:
  """Trains and validates a model as ``config`` says, in ``workdir`` (resuming if it holds a run).

  Args:
    config: a config with the fields of ``base_config`` (presets are applied by
      ``resolve_config``), e.g. from ``experiments/configs/*.py``.
    workdir: the run's directory: ``config.json``, ``metrics.jsonl``,
      TensorBoard events and ``checkpoints/{latest,best}``.

  Returns:
    A dict: ``step``, ``loss`` (mean over the last log interval), ``psnr``,
    ``ssim`` (last validation), the baseline's (``bicubic_psnr``/``bicubic_ssim``,
    or ``input_psnr``/``input_ssim`` for same-size tasks), ``best_psnr``,
    ``best_step``, ``wall_time_s``, ``steps_per_sec`` and ``workdir``.

  Raises:
    ValueError: bad config or data (unknown model, data set or augmentation, a
      batch not divisible by the device count, a patch larger than an image, a
      work directory holding another architecture), before anything compiles.
    NonFiniteLossError: the loss became NaN/inf; the newest checkpoint on disk is
      the last good one.
  """
  from cutblur_jax import data, metrics  # pylint: disable=g-import-not-at-top
  # pylint: disable-next=g-import-not-at-top
  from cutblur_jax.logging_utils import MetricWriter, write_json_atomic
  from cutblur_jax.train_checkpoints import TrainCheckpointer  # pylint: disable=g-import-not-at-top

  start_time = time.perf_counter()
  config = resolve_config(config)
  sharding_lib.initialize_distributed(config)
  mesh = sharding_lib.create_mesh()
  sharding_lib.check_batch_size(config.batch_size, mesh)
  arch = model_arch_from_config(config)
  policy = policy_from_config(config)
  optimizer = OptimizerConfig.from_config(config)
  workdir = pathlib.Path(workdir).absolute()
  is_chief = jax.process_index() == 0

  checkpoints = TrainCheckpointer(workdir, keep=config.keep_checkpoints)
  try:
    stored_arch = checkpoints.stored_arch()
    if stored_arch is not None:
      differences = _arch_differences(stored_arch, arch)
      if differences:
        raise ValueError(f"Work directory {workdir} holds a checkpoint of another architecture ("
                         f"{'; '.join(differences)}); use a new --workdir or the same model "
                         "settings.")
    resume_step = checkpoints.latest_step()
    pretrained = None
    if config.pretrain and resume_step is None:
      pretrained = _read_pretrained(config.pretrain, arch)

    # Data: every check on images and patches happens here, before anything compiles.
    train_set = data.create_dataset(config, "train")
    valid_set = data.create_dataset(config, "validation")
    pipeline = data.create_pipeline(config, dataset=train_set)
  except BaseException:
    checkpoints.close()
    raise
  writer = None
  try:
    valid_pairs = data.load_pairs(valid_set, num_workers=config.num_workers)
    if config.num_eval_images is not None:
      valid_pairs = valid_pairs[:config.num_eval_images]
    protocol = dict(metrics.eval_protocol(data.reference_dataset_name(config.dataset),
                                          config.scale))
    baseline = baseline_metrics(valid_pairs, protocol)

    writer = MetricWriter(workdir, enabled=is_chief)
    if is_chief:
      write_json_atomic(workdir / "config.json", _config_json(config))
      writer.write_text(0, "config", "```\n" + str(config) + "\n```")
    _echo(config, f"Training {config_summary(config)} on {mesh.devices.size} device(s) "
                  f"({jax.process_count()} process(es)) in {workdir}")
    _echo(config, f"Validation: {len(valid_pairs)} images, {protocol}; baseline "
                  f"{_baseline_words(baseline)}")

    # State: fresh, fine-tuned from `pretrain`, or resumed.
    seed_key = jax.random.key(config.seed)
    init_key, run_key = jax.random.split(seed_key)
    if resume_step is not None:
      abstract_params, abstract_opt_state = abstract_train_state(arch, optimizer, mesh)
      params, opt_state, meta = checkpoints.restore_latest(abstract_params, abstract_opt_state,
                                                           resume_step)
      run_key = jax.random.wrap_key_data(np.asarray(meta["rng_key_data"], np.uint32))
      pipeline.set_state(meta["pipeline"])
      step_array = sharding_lib.replicate(np.int32(meta["step"]), mesh)
      ema_params = None
      if config.ema_decay > 0:
        ema_params = checkpoints.restore_ema(abstract_params, resume_step)
        if ema_params is None:
          ema_params = jax.tree.map(jnp.copy, params)
          _echo(config, f"Step {resume_step} has no EMA weights: the average starts from its "
                        "parameters.")
      state = TrainState(step=step_array, params=params, opt_state=opt_state,
                         arch=_frozen_arch(arch), optimizer=optimizer, policy=policy,
                         flip_and_rotate=bool(config.flip_and_rotate), dtype=config.dtype,
                         ema_params=ema_params, ema_decay=float(config.ema_decay))
      start_step = int(meta["step"])
      _echo(config, f"Resumed from step {start_step} of {checkpoints.directory / 'latest'}")
    else:
      params = None
      if pretrained is not None:
        from cutblur_jax import checkpoint  # pylint: disable=g-import-not-at-top
        # Layers whose shapes differ (head/tail of another scale) keep their fresh initialisation.
        fresh = sharding_lib.to_local(_initial_params(init_key, arch, mesh))
        params = checkpoint.merge_pretrained(jax.device_get(fresh), pretrained)
        del pretrained, fresh
        _echo(config, f"Fine-tuning from {config.pretrain}")
      state = create_train_state(init_key, arch, optimizer=optimizer, policy=policy,
                                 flip_and_rotate=config.flip_and_rotate, dtype=config.dtype,
                                 params=params, mesh=mesh, ema_decay=config.ema_decay)
      start_step = 0

    best = checkpoints.best_eval()
    best_psnr = float(best["psnr"]) if best else -math.inf
    best_step = int(best["step"]) if best else None
    if is_chief and start_step == 0:
      writer.write_scalars(0, baseline, split="eval")

    result = _train_loop(config, state, run_key, pipeline, mesh, checkpoints, writer, arch,
                         valid_pairs, protocol, baseline, start_step, best_psnr, best_step)
  finally:
    pipeline.close()
    checkpoints.close()
    if writer is not None:
      writer.close()
  result.update(baseline)
  result["wall_time_s"] = time.perf_counter() - start_time
  result["workdir"] = str(workdir)
  return result


def _train_loop(config, state, run_key, pipeline, mesh, checkpoints, writer, arch, valid_pairs,
                protocol, baseline, start_step, best_psnr, best_step) -> dict[str, Any]:
  """The step/log/evaluate/checkpoint loop of ``train_and_evaluate``."""
  from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
  from cutblur_jax import data  # pylint: disable=g-import-not-at-top

  total = int(config.num_train_steps)
  is_chief = jax.process_index() == 0
  batches = data.prefetch_to_device(pipeline, sharding_lib.batch_sharding(mesh),
                                    size=max(1, config.prefetch))
  pending: list[tuple[int, dict[str, jax.Array]]] = []
  last_loss, last_metrics, last_eval, steps_per_sec = math.nan, {}, {}, math.nan
  interval_start, interval_steps, paused = time.perf_counter(), 0, 0.0
  step = start_step
  weights = "ema" if state.ema_decay > 0 else "raw"  # which weights validation measures
  bar = tqdm(total=total, initial=step, unit="step", dynamic_ncols=True, smoothing=0.1,
             disable=not (is_chief and config.progress_bar), desc="train")

  def flush_metrics() -> None:
    """Pulls the pending step metrics to the host; stops the run on a non-finite loss."""
    nonlocal last_loss, last_metrics
    if not pending:
      return
    host = [(s, {k: _host_scalar(v) for k, v in m.items()}) for s, m in pending]
    pending.clear()
    for s, m in host:
      if not (math.isfinite(m["loss"]) and math.isfinite(m["grad_norm"]) and m["params_finite"]):
        good = checkpoints.latest_step()
        checkpoints.wait()
        writer.write_scalars(s, {"loss": m["loss"], "grad_norm": m["grad_norm"]}, split="train")
        where = (f"the last good checkpoint is step {good} in {checkpoints.directory / 'latest'}"
                 if good is not None else "no checkpoint was written yet")
        raise NonFiniteLossError(
            f"Non-finite training step {s} (loss {m['loss']}, gradient norm {m['grad_norm']}, "
            f"parameters finite: {bool(m['params_finite'])}): "
            f"stopped without saving this state; {where}. Lower `lr`, set `gclip`, or check "
            "the data.")
    last_loss = float(np.mean([m["loss"] for _, m in host]))
    last_metrics = host[-1][1]

  try:
    while step < total:
      batch = next(batches)
      state, step_metrics = train_step(state, batch, run_key)
      step += 1
      interval_steps += 1
      pending.append((step, step_metrics))
      bar.update(1)
      log_due = _is_due(step, config.log_every_steps, total)
      eval_due = _is_due(step, config.eval_every_steps, total)
      checkpoint_due = _is_due(step, config.checkpoint_every_steps, total)
      if not (log_due or eval_due or checkpoint_due):
        continue
      flush_metrics()
      if log_due:
        elapsed = time.perf_counter() - interval_start - paused
        steps_per_sec = interval_steps / elapsed if elapsed > 0 else math.nan
        writer.write_scalars(step, {
            "loss": last_loss, "learning_rate": last_metrics["learning_rate"],
            "grad_norm": last_metrics["grad_norm"], "steps_per_sec": steps_per_sec,
            "images_per_sec": steps_per_sec * config.batch_size}, split="train")
        bar.set_postfix(loss=f"{last_loss:.3f}", refresh=False)
        interval_start, interval_steps, paused = time.perf_counter(), 0, 0.0
      pause_start = time.perf_counter()
      if eval_due:
        scores, images = validate(state.eval_params, arch, valid_pairs, protocol,
                                  num_samples=config.num_sample_images)
        last_eval = dict(scores)
        if scores["psnr"] > best_psnr:
          best_psnr, best_step = scores["psnr"], step
          checkpoints.save_best(step, state.params, arch,
                                {"step": step, **scores, **baseline, "weights": weights},
                                ema_params=state.ema_params)
        record = {**scores, **baseline, "best_psnr": best_psnr, "weights": weights}
        writer.write_scalars(step, record, split="eval")
        writer.write_images(step, {f"samples/{k}": v for k, v in images.items()})
        _echo(config, f"step {step}: PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.4f} "
                  f"(baseline {_baseline_words(baseline)}; best {best_psnr:.2f} @ {best_step})")
      if checkpoint_due:
        meta = {"step": step, "pipeline": batches.get_state(),
                "rng_key_data": np.asarray(jax.random.key_data(run_key)).tolist(),
                "best_psnr": best_psnr if math.isfinite(best_psnr) else None,
                "best_step": best_step}
        checkpoints.save_latest(step, state.params, state.opt_state, arch, meta,
                                ema_params=state.ema_params)
      writer.flush()
      paused += time.perf_counter() - pause_start
    if not last_eval:  # resumed at (or past) the end: validate what is there
      last_eval, _ = validate(state.eval_params, arch, valid_pairs, protocol)
    checkpoints.wait()
  finally:
    bar.close()
  return {"step": step, "loss": last_loss, **last_eval, "best_psnr": best_psnr,
          "best_step": best_step, "steps_per_sec": steps_per_sec, "weights": weights}


def _baseline_words(baseline: Mapping[str, float]) -> str:
  return ", ".join(f"{name.split('_')[0]} {name.split('_')[1].upper()} {value:.4g}"
                   for name, value in baseline.items())
