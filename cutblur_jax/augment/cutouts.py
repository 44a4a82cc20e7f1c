"""The cutouts: ops that erase LR pixels and mask the loss there.

* ``cutout``, the reference's: each LR pixel dropped independently with probability
  ``alpha`` (MoA's 0.001 drops 0.1% of the pixels, scattered).
* ``box_cutout`` (new): DeVries and Taylor's original Cutout, one rectangle of LR pixels
  erased, its sides about ``alpha`` times the image's (``alpha = 0.5``: a quarter of the
  area). The paper reports that this form hurts super-resolution, and uses the scattered
  one; ``box_cutout`` lets that comparison be run.

Both return ``(hr, lr, mask)`` with hr unchanged and ``mask`` 0 on the erased pixels, which
the train step multiplies into SR and HR before the L1 loss, as the reference's ``solver.py``
does for cutout: the two differ only in the shape of the erased region. See
``cutblur_jax.augment.ops`` for each op's draws and the invariants all ops keep.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp

from cutblur_jax.augment import _checks, _common, _sampling
from cutblur_jax.augment.boxes import BOX_WORDS, Box, box_from_bits, box_mask


class CutoutParams(NamedTuple):
  """Draws of ``cutout``: ``applied`` bool [B], ``keep`` bool [N, H, W, 1]."""

  applied: jax.Array
  keep: jax.Array


class BoxCutoutParams(NamedTuple):
  """Draws of ``box_cutout``: ``applied`` bool [B] and the erased ``box``."""

  applied: jax.Array
  box: Box


# ----------------------------------------------------------------------------- cutout


def sample_cutout_params(
  key: jax.Array,
  shape: Sequence[int],
  *,
  prob: float = 1.0,
  alpha: float = 0.001,
  per_sample: bool = False,
) -> CutoutParams:
  """Draws ``cutout``'s gate and the kept pixels (each dropped with probability ``alpha``).

  Args:
    key: a JAX PRNG key.
    shape: the images' shape ``(N, H, W, C)``.
    prob: probability of applying the op.
    alpha: per-pixel drop probability, at most 1; ``alpha <= 0`` disables the op.
    per_sample: one gate per image instead of per batch (pixels are always per image).

  Returns:
    ``CutoutParams`` with ``keep`` bool ``[N, H, W, 1]``.

  A Python ``alpha`` small enough that few pixels drop draws only the gaps
  between dropped pixels (one random word each); a large or traced ``alpha``
  draws one word per pixel. Both give i.i.d. ``Bernoulli(alpha)`` drops, but
  not the same pixels for the same key.
  """
  shape = _checks.check_shape(shape, op="cutout")
  _checks.check_prob(prob, "prob", op="cutout")
  _checks.check_alpha(alpha, "alpha", op="cutout", upper=1.0)
  return _draw_cutout(
    key,
    shape=shape,
    per_sample=bool(per_sample),
    prob=prob,
    alpha=alpha,
    max_drops=_sampling.sparse_bernoulli_capacity(math.prod(shape[:3]), alpha),
  )


@functools.partial(jax.jit, static_argnames=("shape", "per_sample", "max_drops"))
def _draw_cutout(key, *, shape, prob, alpha, per_sample, max_drops):
  n, h, w, _ = shape
  if max_drops is None:  # one word per pixel
    words, pixel_words = _common.words(key, shape, per_sample, 1, (n, h, w, 1))
    keep = _sampling.unit(pixel_words) >= alpha
  else:  # few drops: one word per dropped pixel (see _sampling.sparse_bernoulli)
    words, gap_words = _common.words(key, shape, per_sample, 1, (max_drops,))
    keep = ~_sampling.sparse_bernoulli(gap_words, alpha, n * h * w).reshape(n, h, w, 1)
  return CutoutParams(applied=_common.gate(words[..., 0], prob, jnp.asarray(alpha) > 0), keep=keep)


def apply_cutout(
  params: CutoutParams, hr: jax.Array, lr: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Zeroes the dropped LR pixels; returns ``(hr, lr, mask)``, hr unchanged.

  ``mask`` is ``[N, H, W, 1]`` of the image dtype (1 kept, 0 dropped; all ones
  when not applied). The reference multiplies both SR and HR by it before the
  L1 loss, so the network is not asked to reproduce the dropped pixels.
  """
  hr, lr = _checks.check_images(hr, lr, op="apply_cutout")
  return _apply_cutout(params, hr, lr)


