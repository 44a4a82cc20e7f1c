"""Random draws for the samplers: one ``jax.random.bits`` call per op, then transforms.

Why not one ``jax.random`` call per draw: on CPU every ``jax.random`` call
compiles its own threefry loop (~70 ms of XLA compile each) and
``jax.random.beta`` compiles two rejection ``while`` loops (~1.5 s), so a MoA
policy built that way took over 10 s to compile. Each sampler here asks for all
of its random 32-bit words at once (``split_bits``) and turns them into the
draws it needs with the loop-free transforms below; the distributions are the
same (tested with KS and chi-square tests in ``tests/test_augment_sampling.py``).

Transforms (``b`` are uniform uint32 words):

* ``unit(b)``: ``U[0, 1)`` on the 2^-24 grid, ``open_unit(b)``: ``U(0, 1)``
  on the odd multiples of 2^-24 (2^23 values, symmetric about 1/2, exact in
  float32: a grid shifted by half a step would need 25 significant bits near 1
  and round the top word up to exactly 1).
* ``normal(b)``: ``sqrt(2) erfinv(2 u - 1)`` with ``u = open_unit(b)`` (the
  inverse CDF; ``2 u - 1`` is exact, so draws are finite and symmetric; as
  ``jax.random.normal``, tails end near 5.4 sigma).
* ``randint(b, m)``: ``floor(u * m)`` on ``{0, ..., m - 1}``; each value's
  probability is within ``m / 2^24`` (relative) of ``1 / m``.
* ``permutation(b)``: ``argsort`` of ``N`` words: uniform up to ties, which
  have probability below ``N^2 / 2^33``.
* ``sparse_bernoulli(b, p, size)``: ``size`` i.i.d. ``Bernoulli(p)`` flags
  from one word per *set* flag: the gaps between set flags of a Bernoulli
  process are i.i.d. geometric, ``floor(log(u) / log(1 - p)) + 1``, so their
  cumulative sums are the positions. For cutout's ``p = 0.001`` over a
  16 x 192 x 192 batch that is ~900 words instead of 590k (threefry on CPU
  costs about 3 ms per million words). The number of flags is capped at
  ``sparse_bernoulli_capacity(size, p) = ceil(size p + 10 sqrt(size p) + 30)``,
  which a Bernoulli(p) field exceeds with probability below 1e-18 (Chernoff),
  far below the resolution of the uniforms themselves.
* ``beta(b, a)``: ``Beta(a, a)`` as ``G1 / (G1 + G2)`` with ``G ~ Gamma(a)``,
  computed in log space. Each gamma is Marsaglia and Tsang's method for shape
  ``a + 1`` (acceptance at least 95%) with ``GAMMA_PROPOSALS`` proposals
  evaluated at once, boosted by ``U^(1/a)``; if all proposals are rejected
  (probability below 0.05^8 = 4e-11) the proposal ``v = 1`` is used. The two
  boosts ``log(U) / a`` are subtracted before dividing by ``a``, so a tiny
  ``a`` gives a clean 0 or 1 (each with probability 1/2, the limit) instead of
  ``-inf - -inf = NaN``. As for any float32 sampler, draws within 6e-8 of 1
  round to 1 (for ``a = 0.05``, 22% of them).
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from jax import lax

GAMMA_PROPOSALS = 8
#: Words one ``Beta`` draw uses: two gammas of ``2 * GAMMA_PROPOSALS + 1`` words.
BETA_WORDS = 2 * (2 * GAMMA_PROPOSALS + 1)
_STEP = 2.0**-24


def split_bits(key: jax.Array, shapes: Sequence[tuple[int, ...]]) -> list[jax.Array]:
  """Uniform uint32 words of the given shapes, from one ``jax.random.bits`` call."""
  sizes = [math.prod(shape) for shape in shapes]
  total = sum(sizes)
  # An even count: jax's threefry is ~20x slower on an odd-length 1-D request (jax 0.10, CPU).
  flat = jax.random.bits(key, (total + total % 2,), jnp.uint32)
  blocks, start = [], 0
  for shape, size in zip(shapes, sizes):
    blocks.append(flat[start : start + size].reshape(shape))
    start += size
  return blocks


def unit(bits: jax.Array) -> jax.Array:
  """``U[0, 1)`` float32 on the 2^-24 grid."""
  return (bits >> 8).astype(jnp.float32) * _STEP


def open_unit(bits: jax.Array) -> jax.Array:
  """``U(0, 1)`` float32 on the odd multiples of 2^-24 (never 0 or 1)."""
  return ((bits >> 8) | 1).astype(jnp.float32) * _STEP


def normal(bits: jax.Array) -> jax.Array:
  """Standard normal float32 by the inverse CDF."""
  return math.sqrt(2.0) * lax.erf_inv(2.0 * open_unit(bits) - 1.0)


def randint(bits: jax.Array, maxval: jax.Array) -> jax.Array:
  """Uniform int32 on ``{0, ..., maxval - 1}`` (``maxval >= 1``, broadcast against ``bits``)."""
  m = jnp.asarray(maxval).astype(jnp.float32)
  return jnp.minimum(jnp.floor(unit(bits) * m), m - 1).astype(jnp.int32)


def permutation(bits: jax.Array) -> jax.Array:
  """A uniformly random permutation of ``range(len(bits))`` (int32)."""
  return jnp.argsort(bits).astype(jnp.int32)


def _log_gamma_parts(bits: jax.Array, a: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``(log Gamma(a + 1), log U)`` draws from ``[..., 2 * GAMMA_PROPOSALS + 1]`` words.

  ``log Gamma(a) = log Gamma(a + 1) + log(U) / a`` (Gamma(a) = Gamma(a + 1) U^(1/a)).
  """
  k = GAMMA_PROPOSALS
  d = a + (1.0 - 1.0 / 3.0)  # Marsaglia-Tsang for shape a + 1 >= 1
  c = lax.rsqrt(9.0 * d)
  x = normal(bits[..., :k])
  u = open_unit(bits[..., k : 2 * k])
  v = (1.0 + c * x) ** 3
  positive = v > 0
  log_v = jnp.log(jnp.where(positive, v, 1.0))
  accept = positive & (jnp.log(u) < 0.5 * x * x + d - d * v + d * log_v)
  chosen = jnp.zeros(bits.shape[:-1], jnp.float32)  # fallback v = 1, p < 4e-11
  for i in range(k - 1, -1, -1):  # the first accepted proposal
    chosen = jnp.where(accept[..., i], log_v[..., i], chosen)
  return jnp.log(d) + chosen, jnp.log(open_unit(bits[..., 2 * k]))


