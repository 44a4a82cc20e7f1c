"""``train_and_evaluate(config, workdir)``: one whole experiment, resumable.

The CLI ``experiments/train.py`` is a thin wrapper. A run:

1. resolves the config once into a ``Recipe`` (presets, checks:
   ``training.recipe.resolve_recipe``) and starts the devices (multi-host start-up, the
   mesh); from here on only the recipe is read;
2. refuses a folder that is no work directory, and locks the work directory;
3. starts (``training.start.start_run``): refuses a checkpoint of another architecture or
   a resume of another config, builds the data and the validation baseline, and creates
   the train state, fresh, fine-tuned or resumed; it writes nothing;
4. writes ``config.json`` and the logs' first records;
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
import json
import math
import os
import threading
import time
from typing import Any, Callable, Sequence

import jax
import numpy as np

from cutblur_jax import checkpoint, data
from cutblur_jax import sharding as sharding_lib
from cutblur_jax.paths import absolute, check_backend
from cutblur_jax.training.checkpoints import TrainCheckpointer
from cutblur_jax.training.recipe import Recipe, resolve_recipe
from cutblur_jax.training.logs import MetricWriter, truncate_metrics
from cutblur_jax.training.signals import StopRequests, TrainingInterrupted
from cutblur_jax.training.state import TrainState
from cutblur_jax.training.start import Run, host_scalar, start_run
from cutblur_jax.training.step import train_step
from cutblur_jax.training.validation import baseline_words
from cutblur_jax.training.workdir import StartGuard, WorkdirLock, check_workdir

__all__ = ["NonFiniteLossError", "TrainingInterrupted", "train_and_evaluate"]


# How long each close may take after a failure (see _closing).
_CLOSE_TIMEOUT_S = 20.0


class NonFiniteLossError(FloatingPointError):
  """The loss or gradient became NaN/inf; the run stopped without saving that state."""


def _is_due(step: int, every: int, last: int) -> bool:
  return step == last or (every > 0 and step % every == 0)


def train_and_evaluate(
  config: Any | Recipe, workdir: str | os.PathLike, *, accept_config_changes: bool = False
) -> dict[str, Any]:
  """Trains and validates a model as ``config`` says, in ``workdir`` (resuming if it holds a run).

  Args:
    config: a config with the fields of ``base_config`` (presets are applied by
      ``resolve_recipe``), e.g. from ``experiments/configs/*.py``, or a ``Recipe``.
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
  recipe = resolve_recipe(config)
  sharding_lib.initialize_distributed(recipe.cluster._asdict())
  mesh = sharding_lib.create_mesh()
  sharding_lib.check_batch_size(recipe.input.batch_size, mesh)
  check_backend(workdir, what="The work directory")
  workdir = absolute(workdir)
  is_chief = jax.process_index() == 0
  check_workdir(workdir)
  with contextlib.ExitStack() as stack:  # closed in reverse: the lock last
    if is_chief:
      guard = StartGuard(workdir)  # notes the folder before the lock file is made
      stack.enter_context(WorkdirLock(workdir))  # refused: nothing of ours to undo
      stack.enter_context(guard)  # a failed start leaves the folder as it found it
    checkpoints = TrainCheckpointer(workdir, keep=recipe.steps.keep_checkpoints)
    stack.push(_closing(checkpoints.close, after_failure=False))
    run, state, run_key, pipeline = start_run(
      recipe, workdir, mesh, checkpoints, accept_config_changes
    )
    stack.push(_closing(pipeline.close))
    # Every check passed: from here on the run writes.
    if is_chief:
      guard.commit()
    start_step = _begin(run, state, stack)
    with StopRequests() as stop:
      result = _train_loop(run, state, run_key, pipeline, stop)
  result["finished_before"] = start_step >= recipe.steps.total
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


def _begin(run: Run, state: TrainState, stack: contextlib.ExitStack) -> int:
  """The start's writes and lines (``config.json``, the logs' first records); its step.

  Opens ``run.writer`` (closed by ``stack``), after ``metrics.jsonl`` lost the records
  past the resumed step: the file is rewritten, so a writer opened before would write
  into the replaced copy.
  """
  recipe, workdir = run.recipe, run.workdir
  start_step = int(host_scalar(state.step))
  is_chief = jax.process_index() == 0
  if is_chief:
    if start_step:
      truncate_metrics(workdir, start_step)
    config_json = json.loads(recipe.config.to_json_best_effort())
    data.io.write_json(workdir / checkpoint.CONFIG_FILE, config_json)
  run.writer = MetricWriter(workdir, enabled=is_chief)
  stack.push(_closing(run.writer.close))
  run.writer.write_text(0, "config", "```\n" + str(recipe.config) + "\n```")
  run.echo(
    f"Training {recipe.summary} on {run.mesh.devices.size} device(s) "
    f"({jax.process_count()} process(es)) in {workdir}"
  )
  run.echo(
    f"Validation: {run.validation.count} images, {run.validation.protocol}; "
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
  if start_step >= recipe.steps.total:
    run.echo(
      f"The run in {workdir} is already finished (step {start_step} of "
      f"num_train_steps {recipe.steps.total}); validating its weights."
    )
  return start_step


def _check_finite(run: Run, host_metrics: Sequence[tuple[int, dict[str, float]]]) -> None:
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
  run: Run, state: TrainState, step: int, weights: str
) -> dict[str, float]:
  scores, images = run.validation.run(state.eval_params, run.recipe.arch)
  # Every process gathered the same per-image numbers; process 0's mean still decides
  # "best" for all (a mean summed on another CPU model could round apart), so all
  # processes join the same collective save (or none does).
  scores = sharding_lib.from_process_0(scores)
  baseline = run.validation.baseline
  if scores["psnr"] > run.best_psnr:
    run.best_psnr, run.best_step = scores["psnr"], step
    run.checkpoints.save_best(
      step,
      state.params,
      run.recipe.arch,
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


def _save_latest(run: Run, state: TrainState, step: int, run_key: jax.Array, batches) -> None:
  meta = {
    "step": step,
    "pipeline": batches.get_state(),
    "rng_key_data": np.asarray(jax.random.key_data(run_key)).tolist(),
    "best_psnr": run.best_psnr if math.isfinite(run.best_psnr) else None,
    "best_step": run.best_step,
  }
  run.checkpoints.save_latest(
    step, state.params, state.opt_state, run.recipe.arch, meta, ema_params=state.ema_params
  )


def _train_loop(
  run: Run, state: TrainState, run_key: jax.Array, pipeline: Any, stop: StopRequests
) -> dict[str, Any]:
  """The step/log/evaluate/checkpoint loop of ``train_and_evaluate``."""
  from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top

  recipe = run.recipe
  steps, total = recipe.steps, recipe.steps.total
  batches = data.prefetch_to_device(
    pipeline, sharding_lib.batch_sharding(run.mesh), size=max(1, recipe.input.prefetch)
  )
  pending: list[tuple[int, dict[str, jax.Array]]] = []
  last_loss, last_metrics, last_eval, steps_per_sec = math.nan, {}, {}, math.nan
  interval_start, interval_steps, paused = time.perf_counter(), 0, 0.0
  step = int(host_scalar(state.step))
  weights = "ema" if state.ema_decay > 0 else "raw"  # which weights validation measures
  bar = tqdm(
    total=total,
    initial=step,
    unit="step",
    dynamic_ncols=True,
    smoothing=0.1,
    disable=not (jax.process_index() == 0 and recipe.progress_bar),
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
      log_due = _is_due(step, steps.log_every, total)
      eval_due = _is_due(step, steps.eval_every, total)
      checkpoint_due = _is_due(step, steps.checkpoint_every, total)
      if stop.signum is not None:
        log_due = checkpoint_due = True
      if not (log_due or eval_due or checkpoint_due):
        continue
      # Pull the pending metrics to the host only now: the steps in between run ahead.
      host = [(s, {k: host_scalar(v) for k, v in m.items()}) for s, m in pending]
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
            "images_per_sec": steps_per_sec * recipe.input.batch_size,
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
      last_eval, _ = run.validation.run(state.eval_params, recipe.arch, with_samples=False)
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
