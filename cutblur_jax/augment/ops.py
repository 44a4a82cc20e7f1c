"""The augmentations of ``augments.py`` and two new ones, as pure, jit-able JAX functions.

Each op ``X`` comes in three parts, in the style of dm_pix:

* ``sample_X_params(key, shape, *, <options>, per_sample=False) -> XParams``
  makes every random draw of the op (nothing else);
* ``apply_X(params, hr, lr)`` is deterministic: the same params give the same
  output, so the draws can be inspected, tested and replayed;
* ``X(key, hr, lr, *, <options>)`` is ``apply_X(sample_X_params(key, hr.shape,
  ...), hr, lr)``.

Invariants:

* ``hr`` and ``lr`` are ``[N, H, W, C]`` arrays of one floating dtype (float32,
  bfloat16, ...) holding values in [0, 255], with the same shape: LR has
  already been brought to HR size (``cutblur_jax.image.upsample_nearest``), as
  the reference's ``solver.py`` does before ``apply_augment``. Outputs keep the
  shape and dtype. Mixing (``v * a + (1 - v) * b``) is computed in float32
  (or wider) and cast back, so bfloat16 inputs lose nothing extra.
* Every op returns ``(hr, lr)``; ``cutout`` returns ``(hr, lr, mask)`` with
  ``mask`` ``[N, H, W, 1]`` of the image dtype, 1 for kept pixels and 0 for
  dropped ones.
* ``prob`` gates each op: it is applied when ``u < prob`` for ``u ~ U[0, 1)``,
  like the reference's ``np.random.rand(1) >= prob`` early return, so
  ``prob = 1`` always applies and ``prob = 0`` never does. ``alpha <= 0`` is the
  identity (``rgb`` has no alpha). When an op is not applied its outputs equal
  its inputs exactly, and ``params.applied`` is False.
* Batch mode (the default, the reference's semantics): one draw per batch
  (params fields are scalars), except where the reference draws per image
  (blend's colour, cutout's pixels). Per-sample mode (``per_sample=True`` in
  the samplers): every image gets its own gate, ``v``, box, side and channel
  permutation (fields ``[N]``); partners for mixup/CutMix/CutMixup still come
  from one random permutation of the batch.
* Shapes never depend on a draw: boxes are iota masks (``boxes.box_row_mask``),
  so everything works under ``jit``, ``vmap`` and ``grad``.
* A sampler makes all its draws from one ``jax.random.bits`` call on its key
  (transforms in ``_sampling``: inverse-CDF normals, loop-free Marsaglia-Tsang
  Beta), compiled as one program with the shape static and the options
  traced: a MoA policy compiles in seconds, not tens of seconds, and eager
  calls run one program.
* ``apply_X`` under ``jit`` may differ from eager execution in the last bit of
  the mixing ops (XLA contracts ``v * a + w * b`` into a fused multiply-add);
  pasting, dropping and permuting ops are bit-exact everywhere.

The ops, with the draws each sampler makes (``B`` is ``()`` in batch mode and
``[N]`` per sample):

==================  =========================================================
blend               ``v ~ U(alpha, 1)`` [B]; colour ``c ~ U(0, 255)`` [N, C];
                    ``x <- v * x + (1 - v) * c`` for ``x`` in (hr, lr).
rgb                 one permutation of the 3 channels [B, 3] for hr and lr.
mixup               ``v ~ Beta(alpha, alpha)`` [B]; partner = a permutation
                    of the batch; ``x <- v * x + (1 - v) * x[partner]``.
cutout              each LR pixel (all channels) dropped with probability
                    ``alpha``, independently; hr unchanged; the mask is
                    returned. A concrete small ``alpha`` (MoA's 0.001) draws
                    the gaps between dropped pixels instead of one word per
                    pixel: the same Bernoulli field, ~3x faster on CPU
                    (``_sampling.sparse_bernoulli``).
cutmix              a box (``boxes.sample_box``); the partner's box pasted at
                    the same place in hr and lr.
cutmixup            a box, a partner, ``v ~ Beta(mixup_alpha, mixup_alpha)``
                    (the mixup gated by ``mixup_prob``; when gated off the
                    partner is pasted as is) and a fair coin: the mixed image
                    replaces the inside of the box or the outside.
cutblur             a box and a fair coin: LR gets HR inside the box, or LR
                    gets HR outside it (LR kept in the box). hr unchanged.
soft_cutblur        (new) CutBlur whose pasted region is blended,
                    ``lr <- v * hr + (1 - v) * lr`` with ``v ~ Beta(mix_alpha,
                    mix_alpha)``, instead of replaced.
degradation_mixup   (new) ``lr <- v * lr + (1 - v) * hr`` over the whole image,
                    ``v ~ Beta(alpha, alpha)``: a range of degradation
                    strengths (e.g. noise levels) from one training pair.
==================  =========================================================

Deviations from ``augments.py`` (all documented where they apply): boxes past
the image are clamped instead of crashing; blend's colour has ``C`` channels
(the reference hard-codes 3); ``mixup_alpha <= 0`` in cutmixup pastes the
partner instead of raising in ``np.random.beta``.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from cutblur_jax.augment import _checks
from cutblur_jax.augment import _sampling
from cutblur_jax.augment.boxes import BOX_WORDS, Box, box_from_bits, box_row_mask

__all__ = [
    "BlendParams", "RGBParams", "MixupParams", "CutoutParams", "CutMixParams",
    "CutMixupParams", "CutBlurParams", "SoftCutBlurParams", "DegradationMixupParams",
    "sample_blend_params", "sample_rgb_params", "sample_mixup_params", "sample_cutout_params",
    "sample_cutmix_params", "sample_cutmixup_params", "sample_cutblur_params",
    "sample_soft_cutblur_params", "sample_degradation_mixup_params",
    "apply_blend", "apply_rgb", "apply_mixup", "apply_cutout", "apply_cutmix",
    "apply_cutmixup", "apply_cutblur", "apply_soft_cutblur", "apply_degradation_mixup",
    "blend", "rgb", "mixup", "cutout", "cutmix", "cutmixup", "cutblur", "soft_cutblur",
    "degradation_mixup",
]


# ----------------------------------------------------------------------------- params


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


class CutoutParams(NamedTuple):
  """Draws of ``cutout``: ``applied`` bool [B], ``keep`` bool [N, H, W, 1]."""
  applied: jax.Array
  keep: jax.Array


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


class DegradationMixupParams(NamedTuple):
  """Draws of ``degradation_mixup``: ``applied`` bool [B], ``v`` float32 [B]."""
  applied: jax.Array
  v: jax.Array


# ----------------------------------------------------------------------------- helpers


def _words(key: jax.Array, shape: Sequence[int], per_sample: bool, count: int,
           *extra: tuple[int, ...]) -> list[jax.Array]:
  """All random words of a sampler, from one call: ``[B, count]`` then ``extra`` blocks."""
  batch_shape = (shape[0],) if per_sample else ()
  return _sampling.split_bits(key, [batch_shape + (count,), *extra])


def _gate(bits: jax.Array, prob: Any, enabled: Any = True) -> jax.Array:
  """``u < prob`` for ``u ~ U[0, 1)``, and'ed with ``enabled`` (e.g. ``alpha > 0``)."""
  return jnp.logical_and(_sampling.unit(bits) < prob, enabled)


