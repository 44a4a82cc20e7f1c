"""``train_and_evaluate(config, workdir)``: one whole experiment, resumable.

The CLI ``experiments/train.py`` is a thin wrapper. A run:

1. resolves the config (presets, checks: ``training.config.resolve_config``) and starts
   the devices (multi-host start-up, the mesh);
2. opens the work directory's checkpoints and refuses one of another architecture;
3. builds the data (every check on images and patches happens here, before anything
   compiles) and the bicubic baseline of the validation images;
4. creates the train state, fresh, fine-tuned from ``pretrain``, or resumed from the
   newest ``latest`` step that restores (parameters, optimizer, EMA, run key and input
   position; a damaged step is reported and the previous kept one used);
5. loops: the fused ``train_step``; every ``log_every_steps`` the train metrics; every
   ``eval_every_steps`` validation on full images (``cutblur_jax.evaluation``, the path
   ``experiments/evaluate.py`` uses) and the best checkpoint; every
   ``checkpoint_every_steps`` the latest checkpoint.

Faults: the work directory is locked while a run trains (``training.workdir``); nothing
is written until every check of the start has passed, and a failed start leaves the
directory as it found it; a resume drops the ``metrics.jsonl`` records after its step;
Ctrl-C or SIGTERM saves the step in flight and raises ``TrainingInterrupted``
(``training.signals``); a failed log or checkpoint write raises at once, naming the path.

Examples:
  >>> from cutblur_jax import train
  >>> config = train.base_config()
  >>> config.dataset = "embedded"  # doctest: +SKIP
  >>> result = train.train_and_evaluate(config, "/tmp/run")  # doctest: +SKIP
  >>> result["psnr"] > result["bicubic_psnr"]  # doctest: +SKIP
  True
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import pathlib
import sys
import threading
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from cutblur_jax import checkpoint, data, evaluation
from cutblur_jax import sharding as sharding_lib
from cutblur_jax.data.spec import parse_dataset
from cutblur_jax.training.checkpoints import TrainCheckpointer
from cutblur_jax.training.config import (
  config_summary,
  model_arch_from_config,
  policy_from_config,
  resolve_config,
)
from cutblur_jax.training.logs import MetricWriter, truncate_metrics
from cutblur_jax.training.optimizer import OptimizerConfig
from cutblur_jax.training.signals import StopRequests, TrainingInterrupted
from cutblur_jax.training.state import (
  TrainState,
  abstract_train_state,
  create_train_state,
  frozen_arch,
  initial_params,
)
from cutblur_jax.training.step import train_step
from cutblur_jax.training.validation import Validation, baseline_words
from cutblur_jax.training.workdir import (
  StartGuard,
  WorkdirLock,
  check_workdir,
  config_changes,
  keep_run_seed,
)

__all__ = ["NonFiniteLossError", "TrainingInterrupted", "train_and_evaluate"]


# How long each close may take after a failure (see _close).
_CLOSE_TIMEOUT_S = 20.0


class NonFiniteLossError(FloatingPointError):
  """The loss or gradient became NaN/inf; the run stopped without saving that state."""


def _host_scalar(value: jax.Array) -> float:
  if isinstance(value, jax.Array) and not value.is_fully_addressable:
    value = value.addressable_data(0)
  return np.asarray(value).item()


def _is_due(step: int, every: int, last: int) -> bool:
  return step == last or (every > 0 and step % every == 0)


@dataclasses.dataclass
class _Run:
  """What one training run holds while it loops."""

  config: Any
  workdir: pathlib.Path
  mesh: jax.sharding.Mesh
  arch: Any
  checkpoints: TrainCheckpointer
  validation: Validation
  writer: MetricWriter | None = None
  changes: dict[str, tuple[Any, Any]] = dataclasses.field(default_factory=dict)
  best_psnr: float = -math.inf
  best_step: int | None = None

  def echo(self, message: str) -> None:
    """Prints a run event on process 0, above the progress bar when there is one."""
    if jax.process_index() != 0:
      return
    if self.config.progress_bar:
      from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top

      tqdm.write(message)
    else:  # a pod's non-interactive log shows the start lines too
      print(message, flush=True)

  def warn(self, message: str) -> None:
    """A one-line warning on process 0, on stderr whatever the progress bar."""
    if jax.process_index() == 0:
      print(message, file=sys.stderr, flush=True)


def _restore_state(
  run: _Run, optimizer: OptimizerConfig, policy: Any, pipeline: Any
) -> tuple[TrainState, jax.Array]:
  """The newest restorable ``latest`` step's state and run key; moves ``pipeline`` there."""
  config, arch, mesh = run.config, run.arch, run.mesh
  abstract_params, abstract_opt_state = abstract_train_state(arch, optimizer, mesh)
  step, params, opt_state, meta, ema_params = run.checkpoints.restore_newest(
    abstract_params, abstract_opt_state, ema=config.ema_decay > 0, warn=run.warn
  )
  run_key = jax.random.wrap_key_data(np.asarray(meta["rng_key_data"], np.uint32))
  pipeline.set_state(meta["pipeline"])  # refuses another batch size, before any write
  if config.ema_decay > 0 and ema_params is None:
    ema_params = jax.tree.map(jnp.copy, params)
    run.echo(f"Step {step} has no EMA weights: the average starts from its parameters.")
  state = TrainState(
    step=sharding_lib.replicate(np.int32(meta["step"]), mesh),
    params=params,
    opt_state=opt_state,
    arch=frozen_arch(arch),
    optimizer=optimizer,
    policy=policy,
    flip_and_rotate=bool(config.flip_and_rotate),
    dtype=config.dtype,
    ema_params=ema_params,
    ema_decay=float(config.ema_decay),
  )
  return state, run_key