def _apply_cutout(
  params: CutoutParams, hr: jax.Array, lr: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """``apply_cutout`` without the image checks: for callers that made them."""
  keep = jnp.logical_or(jnp.asarray(params.keep), ~_common.per_image(params.applied))
  keep = jnp.broadcast_to(keep, hr.shape[:3] + (1,))
  return hr, jnp.where(keep, lr, jnp.zeros((), lr.dtype)), keep.astype(hr.dtype)


def cutout(
  key: jax.Array, hr: jax.Array, lr: jax.Array, *, prob: float = 1.0, alpha: float = 0.001
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Cutout: drops random LR pixels (all channels) and returns the loss mask.

  Args:
    key: a JAX PRNG key.
    hr: ``[N, H, W, C]`` float batch in [0, 255].
    lr: LR batch of the same shape and dtype.
    prob: probability of applying the op.
    alpha: per-pixel drop probability in [0, 1]; ``alpha <= 0`` is the identity.

  Returns:
    ``(hr, lr, mask)``: hr unchanged, lr with dropped pixels zeroed, ``mask``
    ``[N, H, W, 1]`` of the image dtype (1 kept, 0 dropped).

  Examples:
    >>> x = jnp.ones((2, 8, 8, 3))
    >>> _, lr2, mask = cutout(jax.random.key(0), x, x, alpha=0.5)
    >>> bool(jnp.all(lr2 == mask))
    True
  """
  hr, lr = _checks.check_images(hr, lr, op="cutout")
  return _apply_cutout(sample_cutout_params(key, hr.shape, prob=prob, alpha=alpha), hr, lr)


# ----------------------------------------------------------------------------- box_cutout


def sample_box_cutout_params(
  key: jax.Array,
  shape: Sequence[int],
  *,
  prob: float = 1.0,
  alpha: float = 0.5,
  per_sample: bool = False,
) -> BoxCutoutParams:
  """Draws ``box_cutout``'s gate and box (``boxes.sample_box``: sides ``~ alpha`` times).

  Args:
    key: a JAX PRNG key.
    shape: the images' shape ``(N, H, W, C)``.
    prob: probability of applying the op.
    alpha: mean box side ratio (0.5: a quarter of the area); ``alpha <= 0`` disables the
      op, past 1 the box covers the image.
    per_sample: one gate and box per image instead of per batch.

  Returns:
    ``BoxCutoutParams``.
  """
  shape = _checks.check_shape(shape, op="box_cutout")
  _checks.check_prob(prob, "prob", op="box_cutout")
  _checks.check_alpha(alpha, "alpha", op="box_cutout")
  return _draw_box_cutout(key, shape=shape, per_sample=bool(per_sample), prob=prob, alpha=alpha)


@_common.draws
def _draw_box_cutout(key, *, shape, prob, alpha, per_sample):
  (words,) = _common.words(key, shape, per_sample, 1 + BOX_WORDS)
  return BoxCutoutParams(
    applied=_common.gate(words[..., 0], prob, jnp.asarray(alpha) > 0),
    box=box_from_bits(words[..., 1:], shape[1], shape[2], alpha=alpha),
  )


def apply_box_cutout(
  params: BoxCutoutParams, hr: jax.Array, lr: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Zeroes the LR pixels in the box; returns ``(hr, lr, mask)``, hr unchanged.

  ``mask`` is ``[N, H, W, 1]`` of the image dtype: 0 in the box where applied, else 1.
  """
  hr, lr = _checks.check_images(hr, lr, op="apply_box_cutout")
  return _apply_box_cutout(params, hr, lr)


def _apply_box_cutout(
  params: BoxCutoutParams, hr: jax.Array, lr: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """``apply_box_cutout`` without the image checks: for callers that made them."""
  erased = _common.per_image(params.applied) & box_mask(params.box, hr.shape[1], hr.shape[2])
  keep = jnp.broadcast_to(~erased, hr.shape[:3] + (1,))
  return hr, jnp.where(keep, lr, jnp.zeros((), lr.dtype)), keep.astype(hr.dtype)


def box_cutout(
  key: jax.Array, hr: jax.Array, lr: jax.Array, *, prob: float = 1.0, alpha: float = 0.5
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The original Cutout: erases one rectangle of LR pixels and returns the loss mask.

  Args:
    key: a JAX PRNG key.
    hr: ``[N, H, W, C]`` float batch in [0, 255].
    lr: LR batch of the same shape and dtype.
    prob: probability of applying the op.
    alpha: box side ratio ``~ N(alpha, 0.01^2)`` (0.5: a quarter of the area), the box
      drawn as CutMix's; ``alpha <= 0`` is the identity.

  Returns:
    ``(hr, lr, mask)``: hr unchanged, lr zeroed in the box, ``mask`` ``[N, H, W, 1]`` of
    the image dtype (0 in the box).

  Examples:
    >>> x = jnp.ones((2, 8, 8, 3))
    >>> _, lr2, mask = box_cutout(jax.random.key(0), x, x)
    >>> int(mask[0].sum()), bool(jnp.all(lr2 == mask))  # 4 x 4 of 8 x 8 erased
    (48, True)
  """
  hr, lr = _checks.check_images(hr, lr, op="box_cutout")
  return _apply_box_cutout(sample_box_cutout_params(key, hr.shape, prob=prob, alpha=alpha), hr, lr)
