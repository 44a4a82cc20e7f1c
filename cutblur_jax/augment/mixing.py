"""Whole-image mixing ops: blend, rgb, mixup and (new) degradation mixup.

See ``cutblur_jax.augment.ops`` for each op's draws and the invariants all ops keep.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from cutblur_jax.augment import _checks, _common, _sampling


class BlendParams(NamedTuple):
  """Draws of ``blend``: ``applied`` bool [B], ``v`` float32 [B], ``colour`` float32 [N, C]."""

  applied: jax.Array
  v: jax.Array
  colour: jax.Array


class RGBParams(NamedTuple):
  """Draws of ``rgb``: ``applied`` bool [B], ``perm`` int32 [B, 3] (output channel j = input
  channel ``perm[j]``)."""

  applied: jax.Array
  perm: jax.Array


class MixupParams(NamedTuple):
  """Draws of ``mixup``: ``applied`` bool [B], ``v`` float32 [B], ``partner`` int32 [N]."""

  applied: jax.Array
  v: jax.Array
  partner: jax.Array


class DegradationMixupParams(NamedTuple):
  """Draws of ``degradation_mixup``: ``applied`` bool [B], ``v`` float32 [B]."""

  applied: jax.Array
  v: jax.Array


# ----------------------------------------------------------------------------- blend


def sample_blend_params(
  key: jax.Array,
  shape: Sequence[int],
  *,
  prob: float = 1.0,
  alpha: float = 0.6,
  per_sample: bool = False,
) -> BlendParams:
  """Draws ``blend``'s gate, ``v ~ U(alpha, 1)`` and colours ``c ~ U(0, 255)`` [N, C].

  Args:
    key: a JAX PRNG key.
    shape: the images' shape ``(N, H, W, C)``.
    prob: probability of applying the op.
    alpha: lower end of ``v``'s range, at most 1; ``alpha <= 0`` disables the op.
    per_sample: one ``v`` and gate per image instead of per batch.

  Returns:
    ``BlendParams``.
  """
  shape = _checks.check_shape(shape, op="blend")
  _checks.check_prob(prob, "prob", op="blend")
  _checks.check_alpha(alpha, "alpha", op="blend", upper=1.0)
  return _draw_blend(key, shape=shape, per_sample=bool(per_sample), prob=prob, alpha=alpha)


@_common.draws
def _draw_blend(key, *, shape, prob, alpha, per_sample):
  n, c = shape[0], shape[3]
  words, colour_words = _common.words(key, shape, per_sample, 2, (n, c))
  v = alpha + (1.0 - alpha) * _sampling.unit(words[..., 1])
  return BlendParams(
    applied=_common.gate(words[..., 0], prob, jnp.asarray(alpha) > 0),
    v=v.astype(jnp.float32),
    colour=255.0 * _sampling.unit(colour_words),
  )


def apply_blend(params: BlendParams, hr: jax.Array, lr: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Blends hr and lr with one flat colour per image: ``x <- v * x + (1 - v) * c``."""
  hr, lr = _checks.check_images(hr, lr, op="apply_blend")
  return _apply_blend(params, hr, lr)


