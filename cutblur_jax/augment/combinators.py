"""Combinators that build new ops from ops, in the spirit of ``optax.chain``.

An *op* is any function ``op(key, hr, lr) -> (hr, lr)`` or ``(hr, lr, mask)``
on ``[N, H, W, C]`` float batches of one shape and dtype: the built-in ops
(``cutblur``, ``functools.partial(mixup, alpha=0.4)``, ...), a ``Policy``, a
combinator, or your own function. Combinators return ops that always give
``(hr, lr, mask)`` with ``mask`` ``[N, H, W, 1]`` of the image dtype, so they
nest freely and still trace into one XLA graph:

* ``one_of(ops, weights)``: draws one op, ``i ~ Categorical(weights)``, and
  runs only that one (``lax.switch``). MoA is ``one_of`` over the seven ops.
* ``chain(*ops)``: runs the ops in order, each on the previous one's output,
  each with its own key (``jax.random.split(key, len(ops))``). The masks
  multiply: a pixel any op dropped stays out of the loss. Later ops do not
  move earlier masks (e.g. CutMix after cutout keeps cutout's mask in place).

Combinators are frozen dataclasses: equal combinators hash equally, so they can
be fields of a static ``Policy``. ``one_of`` runs through the same dispatcher as
``apply_augment`` (``augment.dispatch.select_one``): ``one_of(ops, weights)`` and
``Policy(ops, [1.0] * len(ops), ..., mix_p=weights)`` give the same output for one key.

Examples:
  >>> import functools
  >>> from cutblur_jax import augment
  >>> op = augment.chain(augment.rgb, augment.one_of(
  ...     [augment.cutblur, functools.partial(augment.mixup, alpha=0.4)], weights=[3, 1]))
  >>> hr = jnp.full((2, 8, 8, 3), 100.0)
  >>> hr2, lr2, mask = jax.jit(op)(jax.random.key(0), hr, hr / 2)
  >>> mask.shape
  (2, 8, 8, 1)
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from cutblur_jax.augment import _checks
from cutblur_jax.augment.dispatch import normalize_output, op_name, select_one

Op = Callable[..., tuple]


def _check_ops(ops: Any, name: str) -> tuple[Op, ...]:
  if (
    callable(ops) or isinstance(ops, (str, bytes)) or not isinstance(ops, collections.abc.Sequence)
  ):
    raise TypeError(f"{name}: `ops` must be a sequence of callables, got {ops!r}.")
  ops = tuple(ops)
  if not ops:
    raise ValueError(f"{name}: `ops` must hold at least one op.")
  for op in ops:
    if not callable(op):
      raise TypeError(
        f"{name}: every op must be a callable (key, hr, lr) -> (hr, lr[, mask]), got {op!r}."
      )
    try:
      hash(op)
    except TypeError as error:
      raise TypeError(f"{name}: every op must be hashable, got {op!r}.") from error
  return ops


@dataclasses.dataclass(frozen=True)
class Chain:
  """Runs ``ops`` in sequence (build it with ``chain``)."""

  ops: tuple[Op, ...]

  def __call__(self, key: jax.Array, hr: jax.Array, lr: jax.Array):
    hr, lr = _checks.check_images(hr, lr, op="chain")
    mask = jnp.ones(hr.shape[:3] + (1,), hr.dtype)
    keys = jax.random.split(key, len(self.ops))
    for op_key, op in zip(keys, self.ops):
      hr, lr, op_mask = normalize_output(op(op_key, hr, lr), hr, lr, name=op_name(op))
      mask = mask * op_mask
    return hr, lr, mask


@dataclasses.dataclass(frozen=True)
class OneOf:
  """Runs one of ``ops``, drawn with ``probs`` (build it with ``one_of``)."""

  ops: tuple[Op, ...]
  probs: tuple[float, ...]

  def __call__(self, key: jax.Array, hr: jax.Array, lr: jax.Array):
    hr, lr = _checks.check_images(hr, lr, op="one_of")

    def branch(op, op_key, hr, lr):
      return normalize_output(op(op_key, hr, lr), hr, lr, name=op_name(op))

    branches = [functools.partial(branch, op) for op in self.ops]
    return select_one(key, branches, self.probs, hr, lr)[:3]


def chain(*ops: Op) -> Chain:
  """An op that applies ``ops`` one after the other.

  Args:
    *ops: ops ``(key, hr, lr) -> (hr, lr)`` or ``(hr, lr, mask)``.

  Returns:
    A ``Chain``: ``chain(...)(key, hr, lr) -> (hr, lr, mask)``, the masks multiplied.

  Examples:
    >>> from cutblur_jax import augment
    >>> op = chain(augment.rgb, augment.cutout, augment.cutblur)
    >>> hr, lr, mask = op(jax.random.key(0), jnp.ones((2, 8, 8, 3)), jnp.zeros((2, 8, 8, 3)))
    >>> mask.shape
    (2, 8, 8, 1)
  """
  return Chain(_check_ops(ops, "chain"))


def one_of(ops: Sequence[Op], weights: Sequence[float] | None = None) -> OneOf:
  """An op that runs one of ``ops``, drawn at random; only the drawn one is computed.

  Args:
    ops: ops ``(key, hr, lr) -> (hr, lr)`` or ``(hr, lr, mask)``.
    weights: non-negative relative weights (normalised to sum 1), or None for uniform.

  Returns:
    A ``OneOf``: ``one_of(...)(key, hr, lr) -> (hr, lr, mask)``.

  Examples:
    >>> from cutblur_jax import augment
    >>> op = one_of([augment.cutblur, augment.mixup], weights=[0.7, 0.3])
    >>> hr, lr, mask = op(jax.random.key(0), jnp.ones((2, 8, 8, 3)), jnp.zeros((2, 8, 8, 3)))
    >>> float(mask.min())
    1.0
  """
  ops = _check_ops(ops, "one_of")
  if weights is None:
    probs = (1.0 / len(ops),) * len(ops)
  else:
    if isinstance(weights, (str, bytes)) or not hasattr(weights, "__len__"):
      raise ValueError(f"one_of: `weights` must be a sequence of numbers, got {weights!r}.")
    if len(weights) != len(ops):
      raise ValueError(
        f"one_of: `weights` must have one weight per op ({len(ops)}), got {len(weights)}."
      )
    try:
      values = tuple(float(w) for w in weights)
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError) as error:
      raise TypeError(f"one_of: `weights` must be Python numbers, got {weights!r}.") from error
    if any(not math.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
      raise ValueError(
        f"one_of: `weights` must be non-negative with a positive sum, got {values!r}."
      )
    probs = tuple(w / sum(values) for w in values)
  return OneOf(ops, probs)
