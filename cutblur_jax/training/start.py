"""The start of a training run: every check and every read, in order, before any write.

``start_run`` checks the work directory's stored architecture and config against the
``Recipe``, builds the data (every check on images and patches happens here, before
anything compiles) and the validation baseline, and creates the train state: fresh,
fine-tuned from ``pretrain``, or resumed from the newest ``latest`` step that restores
(parameters, optimizer, EMA, run key and input position). It writes nothing, so a failed
start leaves the work directory as it was (``training.workdir.StartGuard``).
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cutblur_jax import checkpoint, data
from cutblur_jax import sharding as sharding_lib
from cutblur_jax.data.pipeline import TrainPipeline
from cutblur_jax.training.checkpoints import TrainCheckpointer
from cutblur_jax.training.logs import MetricWriter
from cutblur_jax.training.recipe import Recipe
from cutblur_jax.training.state import (
  TrainState,
  _create_train_state,
  abstract_train_state,
  frozen_arch,
  initial_params,
)
from cutblur_jax.training.validation import Validation, process_share
from cutblur_jax.training.workdir import config_changes, run_seed

__all__ = ["Run", "host_scalar", "start_run"]


def host_scalar(value: jax.Array) -> float:
  if isinstance(value, jax.Array) and not value.is_fully_addressable:
    value = value.addressable_data(0)
  return np.asarray(value).item()


@dataclasses.dataclass
class Run:
  """What one training run holds while it loops."""

  recipe: Recipe
  workdir: pathlib.Path
  mesh: jax.sharding.Mesh
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
    if self.recipe.progress_bar:
      from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top

      tqdm.write(message)
    else:  # a pod's non-interactive log shows the start lines too
      print(message, flush=True)

  def warn(self, message: str) -> None:
    """A one-line warning on process 0, on stderr whatever the progress bar."""
    if jax.process_index() == 0:
      print(message, file=sys.stderr, flush=True)


def _state(recipe: Recipe, **fields: Any) -> TrainState:
  """A ``TrainState`` with the recipe's static fields."""
  return TrainState(
    arch=frozen_arch(recipe.arch),
    optimizer=recipe.optimizer,
    policy=recipe.policy,
    flip_and_rotate=recipe.flip_and_rotate,
    dtype=recipe.dtype,
    ema_decay=recipe.ema_decay,
    **fields,
  )


def _restore_state(run: Run, pipeline: TrainPipeline) -> tuple[TrainState, jax.Array]:
  """The newest restorable ``latest`` step's state and run key; moves ``pipeline`` there."""
  recipe, mesh = run.recipe, run.mesh
  abstract_params, abstract_opt_state = abstract_train_state(recipe.arch, recipe.optimizer, mesh)
  step, params, opt_state, meta, ema_params = run.checkpoints.restore_newest(
    abstract_params, abstract_opt_state, ema=recipe.ema_decay > 0, warn=run.warn
  )
  run_key = jax.random.wrap_key_data(np.asarray(meta["rng_key_data"], np.uint32))
  pipeline.set_state(meta["pipeline"])  # refuses another batch size, before any write
  if recipe.ema_decay > 0 and ema_params is None:
    ema_params = jax.tree.map(jnp.copy, params)
    run.echo(f"Step {step} has no EMA weights: the average starts from its parameters.")
  step = sharding_lib.replicate(np.int32(meta["step"]), mesh)
  state = _state(recipe, step=step, params=params, opt_state=opt_state, ema_params=ema_params)
  return state, run_key


def _fresh_state(run: Run, init_key: jax.Array, pretrained: Any) -> TrainState:
  recipe = run.recipe
  params = None
  if pretrained is not None:
    # Layers whose shapes differ (head/tail of another scale) keep their fresh initialisation.
    fresh = sharding_lib.to_local(initial_params(init_key, recipe.arch, run.mesh))
    params = checkpoint.merge_pretrained(jax.device_get(fresh), pretrained)
    run.echo(f"Fine-tuning from {recipe.pretrain}")
  return _create_train_state(  # the recipe's values are checked: no second check
    init_key,
    recipe.arch,
    optimizer=recipe.optimizer,
    policy=recipe.policy,
    flip_and_rotate=recipe.flip_and_rotate,
    dtype=recipe.dtype,
    params=params,
    mesh=run.mesh,
    ema_decay=recipe.ema_decay,
    ema_params=None,
  )


def _pipeline(recipe: Recipe, train_set: Any) -> TrainPipeline:
  return TrainPipeline(
    train_set,
    patch_size=recipe.input.patch_size,
    batch_size=recipe.input.batch_size,
    scale=train_set.scale,
    seed=recipe.seed,
    num_workers=recipe.input.num_workers,
    source=recipe.input.data_source,
    cache_dir=recipe.input.data_cache_dir or None,
    worker_processes=recipe.input.worker_processes,
  )


def start_run(
  recipe: Recipe,
  workdir: pathlib.Path,
  mesh: jax.sharding.Mesh,
  checkpoints: TrainCheckpointer,
  accept_config_changes: bool,
) -> tuple[Run, TrainState, jax.Array, TrainPipeline]:
  """Every check and every read of a start, in order; writes nothing.

  Returns ``(run, state, run_key, pipeline)``; ``run.recipe`` holds the resumed run's seed.
  """
  stored_arch = checkpoints.stored_arch()
  if stored_arch is not None:
    differences = checkpoint.arch_differences(stored_arch, recipe.arch)
    if differences:
      raise ValueError(
        f"Work directory {workdir} holds a checkpoint of another architecture ("
        f"{'; '.join(differences)}); use a new --workdir or the same model "
        "settings."
      )
  resuming = checkpoints.latest_step() is not None
  changes = config_changes(workdir, recipe.config) if resuming else {}
  if changes and not accept_config_changes:
    listed = "; ".join(f"{name}: run {old!r}, now {new!r}" for name, (old, new) in changes.items())
    raise ValueError(
      f"Work directory {workdir} holds a run with another config ({listed}); "
      "resume it with its own values, use a new --workdir, or accept the change "
      "with --accept_config_changes (recorded in metrics.jsonl)."
    )
  pretrained = None
  if recipe.pretrain and not resuming:
    pretrained = checkpoint.load_pretrained(recipe.pretrain, recipe.arch)
  # Data: every check on images and patches happens here, before anything compiles.
  train_set = data.create_dataset(recipe.data, "train")
  train_set = data.first_images(train_set, recipe.input.num_train_images)
  valid_set = data.create_dataset(recipe.valid_data, "validation")
  pipeline = _pipeline(recipe, train_set)
  try:
    # Each process reads and measures only its share of the validation images.
    valid_set = data.first_images(valid_set, recipe.input.num_eval_images)
    share = process_share(len(valid_set), jax.process_index(), jax.process_count())
    valid_pairs = data.load_pairs(valid_set, num_workers=recipe.input.num_workers, indices=share)
    validation = Validation.measure_baseline(
      valid_pairs, recipe.protocol, count=len(valid_set), num_samples=recipe.input.num_sample_images
    )
    init_key, run_key = jax.random.split(jax.random.key(recipe.seed))
    note = None
    if resuming:
      seed, note = run_seed(workdir, recipe.seed)
      recipe = recipe.with_seed(seed) if seed != recipe.seed else recipe
    run = Run(recipe, workdir, mesh, checkpoints, validation, changes=changes)
    if note:
      run.warn(f"warning: {note}")
    if resuming:
      state, run_key = _restore_state(run, pipeline)
    else:
      state = _fresh_state(run, init_key, pretrained)
  except BaseException:
    pipeline.close()
    raise
  return run, state, run_key, pipeline
