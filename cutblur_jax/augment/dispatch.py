"""The one dispatcher: run one of several ops, drawn at random, inside one XLA program.

``select_one(key, branches, probs, hr, lr)`` is what both ``apply_augment`` (a
``Policy`` in batch mode) and ``one_of`` run. It splits ``key`` into
``len(branches) + 1`` keys, draws ``i ~ Categorical(probs)`` (uniform when None) with
``keys[0]`` and runs branch ``i`` on ``keys[1 + i]`` through ``lax.switch``, so only the
drawn op is computed. ``normalize_output`` brings every op's result to ``(hr, lr, mask)``
so that ops of either kind can be branches of one switch.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["Output", "draw_index", "normalize_output", "op_name", "select_one"]

# What every branch returns: (hr, lr, mask), mask [N, H, W, 1] of the image dtype.
Output = tuple[jax.Array, jax.Array, jax.Array]
Branch = Callable[[jax.Array, jax.Array, jax.Array], Output]


def normalize_output(output: Any, hr: jax.Array, lr: jax.Array, *, name: str) -> Output:
  """Brings an op's ``(hr, lr)`` or ``(hr, lr, mask)`` to ``(hr, lr, mask)``.

  The mask becomes ``[N, H, W, 1]`` of the image dtype (all ones when the op
  returned none), so ops can be branches of one ``lax.switch``.

  Raises:
    TypeError: the op returned something else, or changed a shape or dtype.
  """
  if not isinstance(output, (tuple, list)) or len(output) not in (2, 3):
    raise TypeError(f"{name} must return (hr, lr) or (hr, lr, mask), got {type(output)}.")
  new_hr, new_lr = output[0], output[1]
  for arg, new, old in (("hr", new_hr, hr), ("lr", new_lr, lr)):
    if getattr(new, "shape", None) != old.shape or getattr(new, "dtype", None) != old.dtype:
      raise TypeError(
        f"{name} must return `{arg}` with its input shape and dtype "
        f"{old.shape} {old.dtype}, got {getattr(new, 'shape', None)} "
        f"{getattr(new, 'dtype', None)}."
      )
  mask_shape = hr.shape[:3] + (1,)
  if len(output) == 2 or output[2] is None:
    mask = jnp.ones(mask_shape, hr.dtype)
  else:
    mask = jnp.asarray(output[2])
    try:
      mask = jnp.broadcast_to(mask, mask_shape).astype(hr.dtype)
    except ValueError as error:
      raise TypeError(
        f"{name} returned a mask of shape {mask.shape}, which does not broadcast to {mask_shape}."
      ) from error
  return new_hr, new_lr, mask


def op_name(op: Any) -> str:
  """A name for an op (a built-in's name, a function's ``__name__``, or its repr) in errors."""
  return op if isinstance(op, str) else getattr(op, "__name__", None) or repr(op)


def draw_index(
  key: jax.Array, mix_p: Sequence[float] | None, count: int, shape: tuple[int, ...] = ()
) -> jax.Array:
  """int32 ``i ~ Categorical(mix_p)`` (uniform when None) over ``count`` ops, of ``shape``."""
  if count == 1:
    return jnp.zeros(shape, jnp.int32)
  if mix_p is None:
    logits = jnp.zeros((count,), jnp.float32)
  else:
    with np.errstate(divide="ignore"):
      logits = jnp.asarray(np.log(np.asarray(mix_p, np.float64)), jnp.float32)
  return jax.random.categorical(key, logits, shape=shape).astype(jnp.int32)


def select_one(
  key: jax.Array,
  branches: Sequence[Branch],
  probs: Sequence[float] | None,
  hr: jax.Array,
  lr: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """Runs one of ``branches`` (``(key, hr, lr) -> (hr, lr, mask)``), drawn with ``probs``.

  Returns:
    ``(hr, lr, mask, index)``; ``index`` is the int32 scalar position of the drawn branch.
  """
  keys = jax.random.split(key, len(branches) + 1)
  index = draw_index(keys[0], probs, len(branches))
  if len(branches) == 1:
    return (*branches[0](keys[1], hr, lr), index)

  def run(i, op_keys, hr, lr):
    return branches[i](op_keys[i], hr, lr)

  cases = [functools.partial(run, i) for i in range(len(branches))]
  return (*lax.switch(index, cases, keys[1:], hr, lr), index)