def _fresh_state(
  run: _Run, init_key: jax.Array, optimizer: OptimizerConfig, policy: Any, pretrained: Any
) -> TrainState:
  config = run.config
  params = None
  if pretrained is not None:
    # Layers whose shapes differ (head/tail of another scale) keep their fresh initialisation.
    fresh = sharding_lib.to_local(initial_params(init_key, run.arch, run.mesh))
    params = checkpoint.merge_pretrained(jax.device_get(fresh), pretrained)
    run.echo(f"Fine-tuning from {config.pretrain}")
  return create_train_state(
    init_key,
    run.arch,
    optimizer=optimizer,
    policy=policy,
    flip_and_rotate=config.flip_and_rotate,
    dtype=config.dtype,
    params=params,
    mesh=run.mesh,
    ema_decay=config.ema_decay,
  )


def _start(
  config: Any,
  workdir: pathlib.Path,
  mesh: jax.sharding.Mesh,
  checkpoints: TrainCheckpointer,
  accept_config_changes: bool,
) -> tuple[_Run, TrainState, jax.Array, Any]:
  """Every check and every read of a start, in order; writes nothing.

  Returns ``(run, state, run_key, pipeline)``.
  """
  arch = model_arch_from_config(config)
  policy = policy_from_config(config)
  optimizer = OptimizerConfig.from_config(config)
  stored_arch = checkpoints.stored_arch()
  if stored_arch is not None:
    differences = checkpoint.arch_differences(stored_arch, arch)
    if differences:
      raise ValueError(
        f"Work directory {workdir} holds a checkpoint of another architecture ("
        f"{'; '.join(differences)}); use a new --workdir or the same model "
        "settings."
      )
  resuming = checkpoints.latest_step() is not None
  changes = config_changes(workdir, config) if resuming else {}
  if changes and not accept_config_changes:
    listed = "; ".join(f"{name}: run {old!r}, now {new!r}" for name, (old, new) in changes.items())
    raise ValueError(
      f"Work directory {workdir} holds a run with another config ({listed}); "
      "resume it with its own values, use a new --workdir, or accept the change "
      "with --accept_config_changes (recorded in metrics.jsonl)."
    )
  pretrained = None
  if config.pretrain and not resuming:
    pretrained = checkpoint.load_pretrained(config.pretrain, arch)
  # Data: every check on images and patches happens here, before anything compiles.
  train_set = data.first_images(data.create_dataset(config, "train"), config.num_train_images)
  valid_set = data.create_dataset(config, "validation")
  pipeline = data.create_pipeline(config, dataset=train_set)
  try:
    valid_pairs = data.load_pairs(valid_set, num_workers=config.num_workers)
    if config.num_eval_images is not None:
      valid_pairs = valid_pairs[: config.num_eval_images]
    protocol = parse_dataset(config.dataset).eval_protocol(config.scale)
    validation = Validation(
      valid_pairs,
      protocol,
      evaluation.baseline_metrics(valid_pairs, **protocol),
      config.num_sample_images,
    )
    run = _Run(config, workdir, mesh, arch, checkpoints, validation, changes=changes)
    init_key, run_key = jax.random.split(jax.random.key(config.seed))
    if resuming:
      note = keep_run_seed(workdir, config)
      if note:
        run.warn(f"warning: {note}")
      state, run_key = _restore_state(run, optimizer, policy, pipeline)
    else:
      state = _fresh_state(run, init_key, optimizer, policy, pretrained)
  except BaseException:
    pipeline.close()
    raise
  return run, state, run_key, pipeline


