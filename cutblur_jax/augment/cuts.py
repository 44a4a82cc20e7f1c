"""Region ops that paste another image's pixels: CutMix and CutMixup.

CutBlur, which pastes between HR and LR, is in ``cutblur_jax.augment.cutblur_ops``; the
cutouts, which erase LR pixels, in ``cutblur_jax.augment.cutouts``. See
``cutblur_jax.augment.ops`` for each op's draws and the invariants all ops keep.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp

from cutblur_jax.augment import _checks, _common, _sampling
from cutblur_jax.augment.boxes import BOX_WORDS, Box, box_from_bits, box_row_mask


class CutMixParams(NamedTuple):
  """Draws of ``cutmix``: ``applied`` bool [B], ``box``, ``partner`` int32 [N]."""

  applied: jax.Array
  box: Box
  partner: jax.Array


class CutMixupParams(NamedTuple):
  """Draws of ``cutmixup``.

  ``applied`` (the CutMix gate) bool [B], ``box``, ``partner`` int32 [N],
  ``mixup_applied`` bool [B], ``v`` float32 [B], ``inside`` bool [B] (True:
  the mixed image fills the box; False: it fills the outside).
  """

  applied: jax.Array
  box: Box
  partner: jax.Array
  mixup_applied: jax.Array
  v: jax.Array
  inside: jax.Array


# ----------------------------------------------------------------------------- cutmix


def sample_cutmix_params(
  key: jax.Array,
  shape: Sequence[int],
  *,
  prob: float = 1.0,
  alpha: float = 0.7,
  per_sample: bool = False,
) -> CutMixParams:
  """Draws ``cutmix``'s gate, box (``boxes.sample_box``) and partner permutation.

  Args:
    key: a JAX PRNG key.
    shape: the images' shape ``(N, H, W, C)``.
    prob: probability of applying the op.
    alpha: mean box side ratio; ``alpha <= 0`` disables the op, past 1 the box is clamped.
    per_sample: one box and gate per image (the partner permutation stays shared).

  Returns:
    ``CutMixParams``.
  """
  shape = _checks.check_shape(shape, op="cutmix")
  _checks.check_prob(prob, "prob", op="cutmix")
  _checks.check_alpha(alpha, "alpha", op="cutmix")
  return _draw_cutmix(key, shape=shape, per_sample=bool(per_sample), prob=prob, alpha=alpha)


@_common.draws
def _draw_cutmix(key, *, shape, prob, alpha, per_sample):
  n = shape[0]
  words, partner_words = _common.words(key, shape, per_sample, 1 + BOX_WORDS, (n,))
  return CutMixParams(
    applied=_common.gate(words[..., 0], prob, jnp.asarray(alpha) > 0),
    box=box_from_bits(words[..., 1:], shape[1], shape[2], alpha=alpha),
    partner=_sampling.permutation(partner_words),
  )


def apply_cutmix(params: CutMixParams, hr: jax.Array, lr: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Pastes the partner's box at the same place in hr and lr."""
  hr, lr = _checks.check_images(hr, lr, op="apply_cutmix")
  return _apply_cutmix(params, hr, lr)