def _log_gamma(bits: jax.Array, a: jax.Array) -> jax.Array:
  """``log Gamma(a)`` draws from ``[..., 2 * GAMMA_PROPOSALS + 1]`` words."""
  log_gamma_plus_one, log_u = _log_gamma_parts(bits, a)
  return log_gamma_plus_one + log_u / a


def _beta_logit(bits: jax.Array, a: jax.Array) -> jax.Array:
  """``log(G1 / G2)`` for ``G1, G2 ~ Gamma(a)``: the logit of a ``Beta(a, a)`` draw."""
  a = jnp.maximum(jnp.asarray(a, jnp.float32), jnp.finfo(jnp.float32).tiny)
  half = BETA_WORDS // 2
  log_g1, log_u1 = _log_gamma_parts(bits[..., :half], a)
  log_g2, log_u2 = _log_gamma_parts(bits[..., half:], a)
  # Boosts subtracted first: log(U) / a alone overflows to -inf for a tiny a (module docstring).
  return (log_g1 - log_g2) + (log_u1 - log_u2) / a


def beta(bits: jax.Array, a: jax.Array) -> jax.Array:
  """``Beta(a, a)`` float32 draws from ``[..., BETA_WORDS]`` words (``a > 0``)."""
  return jax.nn.sigmoid(_beta_logit(bits, a))


def sparse_bernoulli_capacity(size: int, p) -> int | None:
  """Words ``sparse_bernoulli`` needs for ``size`` flags, or None where dense is cheaper.

  None also for a traced ``p`` (the capacity must be static) and for ``p <= 0``
  or ``p >= 1``.
  """
  try:
    p = float(p)
  except (TypeError, jax.errors.ConcretizationTypeError):
    return None
  if not 0.0 < p < 1.0:
    return None
  mean = size * p
  capacity = math.ceil(mean + 10.0 * math.sqrt(mean) + 30.0)
  # Dense wins past ~1/8 of the flags; positions are int32 sums of gaps clipped to size + 1.
  if capacity > size // 8 or capacity * (size + 1) >= 2**31:
    return None
  return capacity


def sparse_bernoulli(bits: jax.Array, p, size: int) -> jax.Array:
  """``size`` i.i.d. ``Bernoulli(p)`` bools from ``[capacity]`` words (see module docstring)."""
  log_q = jnp.log1p(-jnp.asarray(p, jnp.float32))  # log(1 - p) < 0
  gaps = jnp.floor(jnp.log(open_unit(bits)) / log_q) + 1.0
  gaps = jnp.minimum(gaps, size + 1.0).astype(jnp.int32)  # clip: positions stay in int32
  positions = jnp.cumsum(gaps) - 1
  # Positions increase strictly, so no two updates collide; those past the end are dropped.
  return jnp.zeros((size,), bool).at[positions].set(True, mode="drop")