def train_and_evaluate(
  config: Any, workdir: str | os.PathLike, *, accept_config_changes: bool = False
) -> dict[str, Any]:
  """Trains and validates a model as ``config`` says, in ``workdir`` (resuming if it holds a run).

  Args:
    config: a config with the fields of ``base_config`` (presets are applied by
      ``resolve_config``), e.g. from ``experiments/configs/*.py``.
    workdir: the run's directory: ``config.json``, ``metrics.jsonl``,
      TensorBoard events and ``checkpoints/{latest,best}``. A new or empty folder, or the
      work directory of a run to resume.
    accept_config_changes: let a resume change fields outside
      ``training.workdir.RESUMABLE_FIELDS`` (the data set, ``lr``, the augmentations, ...);
      the change is recorded in ``metrics.jsonl`` (``"split": "event"``).

  Returns:
    A dict: ``step``, ``loss`` (mean over the last log interval; NaN when no step ran),
    ``psnr``, ``ssim`` (last validation), the baseline's (``bicubic_psnr``/``bicubic_ssim``,
    or ``input_psnr``/``input_ssim`` for same-size tasks), ``best_psnr``, ``best_step``,
    ``best_checkpoint`` (its folder, or None), ``weights``, ``finished_before`` (the run
    was already complete), ``wall_time_s``, ``steps_per_sec`` and ``workdir``.

  Raises:
    ValueError: bad config or data (unknown model, data set or augmentation, a
      batch not divisible by the device count, a patch larger than an image, a
      work directory holding another architecture or, without ``accept_config_changes``,
      another config; a folder that is no work directory), before anything compiles.
    training.workdir.WorkdirBusyError: another live run trains in ``workdir``.
    NonFiniteLossError: the loss became NaN/inf; the newest checkpoint on disk is
      the last good one.
    TrainingInterrupted: SIGINT or SIGTERM; the step in flight was saved.
    training.logs.LogWriteError, training.checkpoints.CheckpointWriteError: a write failed.
  """
  start_time = time.perf_counter()
  config = resolve_config(config)
  sharding_lib.initialize_distributed(config)
  mesh = sharding_lib.create_mesh()
  sharding_lib.check_batch_size(config.batch_size, mesh)
  workdir = pathlib.Path(workdir).absolute()
  is_chief = jax.process_index() == 0
  check_workdir(workdir)
  with contextlib.ExitStack() as stack:  # closed in reverse: the lock last
    if is_chief:
      guard = StartGuard(workdir)  # notes the folder before the lock file is made
      stack.enter_context(WorkdirLock(workdir))  # refused: nothing of ours to undo
      stack.enter_context(guard)  # a failed start leaves the folder as it found it
    checkpoints = TrainCheckpointer(workdir, keep=config.keep_checkpoints)
    stack.push(_closing(checkpoints.close, after_failure=False))
    run, state, run_key, pipeline = _start(
      config, workdir, mesh, checkpoints, accept_config_changes
    )
    stack.push(_closing(pipeline.close))
    # Every check passed: from here on the run writes.
    if is_chief:
      guard.commit()
    start_step = _begin(run, state, stack)
    with StopRequests() as stop:
      result = _train_loop(run, state, run_key, pipeline, stop)
  result["finished_before"] = start_step >= config.num_train_steps
  result.update(run.validation.baseline)
  best_step = result["best_step"]
  result["best_checkpoint"] = (
    str(checkpoints.directory / checkpoint.BEST_DIR / str(best_step))
    if best_step is not None
    else None
  )
  result["wall_time_s"] = time.perf_counter() - start_time
  result["workdir"] = str(workdir)
  return result


def _closing(close: Callable[[], None], *, after_failure: bool = True) -> Callable:
  """An ``ExitStack`` exit callback that calls ``close()``; a failed close is raised.

  After a failure, a close may fail or block as well (a full disk): it then gets at most
  ``_CLOSE_TIMEOUT_S`` in a daemon thread and its error is dropped, so that the first
  error is the one reported, soon; or, with ``after_failure=False``, it is not called. The
  checkpoint managers are left so to the process's exit: closing them waits for a save
  that may never end, and closes the event loop that TensorStore's callbacks of that save
  still post to.
  """

  def exit_(exc_type, exc, traceback) -> bool:
    del exc, traceback
    if exc_type is None:
      close()
    elif after_failure:
      thread = threading.Thread(target=_quietly, args=(close,), daemon=True)
      thread.start()
      thread.join(_CLOSE_TIMEOUT_S)
    return False

  return exit_