def _beta(bits: jax.Array, alpha: Any) -> jax.Array:
  """``Beta(alpha, alpha)``; a parameter of 1 stands in where ``alpha <= 0`` (op disabled)."""
  return _sampling.beta(bits, jnp.where(jnp.asarray(alpha) > 0, alpha, 1.0))


def _per_image(value: jax.Array, ndim: int = 4) -> jax.Array:
  """Reshapes a ``()`` or ``[N]`` param to broadcast against ``ndim``-D images."""
  value = jnp.asarray(value)
  return value if value.ndim == 0 else value.reshape((-1,) + (1,) * (ndim - 1))


def _mix(v: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
  """``v * a + (1 - v) * b`` in float32 or wider, cast back to ``a.dtype``."""
  compute = jnp.promote_types(a.dtype, jnp.float32)
  v = _per_image(v, a.ndim).astype(compute)
  return (v * a.astype(compute) + (1 - v) * b.astype(compute)).astype(a.dtype)


def _take_partner(x: jax.Array, partner: jax.Array) -> jax.Array:
  return jnp.take(x, partner, axis=0)


def _rows(x: jax.Array) -> jax.Array:
  """The ``[N, H, W * C]`` view the box ops select on (see ``boxes.box_row_mask``)."""
  n, h, w, c = x.shape
  return x.reshape(n, h, w * c)


def _region(box: Box, inside: jax.Array, applied: jax.Array, shape: Sequence[int]):
  """The pixels an op writes, on the rows view: the box or its complement, where applied."""
  in_box = box_row_mask(box, shape[1], shape[2], shape[3])
  return _per_image(applied, 3) & jnp.where(_per_image(inside, 3), in_box, ~in_box)


def _draws(fn):
  """Compiles a sampler's draws as one computation (``shape`` and ``per_sample`` static).

  Options stay traced, so one compilation serves every prob and alpha, and an
  eager call runs one compiled program instead of a hundred small ones.
  """
  return jax.jit(fn, static_argnames=("shape", "per_sample"))


# ----------------------------------------------------------------------------- blend


def sample_blend_params(key: jax.Array, shape: Sequence[int], *, prob: float = 1.0,
                        alpha: float = 0.6, per_sample: bool = False) -> BlendParams:
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


@_draws
def _draw_blend(key, *, shape, prob, alpha, per_sample):
  n, c = shape[0], shape[3]
  words, colour_words = _words(key, shape, per_sample, 2, (n, c))
  v = alpha + (1.0 - alpha) * _sampling.unit(words[..., 1])
  return BlendParams(applied=_gate(words[..., 0], prob, jnp.asarray(alpha) > 0),
                     v=v.astype(jnp.float32),
                     colour=255.0 * _sampling.unit(colour_words))


def apply_blend(params: BlendParams, hr: jax.Array, lr: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Blends hr and lr with one flat colour per image: ``x <- v * x + (1 - v) * c``."""
  hr, lr = _checks.check_images(hr, lr, op="apply_blend")
  n, c = hr.shape[0], hr.shape[-1]
  colour = jnp.asarray(params.colour).reshape(n, 1, 1, c)
  applied = _per_image(params.applied)
  return tuple(jnp.where(applied, _mix(params.v, x, colour), x) for x in (hr, lr))


def blend(key: jax.Array, hr: jax.Array, lr: jax.Array, *, prob: float = 1.0,
          alpha: float = 0.6) -> tuple[jax.Array, jax.Array]:
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
  return apply_blend(sample_blend_params(key, hr.shape, prob=prob, alpha=alpha), hr, lr)


# ----------------------------------------------------------------------------- rgb


def _check_rgb_channels(channels: int, name: str, op: str) -> None:
  if channels != 3:
    raise ValueError(
        f"{op}: `{name}` must have 3 channels to permute them, got {channels}.")


# The 3! channel orders; a uniform index into this table is a uniform permutation.
_RGB_PERMUTATIONS = np.array(list(itertools.permutations(range(3))), np.int32)


def sample_rgb_params(key: jax.Array, shape: Sequence[int], *, prob: float = 1.0,
                      per_sample: bool = False) -> RGBParams:
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


@_draws
def _draw_rgb(key, *, shape, prob, per_sample):
  (words,) = _words(key, shape, per_sample, 2)
  perm = jnp.asarray(_RGB_PERMUTATIONS)[_sampling.randint(words[..., 1], 6)]
  return RGBParams(applied=_gate(words[..., 0], prob), perm=perm)


def _permute_channels(x: jax.Array, perm: jax.Array) -> jax.Array:
  """``x[..., perm]`` as a select over broadcast channel slices.

  No gather and no concatenate: each output element picks one of its pixel's
  channels, so XLA emits a single elementwise pass (a gather or a stack of
  channel slices measured 2-4x slower on CPU).
  """
  channels = x.shape[-1]
  source = jnp.asarray(perm).reshape(-1, 1, 1, channels)  # [1 or N, 1, 1, C]
  picked = x[..., channels - 1:]
  for i in range(channels - 2, -1, -1):
    picked = jnp.where(source == i, x[..., i:i + 1], picked)
  return picked


def apply_rgb(params: RGBParams, hr: jax.Array, lr: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Permutes the channels of hr and lr: output channel ``j`` is input channel ``perm[j]``."""
  hr, lr = _checks.check_images(hr, lr, op="apply_rgb")
  _check_rgb_channels(hr.shape[-1], "hr", "apply_rgb")
  perm = jnp.asarray(params.perm)
  applied = _per_image(params.applied)
  return tuple(jnp.where(applied, _permute_channels(x, perm), x) for x in (hr, lr))


def rgb(key: jax.Array, hr: jax.Array, lr: jax.Array, *,
        prob: float = 1.0) -> tuple[jax.Array, jax.Array]:
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
  return apply_rgb(sample_rgb_params(key, hr.shape, prob=prob), hr, lr)


# ----------------------------------------------------------------------------- mixup


def sample_mixup_params(key: jax.Array, shape: Sequence[int], *, prob: float = 1.0,
                        alpha: float = 1.2, per_sample: bool = False) -> MixupParams:
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


@_draws
def _draw_mixup(key, *, shape, prob, alpha, per_sample):
  n = shape[0]
  words, partner_words = _words(key, shape, per_sample, 1 + _sampling.BETA_WORDS, (n,))
  return MixupParams(applied=_gate(words[..., 0], prob, jnp.asarray(alpha) > 0),
                     v=_beta(words[..., 1:], alpha),
                     partner=_sampling.permutation(partner_words))


def apply_mixup(params: MixupParams, hr: jax.Array, lr: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mixes each pair with its partner: ``x <- v * x + (1 - v) * x[partner]``."""
  hr, lr = _checks.check_images(hr, lr, op="apply_mixup")
  applied = _per_image(params.applied)
  return tuple(jnp.where(applied, _mix(params.v, x, _take_partner(x, params.partner)), x)
               for x in (hr, lr))


def mixup(key: jax.Array, hr: jax.Array, lr: jax.Array, *, prob: float = 1.0,
          alpha: float = 1.2) -> tuple[jax.Array, jax.Array]:
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
  return apply_mixup(sample_mixup_params(key, hr.shape, prob=prob, alpha=alpha), hr, lr)


# ----------------------------------------------------------------------------- cutout


def sample_cutout_params(key: jax.Array, shape: Sequence[int], *, prob: float = 1.0,
                         alpha: float = 0.001, per_sample: bool = False) -> CutoutParams:
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
  return _draw_cutout(key, shape=shape, per_sample=bool(per_sample), prob=prob, alpha=alpha,
                      max_drops=_sampling.sparse_bernoulli_capacity(math.prod(shape[:3]), alpha))


@functools.partial(jax.jit, static_argnames=("shape", "per_sample", "max_drops"))
def _draw_cutout(key, *, shape, prob, alpha, per_sample, max_drops):
  n, h, w, _ = shape
  if max_drops is None:  # one word per pixel
    words, pixel_words = _words(key, shape, per_sample, 1, (n, h, w, 1))
    keep = _sampling.unit(pixel_words) >= alpha
  else:  # few drops: one word per dropped pixel (see _sampling.sparse_bernoulli)
    words, gap_words = _words(key, shape, per_sample, 1, (max_drops,))
    keep = ~_sampling.sparse_bernoulli(gap_words, alpha, n * h * w).reshape(n, h, w, 1)
  return CutoutParams(applied=_gate(words[..., 0], prob, jnp.asarray(alpha) > 0), keep=keep)


def apply_cutout(params: CutoutParams, hr: jax.Array,
                 lr: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Zeroes the dropped LR pixels; returns ``(hr, lr, mask)``, hr unchanged.

  ``mask`` is ``[N, H, W, 1]`` of the image dtype (1 kept, 0 dropped; all ones
  when not applied). The reference multiplies both SR and HR by it before the
  L1 loss, so the network is not asked to reproduce the dropped pixels.
  """
  hr, lr = _checks.check_images(hr, lr, op="apply_cutout")
  keep = jnp.logical_or(jnp.asarray(params.keep), ~_per_image(params.applied))
  keep = jnp.broadcast_to(keep, hr.shape[:3] + (1,))
  return hr, jnp.where(keep, lr, jnp.zeros((), lr.dtype)), keep.astype(hr.dtype)


def cutout(key: jax.Array, hr: jax.Array, lr: jax.Array, *, prob: float = 1.0,
           alpha: float = 0.001) -> tuple[jax.Array, jax.Array, jax.Array]:
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
  return apply_cutout(sample_cutout_params(key, hr.shape, prob=prob, alpha=alpha), hr, lr)


# ----------------------------------------------------------------------------- cutmix


def sample_cutmix_params(key: jax.Array, shape: Sequence[int], *, prob: float = 1.0,
                         alpha: float = 0.7, per_sample: bool = False) -> CutMixParams:
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


@_draws
def _draw_cutmix(key, *, shape, prob, alpha, per_sample):
  n = shape[0]
  words, partner_words = _words(key, shape, per_sample, 1 + BOX_WORDS, (n,))
  return CutMixParams(applied=_gate(words[..., 0], prob, jnp.asarray(alpha) > 0),
                      box=box_from_bits(words[..., 1:], shape[1], shape[2], alpha=alpha),
                      partner=_sampling.permutation(partner_words))


def apply_cutmix(params: CutMixParams, hr: jax.Array,
                 lr: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Pastes the partner's box at the same place in hr and lr."""
  hr, lr = _checks.check_images(hr, lr, op="apply_cutmix")
  region = _per_image(params.applied, 3) & box_row_mask(params.box, *hr.shape[1:])
  return tuple(jnp.where(region, _take_partner(_rows(x), params.partner), _rows(x))
               .reshape(x.shape) for x in (hr, lr))


def cutmix(key: jax.Array, hr: jax.Array, lr: jax.Array, *, prob: float = 1.0,
           alpha: float = 0.7) -> tuple[jax.Array, jax.Array]:
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
  return apply_cutmix(sample_cutmix_params(key, hr.shape, prob=prob, alpha=alpha), hr, lr)


# ----------------------------------------------------------------------------- cutmixup


def sample_cutmixup_params(key: jax.Array, shape: Sequence[int], *, mixup_prob: float = 1.0,
                           mixup_alpha: float = 1.2, cutmix_prob: float = 1.0,
                           cutmix_alpha: float = 0.7,
                           per_sample: bool = False) -> CutMixupParams:
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
  return _draw_cutmixup(key, shape=shape, per_sample=bool(per_sample), mixup_prob=mixup_prob,
                        mixup_alpha=mixup_alpha, cutmix_prob=cutmix_prob,
                        cutmix_alpha=cutmix_alpha)


@_draws
def _draw_cutmixup(key, *, shape, mixup_prob, mixup_alpha, cutmix_prob, cutmix_alpha,
                   per_sample):
  n = shape[0]
  count = 3 + BOX_WORDS + _sampling.BETA_WORDS
  words, partner_words = _words(key, shape, per_sample, count, (n,))
  return CutMixupParams(
      applied=_gate(words[..., 0], cutmix_prob, jnp.asarray(cutmix_alpha) > 0),
      box=box_from_bits(words[..., 1:1 + BOX_WORDS], shape[1], shape[2], alpha=cutmix_alpha),
      partner=_sampling.permutation(partner_words),
      mixup_applied=_gate(words[..., 1 + BOX_WORDS], mixup_prob,
                          jnp.asarray(mixup_alpha) > 0),
      v=_beta(words[..., 3 + BOX_WORDS:], mixup_alpha),
      inside=_sampling.unit(words[..., 2 + BOX_WORDS]) < 0.5)


def apply_cutmixup(params: CutMixupParams, hr: jax.Array,
                   lr: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mixes the partner in (or pastes it) inside the box or outside it, in hr and lr alike."""
  hr, lr = _checks.check_images(hr, lr, op="apply_cutmixup")
  region = _region(params.box, params.inside, params.applied, hr.shape)
  mixup_applied = _per_image(params.mixup_applied, 3)
  outputs = []
  for x in (hr, lr):
    rows = _rows(x)
    other = _take_partner(rows, params.partner)
    mixed = jnp.where(mixup_applied, _mix(params.v, rows, other), other)
    outputs.append(jnp.where(region, mixed, rows).reshape(x.shape))
  return tuple(outputs)


def cutmixup(key: jax.Array, hr: jax.Array, lr: jax.Array, *, mixup_prob: float = 1.0,
             mixup_alpha: float = 1.2, cutmix_prob: float = 1.0,
             cutmix_alpha: float = 0.7) -> tuple[jax.Array, jax.Array]:
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
  params = sample_cutmixup_params(key, hr.shape, mixup_prob=mixup_prob,
                                  mixup_alpha=mixup_alpha, cutmix_prob=cutmix_prob,
                                  cutmix_alpha=cutmix_alpha)
  return apply_cutmixup(params, hr, lr)


# ----------------------------------------------------------------------------- cutblur


def sample_cutblur_params(key: jax.Array, shape: Sequence[int], *, prob: float = 1.0,
                          alpha: float = 0.7, per_sample: bool = False) -> CutBlurParams:
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


@_draws
def _draw_cutblur(key, *, shape, prob, alpha, per_sample):
  (words,) = _words(key, shape, per_sample, 2 + BOX_WORDS)
  return CutBlurParams(applied=_gate(words[..., 0], prob, jnp.asarray(alpha) > 0),
                       box=box_from_bits(words[..., 1:1 + BOX_WORDS], shape[1], shape[2],
                                         alpha=alpha),
                       inside=_sampling.unit(words[..., 1 + BOX_WORDS]) < 0.5)


def apply_cutblur(params: CutBlurParams, hr: jax.Array,
                  lr: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Pastes HR into LR inside the box (``inside``) or around it; hr is returned unchanged."""
  hr, lr = _checks.check_images(hr, lr, op="apply_cutblur")
  region = _region(params.box, params.inside, params.applied, hr.shape)
  return hr, jnp.where(region, _rows(hr), _rows(lr)).reshape(lr.shape)


def cutblur(key: jax.Array, hr: jax.Array, lr: jax.Array, *, prob: float = 1.0,
            alpha: float = 0.7) -> tuple[jax.Array, jax.Array]:
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
  return apply_cutblur(sample_cutblur_params(key, hr.shape, prob=prob, alpha=alpha), hr, lr)


# ----------------------------------------------------------------------------- soft cutblur


def sample_soft_cutblur_params(key: jax.Array, shape: Sequence[int], *, prob: float = 1.0,
                               alpha: float = 0.7, mix_alpha: float = 1.2,
                               per_sample: bool = False) -> SoftCutBlurParams:
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
  return _draw_soft_cutblur(key, shape=shape, per_sample=bool(per_sample),
                            prob=prob, alpha=alpha, mix_alpha=mix_alpha)


@_draws
def _draw_soft_cutblur(key, *, shape, prob, alpha, mix_alpha, per_sample):
  (words,) = _words(key, shape, per_sample, 2 + BOX_WORDS + _sampling.BETA_WORDS)
  v = jnp.where(jnp.asarray(mix_alpha) > 0, _beta(words[..., 2 + BOX_WORDS:], mix_alpha), 1.0)
  return SoftCutBlurParams(applied=_gate(words[..., 0], prob, jnp.asarray(alpha) > 0),
                           box=box_from_bits(words[..., 1:1 + BOX_WORDS], shape[1], shape[2],
                                             alpha=alpha),
                           inside=_sampling.unit(words[..., 1 + BOX_WORDS]) < 0.5,
                           v=v.astype(jnp.float32))


def apply_soft_cutblur(params: SoftCutBlurParams, hr: jax.Array,
                       lr: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Blends HR into LR, ``lr <- v * hr + (1 - v) * lr``, inside the box or around it."""
  hr, lr = _checks.check_images(hr, lr, op="apply_soft_cutblur")
  region = _region(params.box, params.inside, params.applied, hr.shape)
  hr_rows, lr_rows = _rows(hr), _rows(lr)
  return hr, jnp.where(region, _mix(params.v, hr_rows, lr_rows), lr_rows).reshape(lr.shape)


def soft_cutblur(key: jax.Array, hr: jax.Array, lr: jax.Array, *, prob: float = 1.0,
                 alpha: float = 0.7, mix_alpha: float = 1.2) -> tuple[jax.Array, jax.Array]:
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
  params = sample_soft_cutblur_params(key, hr.shape, prob=prob, alpha=alpha,
                                      mix_alpha=mix_alpha)
  return apply_soft_cutblur(params, hr, lr)


# ----------------------------------------------------------------------------- degradation mixup


def sample_degradation_mixup_params(key: jax.Array, shape: Sequence[int], *,
                                    prob: float = 1.0, alpha: float = 1.0,
                                    per_sample: bool = False) -> DegradationMixupParams:
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
  return _draw_degradation_mixup(key, shape=shape, per_sample=bool(per_sample),
                                 prob=prob, alpha=alpha)


@_draws
def _draw_degradation_mixup(key, *, shape, prob, alpha, per_sample):
  (words,) = _words(key, shape, per_sample, 1 + _sampling.BETA_WORDS)
  return DegradationMixupParams(applied=_gate(words[..., 0], prob, jnp.asarray(alpha) > 0),
                                v=_beta(words[..., 1:], alpha))


def apply_degradation_mixup(params: DegradationMixupParams, hr: jax.Array,
                            lr: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Weakens the degradation: ``lr <- v * lr + (1 - v) * hr``; hr unchanged."""
  hr, lr = _checks.check_images(hr, lr, op="apply_degradation_mixup")
  return hr, jnp.where(_per_image(params.applied), _mix(params.v, lr, hr), lr)


def degradation_mixup(key: jax.Array, hr: jax.Array, lr: jax.Array, *, prob: float = 1.0,
                      alpha: float = 1.0) -> tuple[jax.Array, jax.Array]:
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
  return apply_degradation_mixup(params, hr, lr)