def _apply_blend(params: BlendParams, hr: jax.Array, lr: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``apply_blend`` without the image checks: for callers that made them."""
  n, c = hr.shape[0], hr.shape[-1]
  colour = jnp.asarray(params.colour).reshape(n, 1, 1, c)
  applied = _common.per_image(params.applied)
  return tuple(jnp.where(applied, _common.mix(params.v, x, colour), x) for x in (hr, lr))


def blend(
  key: jax.Array, hr: jax.Array, lr: jax.Array, *, prob: float = 1.0, alpha: float = 0.6
) -> tuple[jax.Array, jax.Array]:
  """Blend: mixes hr and lr with the same random flat colour (the reference's ``blend``).

  Args:
    key: a JAX PRNG key.
    hr: ``[N, H, W, C]`` float batch in [0, 255].
    lr: LR batch of the same shape and dtype (upsampled to HR size).
    prob: probability of applying the op.
    alpha: ``v ~ U(alpha, 1)`` weights the image, ``1 - v`` the colour; at most 1,
      ``alpha <= 0`` is the identity.

  Returns:
    ``(hr, lr)`` of the input shape and dtype.

  Examples:
    >>> hr = jnp.full((2, 8, 8, 3), 100.0); lr = jnp.full((2, 8, 8, 3), 50.0)
    >>> hr2, lr2 = blend(jax.random.key(0), hr, lr)
    >>> hr2.shape, hr2.dtype
    ((2, 8, 8, 3), dtype('float32'))
  """
  hr, lr = _checks.check_images(hr, lr, op="blend")
  return _apply_blend(sample_blend_params(key, hr.shape, prob=prob, alpha=alpha), hr, lr)


# ----------------------------------------------------------------------------- rgb


def _check_rgb_channels(channels: int, name: str, op: str) -> None:
  if channels != 3:
    raise ValueError(f"{op}: `{name}` must have 3 channels to permute them, got {channels}.")


# The 3! channel orders; a uniform index into this table is a uniform permutation.
_RGB_PERMUTATIONS = np.array(list(itertools.permutations(range(3))), np.int32)


def sample_rgb_params(
  key: jax.Array, shape: Sequence[int], *, prob: float = 1.0, per_sample: bool = False
) -> RGBParams:
  """Draws ``rgb``'s gate and a uniformly random permutation of the 3 channels.

  Args:
    key: a JAX PRNG key.
    shape: the images' shape ``(N, H, W, 3)``.
    prob: probability of applying the op.
    per_sample: one permutation and gate per image instead of per batch.

  Returns:
    ``RGBParams`` with ``perm`` int32 ``[3]`` (or ``[N, 3]``).
  """
  shape = _checks.check_shape(shape, op="rgb")
  _check_rgb_channels(shape[3], "shape", "rgb")
  _checks.check_prob(prob, "prob", op="rgb")
  return _draw_rgb(key, shape=shape, per_sample=bool(per_sample), prob=prob)


@_common.draws
def _draw_rgb(key, *, shape, prob, per_sample):
  (words,) = _common.words(key, shape, per_sample, 2)
  perm = jnp.asarray(_RGB_PERMUTATIONS)[_sampling.randint(words[..., 1], 6)]
  return RGBParams(applied=_common.gate(words[..., 0], prob), perm=perm)


def _permute_channels(x: jax.Array, perm: jax.Array) -> jax.Array:
  """``x[..., perm]`` as a select over broadcast channel slices.

  No gather and no concatenate: each output element picks one of its pixel's
  channels, so XLA emits a single elementwise pass (a gather or a stack of
  channel slices measured 2-4x slower on CPU).
  """
  channels = x.shape[-1]
  source = jnp.asarray(perm).reshape(-1, 1, 1, channels)  # [1 or N, 1, 1, C]
  picked = x[..., channels - 1 :]
  for i in range(channels - 2, -1, -1):
    picked = jnp.where(source == i, x[..., i : i + 1], picked)
  return picked


def apply_rgb(params: RGBParams, hr: jax.Array, lr: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Permutes the channels of hr and lr: output channel ``j`` is input channel ``perm[j]``."""
  hr, lr = _checks.check_images(hr, lr, op="apply_rgb")
  return _apply_rgb(params, hr, lr)


def _apply_rgb(params: RGBParams, hr: jax.Array, lr: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``apply_rgb`` without the image checks: for callers that made them."""
  _check_rgb_channels(hr.shape[-1], "hr", "apply_rgb")
  perm = jnp.asarray(params.perm)
  applied = _common.per_image(params.applied)
  return tuple(jnp.where(applied, _permute_channels(x, perm), x) for x in (hr, lr))


def rgb(
  key: jax.Array, hr: jax.Array, lr: jax.Array, *, prob: float = 1.0
) -> tuple[jax.Array, jax.Array]:
  """RGB permutation: the same random channel order for hr and lr (the reference's ``rgb``).

  Args:
    key: a JAX PRNG key.
    hr: ``[N, H, W, 3]`` float batch in [0, 255].
    lr: LR batch of the same shape and dtype.
    prob: probability of applying the op.

  Returns:
    ``(hr, lr)`` of the input shape and dtype.

  Examples:
    >>> hr = jnp.broadcast_to(jnp.arange(3.0), (2, 8, 8, 3))
    >>> hr2, _ = rgb(jax.random.key(0), hr, hr)
    >>> sorted(hr2[0, 0, 0].tolist())
    [0.0, 1.0, 2.0]
  """
  hr, lr = _checks.check_images(hr, lr, op="rgb")
  _check_rgb_channels(hr.shape[-1], "hr", "rgb")
  return _apply_rgb(sample_rgb_params(key, hr.shape, prob=prob), hr, lr)


# ----------------------------------------------------------------------------- mixup


def sample_mixup_params(
  key: jax.Array,
  shape: Sequence[int],
  *,
  prob: float = 1.0,
  alpha: float = 1.2,
  per_sample: bool = False,
) -> MixupParams:
  """Draws ``mixup``'s gate, ``v ~ Beta(alpha, alpha)`` and a partner permutation.

  Args:
    key: a JAX PRNG key.
    shape: the images' shape ``(N, H, W, C)``.
    prob: probability of applying the op.
    alpha: the Beta parameter; ``alpha <= 0`` disables the op.
    per_sample: one ``v`` and gate per image (the partner permutation stays shared).

  Returns:
    ``MixupParams``.
  """
  shape = _checks.check_shape(shape, op="mixup")
  _checks.check_prob(prob, "prob", op="mixup")
  _checks.check_alpha(alpha, "alpha", op="mixup")
  return _draw_mixup(key, shape=shape, per_sample=bool(per_sample), prob=prob, alpha=alpha)


@_common.draws
def _draw_mixup(key, *, shape, prob, alpha, per_sample):
  n = shape[0]
  words, partner_words = _common.words(key, shape, per_sample, 1 + _sampling.BETA_WORDS, (n,))
  return MixupParams(
    applied=_common.gate(words[..., 0], prob, jnp.asarray(alpha) > 0),
    v=_common.beta(words[..., 1:], alpha),
    partner=_sampling.permutation(partner_words),
  )


def apply_mixup(params: MixupParams, hr: jax.Array, lr: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mixes each pair with its partner: ``x <- v * x + (1 - v) * x[partner]``."""
  hr, lr = _checks.check_images(hr, lr, op="apply_mixup")
  return _apply_mixup(params, hr, lr)


def _apply_mixup(params: MixupParams, hr: jax.Array, lr: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``apply_mixup`` without the image checks: for callers that made them."""
  applied = _common.per_image(params.applied)
  return tuple(
    jnp.where(applied, _common.mix(params.v, x, _common.take_partner(x, params.partner)), x)
    for x in (hr, lr)
  )


def mixup(
  key: jax.Array, hr: jax.Array, lr: jax.Array, *, prob: float = 1.0, alpha: float = 1.2
) -> tuple[jax.Array, jax.Array]:
  """Mixup of whole (hr, lr) pairs with a random partner from the batch.

  Args:
    key: a JAX PRNG key.
    hr: ``[N, H, W, C]`` float batch in [0, 255].
    lr: LR batch of the same shape and dtype.
    prob: probability of applying the op.
    alpha: ``v ~ Beta(alpha, alpha)``; ``alpha <= 0`` is the identity.

  Returns:
    ``(hr, lr)`` of the input shape and dtype.

  Examples:
    >>> hr = jnp.arange(2.0).reshape(2, 1, 1, 1) * jnp.ones((2, 8, 8, 3))
    >>> hr2, _ = mixup(jax.random.key(0), hr, hr)
    >>> bool(jnp.allclose(hr2.sum(0), hr.sum(0)))  # mixing a pair conserves the sum
    True
  """
  hr, lr = _checks.check_images(hr, lr, op="mixup")
  return _apply_mixup(sample_mixup_params(key, hr.shape, prob=prob, alpha=alpha), hr, lr)


# ----------------------------------------------------------------------------- degradation mixup


def sample_degradation_mixup_params(
  key: jax.Array,
  shape: Sequence[int],
  *,
  prob: float = 1.0,
  alpha: float = 1.0,
  per_sample: bool = False,
) -> DegradationMixupParams:
  """Draws ``degradation_mixup``'s gate and ``v ~ Beta(alpha, alpha)``.

  Args:
    key: a JAX PRNG key.
    shape: the images' shape ``(N, H, W, C)``.
    prob: probability of applying the op.
    alpha: the Beta parameter (1: ``v`` uniform on [0, 1]); ``<= 0`` disables the op.
    per_sample: one ``v`` and gate per image instead of per batch.

  Returns:
    ``DegradationMixupParams``.
  """
  shape = _checks.check_shape(shape, op="degradation_mixup")
  _checks.check_prob(prob, "prob", op="degradation_mixup")
  _checks.check_alpha(alpha, "alpha", op="degradation_mixup")
  return _draw_degradation_mixup(
    key, shape=shape, per_sample=bool(per_sample), prob=prob, alpha=alpha
  )


@_common.draws
def _draw_degradation_mixup(key, *, shape, prob, alpha, per_sample):
  (words,) = _common.words(key, shape, per_sample, 1 + _sampling.BETA_WORDS)
  return DegradationMixupParams(
    applied=_common.gate(words[..., 0], prob, jnp.asarray(alpha) > 0),
    v=_common.beta(words[..., 1:], alpha),
  )


def apply_degradation_mixup(
  params: DegradationMixupParams, hr: jax.Array, lr: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """Weakens the degradation: ``lr <- v * lr + (1 - v) * hr``; hr unchanged."""
  hr, lr = _checks.check_images(hr, lr, op="apply_degradation_mixup")
  return _apply_degradation_mixup(params, hr, lr)


def _apply_degradation_mixup(
  params: DegradationMixupParams, hr: jax.Array, lr: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """``apply_degradation_mixup`` without the image checks: for callers that made them."""
  return hr, jnp.where(_common.per_image(params.applied), _common.mix(params.v, lr, hr), lr)


def degradation_mixup(
  key: jax.Array, hr: jax.Array, lr: jax.Array, *, prob: float = 1.0, alpha: float = 1.0
) -> tuple[jax.Array, jax.Array]:
  """Degradation mixup (new): mixes LR toward HR to vary the degradation strength.

  ``lr <- v * lr + (1 - v) * hr`` over the whole image with ``v ~ Beta(alpha,
  alpha)``. For additive degradations (noise) this scales the degradation by
  ``v``: a model trained at one noise level sees the whole range below it.

  Args:
    key: a JAX PRNG key.
    hr: ``[N, H, W, C]`` float batch in [0, 255].
    lr: degraded batch of the same shape and dtype.
    prob: probability of applying the op.
    alpha: Beta parameter of ``v``; ``alpha <= 0`` is the identity.

  Returns:
    ``(hr, lr)`` of the input shape and dtype; hr unchanged.

  Examples:
    >>> hr = jnp.full((2, 8, 8, 3), 100.0); lr = jnp.zeros((2, 8, 8, 3))
    >>> _, lr2 = degradation_mixup(jax.random.key(0), hr, lr)
    >>> bool(jnp.all((lr2 >= 0) & (lr2 <= 100)))
    True
  """
  hr, lr = _checks.check_images(hr, lr, op="degradation_mixup")
  params = sample_degradation_mixup_params(key, hr.shape, prob=prob, alpha=alpha)
  return _apply_degradation_mixup(params, hr, lr)
