"""Helpers the augmentation ops share: their draws, gates, mixes and box regions."""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp

from cutblur_jax.augment import _sampling
from cutblur_jax.augment.boxes import Box, box_row_mask


def words(
  key: jax.Array, shape: Sequence[int], per_sample: bool, count: int, *extra: tuple[int, ...]
) -> list[jax.Array]:
  """All random words of a sampler, from one call: ``[B, count]`` then ``extra`` blocks."""
  batch_shape = (shape[0],) if per_sample else ()
  return _sampling.split_bits(key, [batch_shape + (count,), *extra])


def gate(bits: jax.Array, prob: Any, enabled: Any = True) -> jax.Array:
  """``u < prob`` for ``u ~ U[0, 1)``, and'ed with ``enabled`` (e.g. ``alpha > 0``)."""
  return jnp.logical_and(_sampling.unit(bits) < prob, enabled)


def beta(bits: jax.Array, alpha: Any) -> jax.Array:
  """``Beta(alpha, alpha)``; a parameter of 1 stands in where ``alpha <= 0`` (op disabled)."""
  return _sampling.beta(bits, jnp.where(jnp.asarray(alpha) > 0, alpha, 1.0))


def per_image(value: jax.Array, ndim: int = 4) -> jax.Array:
  """Reshapes a ``()`` or ``[N]`` param to broadcast against ``ndim``-D images."""
  value = jnp.asarray(value)
  return value if value.ndim == 0 else value.reshape((-1,) + (1,) * (ndim - 1))


def mix(v: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
  """``v * a + (1 - v) * b`` in float32 or wider, cast back to ``a.dtype``."""
  compute = jnp.promote_types(a.dtype, jnp.float32)
  v = per_image(v, a.ndim).astype(compute)
  return (v * a.astype(compute) + (1 - v) * b.astype(compute)).astype(a.dtype)


def take_partner(x: jax.Array, partner: jax.Array) -> jax.Array:
  return jnp.take(x, partner, axis=0)


def rows(x: jax.Array) -> jax.Array:
  """The ``[N, H, W * C]`` view the box ops select on (see ``boxes.box_row_mask``)."""
  n, h, w, c = x.shape
  return x.reshape(n, h, w * c)


def region(box: Box, inside: jax.Array, applied: jax.Array, shape: Sequence[int]):
  """The pixels an op writes, on the rows view: the box or its complement, where applied."""
  in_box = box_row_mask(box, shape[1], shape[2], shape[3])
  return per_image(applied, 3) & jnp.where(per_image(inside, 3), in_box, ~in_box)


def draws(fn):
  """Compiles a sampler's draws as one computation (``shape`` and ``per_sample`` static).

  Options stay traced, so one compilation serves every prob and alpha, and an
  eager call runs one compiled program instead of a hundred small ones.
  """
  return jax.jit(fn, static_argnames=("shape", "per_sample"))
