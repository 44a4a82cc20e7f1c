"""Training checkpoints in a work directory: the latest N and the best by validation PSNR.

Layout (``cutblur_jax.checkpoint.load_model(workdir)`` reads it, "layout (c)")::

  WORKDIR/checkpoints/latest/<step>/params      parameters (orbax StandardSave)
                                   /arch        architecture dict (JSON)
                                   /opt_state   optax state (StandardSave)
                                   /train_meta  step, run key, input position, best PSNR (JSON)
                                   /ema_params  the weights' moving average (only with EMA on)
  WORKDIR/checkpoints/best/<step>/params, arch, eval (JSON: step, psnr, ssim, ...)
                                 /ema_params  (only with EMA on; what ``load_model`` returns)

Invariants:

* Saves are asynchronous (orbax ``CheckpointManager``): the call returns once
  the arrays are copied off the training buffers, and the files are written in
  the background. Orbax writes a step into a temporary directory and renames
  it when complete, so a process killed mid-save leaves no step behind; the
  temporary directory is removed on the next start (``cleanup_tmp_directories``).
* The arrays handed to orbax are host (NumPy) copies: the train step may donate
  (overwrite) its device state while a save is still being written, and the files
  do not depend on the device topology, so a run saved on one mesh resumes or
  loads on another.
* ``stored_arch`` reads only the small JSON item, so a work directory holding
  another architecture is rejected before anything is compiled.

Examples:
  >>> ckpt = TrainCheckpointer("/tmp/run", keep=2)  # doctest: +SKIP
  >>> ckpt.save_latest(1000, params, opt_state, arch, {"pipeline": {...}})  # doctest: +SKIP
  >>> ckpt.wait(); ckpt.close()  # doctest: +SKIP
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Mapping

import jax
import numpy as np
import orbax.checkpoint as ocp

from cutblur_jax.paths import absolute
from cutblur_jax.checkpoint import (
  ARCH_ITEM,
  BEST_DIR,
  CHECKPOINTS_DIR,
  EMA_ITEM,
  EVAL_ITEM,
  LATEST_DIR,
  OPT_STATE_ITEM,
  PARAMS_ITEM,
  TRAIN_META_ITEM,
  short_cause,
)


class CheckpointWriteError(OSError):
  """A checkpoint save failed (e.g. no space left on the device); names the folder."""


def _write_cause(error: BaseException) -> str:
  """Why a save failed, in words: TensorStore says RESOURCE_EXHAUSTED for a full disk."""
  cause = short_cause(error)
  if isinstance(error, OSError) and error.strerror:
    return error.strerror
  if "RESOURCE_EXHAUSTED" in cause or "No space left" in cause:
    return "No space left on device"
  return cause


def _host_copy(tree: Any) -> Any:
  """NumPy copies of replicated arrays: topology-free on disk, and safe from buffer donation.

  Saved as plain arrays, a checkpoint written by a pod restores on a laptop
  (``checkpoint.load_model``) and vice versa; parameters and optimizer state are
  replicated in data-parallel training, so every process holds the whole value.
  """

  def copy(leaf):
    if isinstance(leaf, jax.Array):
      if not leaf.is_fully_replicated:
        raise ValueError(f"Only replicated arrays are checkpointed here, got {leaf.sharding}.")
      leaf = leaf.addressable_data(0)
    return np.array(leaf, copy=True)

  return jax.tree.map(copy, tree)


def _manager(
  directory: pathlib.Path,
  items: Mapping[str, ocp.CheckpointHandler],
  *,
  keep: int,
  async_save: bool,
  read_only: bool = False,
) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
    max_to_keep=keep,
    # Orbax names its cross-process barriers after the operation only: two managers that
    # save at one step (latest and best) would meet at one barrier from two threads, which
    # the coordination service refuses ("already ongoing") and the other process then hangs
    # in. The folder's name (latest, best) keeps each manager's barriers apart.
    multiprocessing_options=ocp.options.MultiprocessingOptions(
      barrier_sync_key_prefix=directory.name
    ),
    create=not read_only,
    cleanup_tmp_directories=not read_only,
    enable_async_checkpointing=async_save,
    read_only=read_only,
  )
  return ocp.CheckpointManager(directory, options=options, item_handlers=dict(items))


def _latest_items() -> dict[str, ocp.CheckpointHandler]:
  return {
    PARAMS_ITEM: ocp.StandardCheckpointHandler(),
    ARCH_ITEM: ocp.JsonCheckpointHandler(),
    OPT_STATE_ITEM: ocp.StandardCheckpointHandler(),
    TRAIN_META_ITEM: ocp.JsonCheckpointHandler(),
    EMA_ITEM: ocp.StandardCheckpointHandler(),
  }


def _best_items() -> dict[str, ocp.CheckpointHandler]:
  return {
    PARAMS_ITEM: ocp.StandardCheckpointHandler(),
    ARCH_ITEM: ocp.JsonCheckpointHandler(),
    EVAL_ITEM: ocp.JsonCheckpointHandler(),
    EMA_ITEM: ocp.StandardCheckpointHandler(),
  }


class TrainCheckpointer:
  """The ``latest`` and ``best`` checkpoint managers of one work directory.

  Args:
    workdir: the run's work directory.
    keep: how many ``latest`` steps to keep (``best`` keeps one).
    async_save: write in a background thread.
  """

  def __init__(self, workdir: str | os.PathLike, *, keep: int = 2, async_save: bool = True):
    root = absolute(workdir) / CHECKPOINTS_DIR
    self.directory = root
    self.latest = _manager(root / LATEST_DIR, _latest_items(), keep=keep, async_save=async_save)
    self.best = _manager(root / BEST_DIR, _best_items(), keep=1, async_save=async_save)
    self._damaged: set[int] = set()  # latest steps that did not restore: saved over
    self._saving: dict[str, int] = {}  # manager directory -> step of its save in flight

  # -- reading -------------------------------------------------------------------------

  def latest_step(self) -> int | None:
    """The newest complete ``latest`` step, or None."""
    return self.latest.latest_step()

  def stored_arch(self) -> dict[str, Any] | None:
    """The architecture stored in the work directory (latest, else best), or None."""
    for manager in (self.latest, self.best):
      for step in sorted(manager.all_steps(), reverse=True):
        try:
          restored = manager.restore(
            step, args=ocp.args.Composite(**{ARCH_ITEM: ocp.args.JsonRestore()})
          )
        except Exception:  # pylint: disable=broad-except  # a damaged step: try an older one
          continue
        return dict(restored[ARCH_ITEM])
    return None

  def best_eval(self) -> dict[str, Any] | None:
    """The ``eval`` record of the best checkpoint (with ``step`` and ``psnr``), or None."""
    step = self.best.latest_step()
    if step is None:
      return None
    restored = self.best.restore(
      step, args=ocp.args.Composite(**{EVAL_ITEM: ocp.args.JsonRestore()})
    )
    return dict(restored[EVAL_ITEM])

  def restore_latest(
    self, abstract_params: Any, abstract_opt_state: Any, step: int | None = None
  ) -> tuple[Any, Any, dict[str, Any]]:
    """Restores ``(params, opt_state, train_meta)`` of ``step`` (default: the newest).

    Args:
      abstract_params, abstract_opt_state: trees of ``jax.ShapeDtypeStruct``
        with shardings (e.g. from ``jax.eval_shape``) that the arrays are
        restored into.
      step: the step to restore.
    """
    step = self.latest.latest_step() if step is None else step
    if step is None:
      raise ValueError(f"No checkpoint to restore in {self.directory / LATEST_DIR}.")
    restored = self.latest.restore(
      step,
      args=ocp.args.Composite(
        **{
          PARAMS_ITEM: ocp.args.StandardRestore(abstract_params),
          OPT_STATE_ITEM: ocp.args.StandardRestore(abstract_opt_state),
          TRAIN_META_ITEM: ocp.args.JsonRestore(),
        }
      ),
    )
    return restored[PARAMS_ITEM], restored[OPT_STATE_ITEM], dict(restored[TRAIN_META_ITEM])

  def restore_newest(
    self, abstract_params: Any, abstract_opt_state: Any, *, ema: bool = False, warn=print
  ) -> tuple[int, Any, Any, dict, Any] | None:
    """The newest ``latest`` step that restores: ``(step, params, opt_state, meta, ema)``.

    A damaged step (missing array chunks, truncated metadata) is reported with one
    ``warn`` line and the next older kept step is tried. None when there is no step.

    Raises:
      ValueError: every kept step is damaged (naming the folder).
    """
    steps = sorted(self.latest.all_steps(), reverse=True)
    for step in steps:
      try:
        params, opt_state, meta = self.restore_latest(abstract_params, abstract_opt_state, step)
        ema_params = self.restore_ema(abstract_params, step) if ema else None
      except Exception as error:  # pylint: disable=broad-except  # orbax raises many types
        self._damaged.add(step)
        warn(
          f"warning: checkpoint step {step} in {self.directory / LATEST_DIR} is damaged "
          f"({short_cause(error)}); trying the previous one (step {step} will be saved "
          "again when the run gets there)."
        )
        continue
      return step, params, opt_state, meta, ema_params
    if steps:
      raise ValueError(
        f"Every checkpoint in {self.directory / LATEST_DIR} (steps "
        f"{sorted(steps)}) is damaged; use a new --workdir."
      )
    return None

  def check_for_errors(self) -> None:
    """Raises ``CheckpointWriteError`` if a background save failed; never waits for one.

    Not ``CheckpointManager.check_for_errors``: that takes the error from under orbax's
    finalize thread, which then finalizes the failed step as if it were written and deletes
    the step it replaces (``best`` keeps one: the best checkpoint would be lost). A save
    that is over is waited for instead, which returns at once or raises its error.
    """
    if not self._saving:  # called after every train step: nothing in flight, nothing to do
      return
    for manager in (self.latest, self.best):
      if str(manager.directory) in self._saving and not manager.is_saving_in_progress():
        self._finish(manager)

  def _finish(self, manager: ocp.CheckpointManager) -> None:
    """Waits for ``manager``'s save in flight; its failure names that save's step."""
    step = self._saving.pop(str(manager.directory), None)
    if step is None:
      return
    try:
      manager.wait_until_finished()
    except Exception as error:  # pylint: disable=broad-except  # orbax re-raises the cause
      raise CheckpointWriteError(
        f"Saving step {step} in {manager.directory} failed: {_write_cause(error)}"
      ) from error

  def _on_both_managers(self, method: str) -> None:
    """Calls ``method`` of both managers; a failed save becomes ``CheckpointWriteError``."""
    for manager in (self.latest, self.best):
      self._finish(manager)  # a failed save in flight is named by its step
      try:
        getattr(manager, method)()
      except Exception as error:  # pylint: disable=broad-except  # orbax re-raises the cause
        raise CheckpointWriteError(
          f"Saving a checkpoint in {manager.directory} failed: {_write_cause(error)}"
        ) from error

  def restore_ema(self, abstract_params: Any, step: int) -> Any | None:
    """The EMA weights saved with ``latest`` step ``step``, or None if it has none."""
    if not (self.latest.directory / str(step) / EMA_ITEM).is_dir():
      return None
    restored = self.latest.restore(
      step, args=ocp.args.Composite(**{EMA_ITEM: ocp.args.StandardRestore(abstract_params)})
    )
    return restored[EMA_ITEM]

  # -- writing -------------------------------------------------------------------------

  def save_latest(
    self,
    step: int,
    params: Any,
    opt_state: Any,
    arch: Mapping[str, Any],
    train_meta: Mapping[str, Any],
    *,
    ema_params: Any = None,
  ) -> None:
    """Saves the training state of ``step`` (asynchronously); drops the oldest beyond ``keep``."""
    self.check_for_errors()
    if step in self._damaged:
      self.latest.delete(step)
      self._damaged.discard(step)
    elif step in self.latest.all_steps():
      return
    items = {
      PARAMS_ITEM: ocp.args.StandardSave(_host_copy(params)),
      ARCH_ITEM: ocp.args.JsonSave(dict(arch)),
      OPT_STATE_ITEM: ocp.args.StandardSave(_host_copy(opt_state)),
      TRAIN_META_ITEM: ocp.args.JsonSave(dict(train_meta)),
    }
    if ema_params is not None:
      items[EMA_ITEM] = ocp.args.StandardSave(_host_copy(ema_params))
    self._save(self.latest, step, items)

  def save_best(
    self,
    step: int,
    params: Any,
    arch: Mapping[str, Any],
    eval_record: Mapping[str, Any],
    *,
    ema_params: Any = None,
  ) -> None:
    """Saves the parameters of ``step`` (and their EMA) as the best, replacing the previous."""
    self.check_for_errors()
    if step in self.best.all_steps():
      return
    items = {
      PARAMS_ITEM: ocp.args.StandardSave(_host_copy(params)),
      ARCH_ITEM: ocp.args.JsonSave(dict(arch)),
      EVAL_ITEM: ocp.args.JsonSave(dict(eval_record)),
    }
    if ema_params is not None:
      items[EMA_ITEM] = ocp.args.StandardSave(_host_copy(ema_params))
    self._save(self.best, step, items)

  def _save(self, manager: ocp.CheckpointManager, step: int, items: Mapping[str, Any]) -> None:
    self._finish(manager)  # the previous save's failure is reported as that step's
    try:
      manager.save(int(step), args=ocp.args.Composite(**items), force=True)
    except Exception as error:  # pylint: disable=broad-except  # orbax and tensorstore raise many
      raise CheckpointWriteError(
        f"Saving step {step} in {manager.directory} failed: {_write_cause(error)}"
      ) from error
    self._saving[str(manager.directory)] = int(step)

  def wait(self) -> None:
    """Blocks until every pending save is on disk.

    Raises:
      CheckpointWriteError: a save failed.
    """
    self._on_both_managers("wait_until_finished")

  def close(self) -> None:
    """Waits for pending saves and releases the managers.

    Raises:
      CheckpointWriteError: a pending save failed (both managers are closed all the same).
    """
    try:
      self._on_both_managers("close")
    finally:
      for manager in (self.latest, self.best):
        try:
          manager.close()  # again, if the first one's close raised: a no-op once closed
        except Exception:  # pylint: disable=broad-except  # reported by the call above
          pass

  def __enter__(self) -> "TrainCheckpointer":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()
