"""CutBlur, the paper's augmentation, and (new) soft CutBlur: HR and LR pasted into each other.

See ``cutblur_jax.augment.ops`` for each op's draws and the invariants all ops keep.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp

from cutblur_jax.augment import _checks, _common, _sampling
from cutblur_jax.augment.boxes import BOX_WORDS, Box, box_from_bits


class CutBlurParams(NamedTuple):
  """Draws of ``cutblur``: ``applied`` bool [B], ``box``, ``inside`` bool [B] (True: HR
  pasted into the LR box; False: LR kept in the box and HR pasted around it)."""

  applied: jax.Array
  box: Box
  inside: jax.Array


class SoftCutBlurParams(NamedTuple):
  """Draws of ``soft_cutblur``: as ``CutBlurParams`` plus the blend weight ``v`` float32 [B]."""

  applied: jax.Array
  box: Box
  inside: jax.Array
  v: jax.Array


# ----------------------------------------------------------------------------- cutblur


def sample_cutblur_params(
  key: jax.Array,
  shape: Sequence[int],
  *,
  prob: float = 1.0,
  alpha: float = 0.7,
  per_sample: bool = False,
) -> CutBlurParams:
  """Draws ``cutblur``'s gate, box and side (a fair coin).

  Args:
    key: a JAX PRNG key.
    shape: the images' shape ``(N, H, W, C)``.
    prob: probability of applying the op.
    alpha: mean box side ratio; ``alpha <= 0`` disables the op, past 1 the box is clamped.
    per_sample: one draw per image instead of per batch.

  Returns:
    ``CutBlurParams``.
  """
  shape = _checks.check_shape(shape, op="cutblur")
  _checks.check_prob(prob, "prob", op="cutblur")
  _checks.check_alpha(alpha, "alpha", op="cutblur")
  return _draw_cutblur(key, shape=shape, per_sample=bool(per_sample), prob=prob, alpha=alpha)


@_common.draws
def _draw_cutblur(key, *, shape, prob, alpha, per_sample):
  (words,) = _common.words(key, shape, per_sample, 2 + BOX_WORDS)
  return CutBlurParams(
    applied=_common.gate(words[..., 0], prob, jnp.asarray(alpha) > 0),
    box=box_from_bits(words[..., 1 : 1 + BOX_WORDS], shape[1], shape[2], alpha=alpha),
    inside=_sampling.unit(words[..., 1 + BOX_WORDS]) < 0.5,
  )


def apply_cutblur(
  params: CutBlurParams, hr: jax.Array, lr: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """Pastes HR into LR inside the box (``inside``) or around it; hr is returned unchanged."""
  hr, lr = _checks.check_images(hr, lr, op="apply_cutblur")
  return _apply_cutblur(params, hr, lr)


def _apply_cutblur(
  params: CutBlurParams, hr: jax.Array, lr: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """``apply_cutblur`` without the image checks: for callers that made them."""
  region = _common.region(params.box, params.inside, params.applied, hr.shape)
  return hr, jnp.where(region, _common.rows(hr), _common.rows(lr)).reshape(lr.shape)


def cutblur(
  key: jax.Array, hr: jax.Array, lr: jax.Array, *, prob: float = 1.0, alpha: float = 0.7
) -> tuple[jax.Array, jax.Array]:
  """CutBlur: pastes an HR box into LR, or LR's box into HR (the paper's augmentation).

  Teaches the network where to super-resolve and where not to. The box side
  ratio is ``N(alpha, 0.01^2)`` (clamped to the image where the reference would
  crash); with probability 1/2 LR gets HR inside the box, otherwise LR gets HR
  outside it. hr is never changed.

  Args:
    key: a JAX PRNG key.
    hr: ``[N, H, W, C]`` float batch in [0, 255].
    lr: LR batch of the same shape and dtype (upsampled to HR size).
    prob: probability of applying the op.
    alpha: mean box side ratio; ``alpha <= 0`` is the identity.

  Returns:
    ``(hr, lr)`` of the input shape and dtype.

  Examples:
    >>> hr = jnp.full((2, 8, 8, 3), 200.0); lr = jnp.zeros((2, 8, 8, 3))
    >>> hr2, lr2 = cutblur(jax.random.key(0), hr, lr)
    >>> bool(jnp.all(hr2 == hr)), sorted(set(lr2.ravel().tolist()))
    (True, [0.0, 200.0])
  """
  hr, lr = _checks.check_images(hr, lr, op="cutblur")
  return _apply_cutblur(sample_cutblur_params(key, hr.shape, prob=prob, alpha=alpha), hr, lr)


# ----------------------------------------------------------------------------- soft cutblur


def sample_soft_cutblur_params(
  key: jax.Array,
  shape: Sequence[int],
  *,
  prob: float = 1.0,
  alpha: float = 0.7,
  mix_alpha: float = 1.2,
  per_sample: bool = False,
) -> SoftCutBlurParams:
  """Draws ``soft_cutblur``'s gate, box, side and ``v ~ Beta(mix_alpha, mix_alpha)``.

  Args:
    key: a JAX PRNG key.
    shape: the images' shape ``(N, H, W, C)``.
    prob: probability of applying the op.
    alpha: mean box side ratio; ``alpha <= 0`` disables the op.
    mix_alpha: the Beta parameter of the blend weight; ``<= 0`` gives ``v = 1``
      (a hard paste, i.e. CutBlur).
    per_sample: one draw per image instead of per batch.

  Returns:
    ``SoftCutBlurParams``.
  """
  shape = _checks.check_shape(shape, op="soft_cutblur")
  _checks.check_prob(prob, "prob", op="soft_cutblur")
  _checks.check_alpha(alpha, "alpha", op="soft_cutblur")
  _checks.check_alpha(mix_alpha, "mix_alpha", op="soft_cutblur")
  return _draw_soft_cutblur(
    key, shape=shape, per_sample=bool(per_sample), prob=prob, alpha=alpha, mix_alpha=mix_alpha
  )


@_common.draws
def _draw_soft_cutblur(key, *, shape, prob, alpha, mix_alpha, per_sample):
  (words,) = _common.words(key, shape, per_sample, 2 + BOX_WORDS + _sampling.BETA_WORDS)
  v = jnp.where(
    jnp.asarray(mix_alpha) > 0, _common.beta(words[..., 2 + BOX_WORDS :], mix_alpha), 1.0
  )
  return SoftCutBlurParams(
    applied=_common.gate(words[..., 0], prob, jnp.asarray(alpha) > 0),
    box=box_from_bits(words[..., 1 : 1 + BOX_WORDS], shape[1], shape[2], alpha=alpha),
    inside=_sampling.unit(words[..., 1 + BOX_WORDS]) < 0.5,
    v=v.astype(jnp.float32),
  )


def apply_soft_cutblur(
  params: SoftCutBlurParams, hr: jax.Array, lr: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """Blends HR into LR, ``lr <- v * hr + (1 - v) * lr``, inside the box or around it."""
  hr, lr = _checks.check_images(hr, lr, op="apply_soft_cutblur")
  return _apply_soft_cutblur(params, hr, lr)


def _apply_soft_cutblur(
  params: SoftCutBlurParams, hr: jax.Array, lr: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """``apply_soft_cutblur`` without the image checks: for callers that made them."""
  region = _common.region(params.box, params.inside, params.applied, hr.shape)
  hr_rows, lr_rows = _common.rows(hr), _common.rows(lr)
  return hr, jnp.where(region, _common.mix(params.v, hr_rows, lr_rows), lr_rows).reshape(lr.shape)


def soft_cutblur(
  key: jax.Array,
  hr: jax.Array,
  lr: jax.Array,
  *,
  prob: float = 1.0,
  alpha: float = 0.7,
  mix_alpha: float = 1.2,
) -> tuple[jax.Array, jax.Array]:
  """Soft CutBlur (new): CutBlur whose pasted region blends HR and LR instead of replacing.

  The box and side are drawn as in ``cutblur``; the region LR would take from
  HR becomes ``v * hr + (1 - v) * lr`` with ``v ~ Beta(mix_alpha, mix_alpha)``,
  giving partially restored regions for restoration tasks (``v = 1`` is CutBlur).

  Args:
    key: a JAX PRNG key.
    hr: ``[N, H, W, C]`` float batch in [0, 255].
    lr: LR batch of the same shape and dtype.
    prob: probability of applying the op.
    alpha: mean box side ratio; ``alpha <= 0`` is the identity.
    mix_alpha: Beta parameter of the blend weight ``v`` (in a ``Policy``: ``aux_alpha``).

  Returns:
    ``(hr, lr)`` of the input shape and dtype; hr unchanged.

  Examples:
    >>> hr = jnp.full((2, 8, 8, 3), 200.0); lr = jnp.zeros((2, 8, 8, 3))
    >>> _, lr2 = soft_cutblur(jax.random.key(0), hr, lr)
    >>> bool(jnp.all((lr2 >= 0) & (lr2 <= 200)))
    True
  """
  hr, lr = _checks.check_images(hr, lr, op="soft_cutblur")
  params = sample_soft_cutblur_params(key, hr.shape, prob=prob, alpha=alpha, mix_alpha=mix_alpha)
  return _apply_soft_cutblur(params, hr, lr)