def _quietly(close: Callable[[], None]) -> None:
  try:
    close()
  except Exception:  # pylint: disable=broad-except  # the run already failed; see _closing
    pass


def _begin(run: _Run, state: TrainState, stack: contextlib.ExitStack) -> int:
  """The start's writes and lines (``config.json``, the logs' first records); its step.

  Opens ``run.writer`` (closed by ``stack``), after ``metrics.jsonl`` lost the records
  past the resumed step: the file is rewritten, so a writer opened before would write
  into the replaced copy.
  """
  config, workdir = run.config, run.workdir
  start_step = int(_host_scalar(state.step))
  is_chief = jax.process_index() == 0
  if is_chief:
    if start_step:
      truncate_metrics(workdir, start_step)
    data.io.write_json(workdir / checkpoint.CONFIG_FILE, json.loads(config.to_json_best_effort()))
  run.writer = MetricWriter(workdir, enabled=is_chief)
  stack.push(_closing(run.writer.close))
  run.writer.write_text(0, "config", "```\n" + str(config) + "\n```")
  run.echo(
    f"Training {config_summary(config)} on {run.mesh.devices.size} device(s) "
    f"({jax.process_count()} process(es)) in {workdir}"
  )
  run.echo(
    f"Validation: {len(run.validation.pairs)} images, {run.validation.protocol}; "
    f"baseline {baseline_words(run.validation.baseline)}"
  )
  if start_step:
    run.echo(f"Resumed from step {start_step} of {run.checkpoints.directory / 'latest'}")
  if run.changes:
    run.writer.write_event(
      start_step, "config_changed", {"changes": {k: list(v) for k, v in run.changes.items()}}
    )
    run.warn(
      "warning: the resumed run changes "
      + "; ".join(f"{name} from {old!r} to {new!r}" for name, (old, new) in run.changes.items())
    )
  best = run.checkpoints.best_eval()
  if best:
    run.best_psnr, run.best_step = float(best["psnr"]), int(best["step"])
  if start_step == 0:
    run.writer.write_scalars(0, run.validation.baseline, split="eval")
  if start_step >= config.num_train_steps:
    run.echo(
      f"The run in {workdir} is already finished (step {start_step} of "
      f"num_train_steps {config.num_train_steps}); validating its weights."
    )
  return start_step


def _check_finite(run: _Run, host_metrics: Sequence[tuple[int, dict[str, float]]]) -> None:
  """Stops the run at the first non-finite step, naming the last good checkpoint."""
  for step, m in host_metrics:
    if math.isfinite(m["loss"]) and math.isfinite(m["grad_norm"]) and m["params_finite"]:
      continue
    good = run.checkpoints.latest_step()
    run.checkpoints.wait()
    run.writer.write_scalars(step, {"loss": m["loss"], "grad_norm": m["grad_norm"]}, split="train")
    where = (
      f"the last good checkpoint is step {good} in {run.checkpoints.directory / 'latest'}"
      if good is not None
      else "no checkpoint was written yet"
    )
    raise NonFiniteLossError(
      f"Non-finite training step {step} (loss {m['loss']}, gradient norm {m['grad_norm']}, "
      f"parameters finite: {bool(m['params_finite'])}): stopped without saving this state; "
      f"{where}. Lower `lr`, set `gclip`, or check the data."
    )


def _validate_and_keep_best(
  run: _Run, state: TrainState, step: int, weights: str
) -> dict[str, float]:
  scores, images = run.validation.run(state.eval_params, run.arch)
  baseline = run.validation.baseline
  if scores["psnr"] > run.best_psnr:
    run.best_psnr, run.best_step = scores["psnr"], step
    run.checkpoints.save_best(
      step,
      state.params,
      run.arch,
      {"step": step, **scores, **baseline, "weights": weights},
      ema_params=state.ema_params,
    )
  run.writer.write_scalars(
    step, {**scores, **baseline, "best_psnr": run.best_psnr, "weights": weights}, split="eval"
  )
  run.writer.write_images(step, {f"samples/{k}": v for k, v in images.items()})
  run.echo(
    f"step {step}: PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.4f} "
    f"(baseline {baseline_words(baseline)}; best {run.best_psnr:.2f} @ {run.best_step})"
  )
  return scores


