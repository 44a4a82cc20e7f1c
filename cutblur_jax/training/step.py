"""The train step: augmentation, model, loss and optax update fused into one XLA program.

``train_step(state, batch, key)`` is jitted with the state donated:

  uint8 patches -> random h-flip / v-flip / transpose per sample (the reference's
  ``utils.flip_and_rotate``) -> float32 -> LR nearest-upsampled to HR size ->
  ``augment.apply_augment`` with the state's policy (MoA picks one augmentation
  per batch inside the graph) -> model -> L1 loss on ``SR * mask`` and
  ``HR * mask`` (the cutout mask, all ones otherwise; ``solver.py``) -> gradient
  -> optional clip by value (``gclip``) -> Adam with the reference's multi-step
  decay -> new state (and, with ``ema_decay > 0``, the moving average of the
  parameters, updated in the same program).

Invariants:

* The step's randomness is ``jax.random.fold_in(key, state.step)``: a run is a pure
  function of its seed and data, and a resumed run continues the same stream.
* No host callback is in the step: flips, augmentations and the loss are XLA ops.
* Sharding: the batch is split over the mesh's ``"data"`` axis and the state is
  replicated; jit inserts the gradient all-reduce (``cutblur_jax.sharding``).
"""

from __future__ import annotations

import functools
from typing import Mapping

import jax
import jax.numpy as jnp
import optax

from cutblur_jax import augment
from cutblur_jax.image import upsample_nearest
from cutblur_jax.training.optimizer import learning_rate_schedule
from cutblur_jax.training.state import TrainState

__all__ = ["train_step"]


def _prepare_inputs(
  key: jax.Array, batch: Mapping[str, jax.Array], flip_and_rotate: bool
) -> tuple[jax.Array, jax.Array]:
  hr, lr = batch["hr"], batch["lr"]
  if (
    hr.shape[1] % lr.shape[1]
    or hr.shape[2] % lr.shape[2]
    or hr.shape[1] // lr.shape[1] != hr.shape[2] // lr.shape[2]
  ):
    raise ValueError(f"HR {hr.shape} must be an integer multiple of LR {lr.shape}.")
  if flip_and_rotate:
    # On uint8: flips commute with nearest upsampling.
    hr, lr = augment.random_flip_and_rotate(key, hr, lr)
  hr = hr.astype(jnp.float32)
  lr = upsample_nearest(lr.astype(jnp.float32), hr.shape[1] // lr.shape[1])
  return hr, lr


@functools.partial(jax.jit, donate_argnums=0)
def train_step(
  state: TrainState, batch: Mapping[str, jax.Array], key: jax.Array
) -> tuple[TrainState, dict[str, jax.Array]]:
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
    policy's augmentation drawn this step; the first image's with ``per_sample``).

  Examples:
    >>> state, metrics = train_step(state, next(batches), run_key)  # doctest: +SKIP
  """
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
    # A per-sample policy draws one op per image: log the first image's.
    "aug_index": jnp.reshape(jnp.asarray(aug_index, jnp.int32), (-1,))[0],
  }
  return state.replace(
    step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema_params
  ), metrics