def _apply_cutmix(
  params: CutMixParams, hr: jax.Array, lr: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """``apply_cutmix`` without the image checks: for callers that made them."""
  region = _common.per_image(params.applied, 3) & box_row_mask(params.box, *hr.shape[1:])
  return tuple(
    jnp.where(
      region, _common.take_partner(_common.rows(x), params.partner), _common.rows(x)
    ).reshape(x.shape)
    for x in (hr, lr)
  )


def cutmix(
  key: jax.Array, hr: jax.Array, lr: jax.Array, *, prob: float = 1.0, alpha: float = 0.7
) -> tuple[jax.Array, jax.Array]:
  """CutMix: pastes a box of a random partner into each (hr, lr) pair, at the same place.

  The reference scales the box by ``HR size // LR size``; ``solver.py`` upsamples
  LR to HR size before ``apply_augment``, so that scale is always 1 there and
  the box is the same in hr and lr, as here.

  Args:
    key: a JAX PRNG key.
    hr: ``[N, H, W, C]`` float batch in [0, 255].
    lr: LR batch of the same shape and dtype.
    prob: probability of applying the op.
    alpha: box side ratio ``~ N(alpha, 0.01^2)``; ``alpha <= 0`` is the identity.

  Returns:
    ``(hr, lr)`` of the input shape and dtype.

  Examples:
    >>> hr = jnp.arange(2.0).reshape(2, 1, 1, 1) * jnp.ones((2, 8, 8, 3))
    >>> hr2, lr2 = cutmix(jax.random.key(0), hr, hr)
    >>> bool(jnp.all(hr2 == lr2))
    True
  """
  hr, lr = _checks.check_images(hr, lr, op="cutmix")
  return _apply_cutmix(sample_cutmix_params(key, hr.shape, prob=prob, alpha=alpha), hr, lr)


# ----------------------------------------------------------------------------- cutmixup


def sample_cutmixup_params(
  key: jax.Array,
  shape: Sequence[int],
  *,
  mixup_prob: float = 1.0,
  mixup_alpha: float = 1.2,
  cutmix_prob: float = 1.0,
  cutmix_alpha: float = 0.7,
  per_sample: bool = False,
) -> CutMixupParams:
  """Draws ``cutmixup``'s CutMix gate, box, partner, mixup gate, ``v`` and side.

  Args:
    key: a JAX PRNG key.
    shape: the images' shape ``(N, H, W, C)``.
    mixup_prob: probability of mixing the partner in (otherwise it is pasted as is).
    mixup_alpha: ``v ~ Beta(mixup_alpha, mixup_alpha)``; ``<= 0`` pastes the partner.
    cutmix_prob: probability of applying the op at all.
    cutmix_alpha: mean box side ratio; ``<= 0`` disables the op.
    per_sample: one draw per image (the partner permutation stays shared).

  Returns:
    ``CutMixupParams``.
  """
  shape = _checks.check_shape(shape, op="cutmixup")
  _checks.check_prob(mixup_prob, "mixup_prob", op="cutmixup")
  _checks.check_alpha(mixup_alpha, "mixup_alpha", op="cutmixup")
  _checks.check_prob(cutmix_prob, "cutmix_prob", op="cutmixup")
  _checks.check_alpha(cutmix_alpha, "cutmix_alpha", op="cutmixup")
  return _draw_cutmixup(
    key,
    shape=shape,
    per_sample=bool(per_sample),
    mixup_prob=mixup_prob,
    mixup_alpha=mixup_alpha,
    cutmix_prob=cutmix_prob,
    cutmix_alpha=cutmix_alpha,
  )


@_common.draws
def _draw_cutmixup(key, *, shape, mixup_prob, mixup_alpha, cutmix_prob, cutmix_alpha, per_sample):
  n = shape[0]
  count = 3 + BOX_WORDS + _sampling.BETA_WORDS
  words, partner_words = _common.words(key, shape, per_sample, count, (n,))
  return CutMixupParams(
    applied=_common.gate(words[..., 0], cutmix_prob, jnp.asarray(cutmix_alpha) > 0),
    box=box_from_bits(words[..., 1 : 1 + BOX_WORDS], shape[1], shape[2], alpha=cutmix_alpha),
    partner=_sampling.permutation(partner_words),
    mixup_applied=_common.gate(words[..., 1 + BOX_WORDS], mixup_prob, jnp.asarray(mixup_alpha) > 0),
    v=_common.beta(words[..., 3 + BOX_WORDS :], mixup_alpha),
    inside=_sampling.unit(words[..., 2 + BOX_WORDS]) < 0.5,
  )


def apply_cutmixup(
  params: CutMixupParams, hr: jax.Array, lr: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """Mixes the partner in (or pastes it) inside the box or outside it, in hr and lr alike."""
  hr, lr = _checks.check_images(hr, lr, op="apply_cutmixup")
  return _apply_cutmixup(params, hr, lr)


def _apply_cutmixup(
  params: CutMixupParams, hr: jax.Array, lr: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """``apply_cutmixup`` without the image checks: for callers that made them."""
  region = _common.region(params.box, params.inside, params.applied, hr.shape)
  mixup_applied = _common.per_image(params.mixup_applied, 3)
  outputs = []
  for x in (hr, lr):
    rows = _common.rows(x)
    other = _common.take_partner(rows, params.partner)
    mixed = jnp.where(mixup_applied, _common.mix(params.v, rows, other), other)
    outputs.append(jnp.where(region, mixed, rows).reshape(x.shape))
  return tuple(outputs)


def cutmixup(
  key: jax.Array,
  hr: jax.Array,
  lr: jax.Array,
  *,
  mixup_prob: float = 1.0,
  mixup_alpha: float = 1.2,
  cutmix_prob: float = 1.0,
  cutmix_alpha: float = 0.7,
) -> tuple[jax.Array, jax.Array]:
  """CutMixup: CutMix whose pasted region is a mixup with the partner.

  With probability 1/2 the mixed image fills the box, otherwise it fills the
  outside and the box keeps the original. As in the reference, the box is the
  same in hr and lr (see ``cutmix``).

  Args:
    key: a JAX PRNG key.
    hr: ``[N, H, W, C]`` float batch in [0, 255].
    lr: LR batch of the same shape and dtype.
    mixup_prob: probability of mixing (else the partner is pasted unmixed).
    mixup_alpha: ``v ~ Beta(mixup_alpha, mixup_alpha)``.
    cutmix_prob: probability of applying the op.
    cutmix_alpha: box side ratio ``~ N(cutmix_alpha, 0.01^2)``; ``<= 0`` is the identity.

  Returns:
    ``(hr, lr)`` of the input shape and dtype.

  Examples:
    >>> x = jnp.ones((2, 8, 8, 3))
    >>> hr2, lr2 = cutmixup(jax.random.key(0), x, 2 * x)
    >>> hr2.shape
    (2, 8, 8, 3)
  """
  hr, lr = _checks.check_images(hr, lr, op="cutmixup")
  params = sample_cutmixup_params(
    key,
    hr.shape,
    mixup_prob=mixup_prob,
    mixup_alpha=mixup_alpha,
    cutmix_prob=cutmix_prob,
    cutmix_alpha=cutmix_alpha,
  )
  return _apply_cutmixup(params, hr, lr)