def _save_latest(run: _Run, state: TrainState, step: int, run_key: jax.Array, batches) -> None:
  meta = {
    "step": step,
    "pipeline": batches.get_state(),
    "rng_key_data": np.asarray(jax.random.key_data(run_key)).tolist(),
    "best_psnr": run.best_psnr if math.isfinite(run.best_psnr) else None,
    "best_step": run.best_step,
  }
  run.checkpoints.save_latest(
    step, state.params, state.opt_state, run.arch, meta, ema_params=state.ema_params
  )


def _train_loop(
  run: _Run, state: TrainState, run_key: jax.Array, pipeline: Any, stop: StopRequests
) -> dict[str, Any]:
  """The step/log/evaluate/checkpoint loop of ``train_and_evaluate``."""
  from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top

  config = run.config
  total = int(config.num_train_steps)
  batches = data.prefetch_to_device(
    pipeline, sharding_lib.batch_sharding(run.mesh), size=max(1, config.prefetch)
  )
  pending: list[tuple[int, dict[str, jax.Array]]] = []
  last_loss, last_metrics, last_eval, steps_per_sec = math.nan, {}, {}, math.nan
  interval_start, interval_steps, paused = time.perf_counter(), 0, 0.0
  step = int(_host_scalar(state.step))
  weights = "ema" if state.ema_decay > 0 else "raw"  # which weights validation measures
  bar = tqdm(
    total=total,
    initial=step,
    unit="step",
    dynamic_ncols=True,
    smoothing=0.1,
    disable=not (jax.process_index() == 0 and config.progress_bar),
    desc="train",
  )
  try:
    while step < total:
      state, step_metrics = train_step(state, next(batches), run_key)
      run.checkpoints.check_for_errors()  # a failed background save stops the run at once
      step += 1
      interval_steps += 1
      pending.append((step, step_metrics))
      bar.update(1)
      log_due = _is_due(step, config.log_every_steps, total)
      eval_due = _is_due(step, config.eval_every_steps, total)
      checkpoint_due = _is_due(step, config.checkpoint_every_steps, total)
      if stop.signum is not None:
        log_due = checkpoint_due = True
      if not (log_due or eval_due or checkpoint_due):
        continue
      # Pull the pending metrics to the host only now: the steps in between run ahead.
      host = [(s, {k: _host_scalar(v) for k, v in m.items()}) for s, m in pending]
      pending.clear()
      _check_finite(run, host)
      last_loss, last_metrics = float(np.mean([m["loss"] for _, m in host])), host[-1][1]
      if log_due:
        elapsed = time.perf_counter() - interval_start - paused
        steps_per_sec = interval_steps / elapsed if elapsed > 0 else math.nan
        run.writer.write_scalars(
          step,
          {
            "loss": last_loss,
            "learning_rate": last_metrics["learning_rate"],
            "grad_norm": last_metrics["grad_norm"],
            "steps_per_sec": steps_per_sec,
            "images_per_sec": steps_per_sec * config.batch_size,
          },
          split="train",
        )
        bar.set_postfix(loss=f"{last_loss:.3f}", refresh=False)
        interval_start, interval_steps, paused = time.perf_counter(), 0, 0.0
      pause_start = time.perf_counter()
      if eval_due and stop.signum is None:
        last_eval = _validate_and_keep_best(run, state, step, weights)
      if checkpoint_due:
        _save_latest(run, state, step, run_key, batches)
      run.writer.flush()
      paused += time.perf_counter() - pause_start
      if stop.signum is not None:
        run.checkpoints.wait()
        raise TrainingInterrupted(
          stop.signum,
          step,
          f"Stopped by signal {stop.signum} after saving step {step} in "
          f"{run.checkpoints.directory / 'latest'}; resume with --workdir {run.workdir}.",
        )
    if not last_eval:  # resumed at (or past) the end: validate what is there
      last_eval, _ = run.validation.run(state.eval_params, run.arch, with_samples=False)
    run.checkpoints.wait()
  finally:
    bar.close()
  return {
    "step": step,
    "loss": last_loss,
    **last_eval,
    "best_psnr": run.best_psnr,
    "best_step": run.best_step,
    "steps_per_sec": steps_per_sec,
    "weights": weights,
  }
