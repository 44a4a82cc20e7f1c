"""The augmentations of ``augments.py`` and three new ones, as pure, jit-able JAX functions.

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
* Every op returns ``(hr, lr)``; ``cutout`` and ``box_cutout`` return
  ``(hr, lr, mask)`` with ``mask`` ``[N, H, W, 1]`` of the image dtype, 1 for
  kept pixels and 0 for dropped ones.
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
box_cutout          (new) the original Cutout: a box (``boxes.sample_box``;
                    ``alpha = 0.5`` covers a quarter of the area) of LR
                    pixels zeroed, hr unchanged, the mask returned as
                    cutout's.
==================  =========================================================

Deviations from ``augments.py`` (all documented where they apply): boxes past
the image are clamped instead of crashing; blend's colour has ``C`` channels
(the reference hard-codes 3); ``mixup_alpha <= 0`` in cutmixup pastes the
partner instead of raising in ``np.random.beta``.
"""

from __future__ import annotations

from cutblur_jax.augment.cutblur_ops import (  # noqa: F401
  CutBlurParams,
  SoftCutBlurParams,
  apply_cutblur,
  apply_soft_cutblur,
  cutblur,
  sample_cutblur_params,
  sample_soft_cutblur_params,
  soft_cutblur,
)
from cutblur_jax.augment.cuts import (  # noqa: F401
  CutMixParams,
  CutMixupParams,
  apply_cutmix,
  apply_cutmixup,
  cutmix,
  cutmixup,
  sample_cutmix_params,
  sample_cutmixup_params,
)
from cutblur_jax.augment.cutouts import (  # noqa: F401
  BoxCutoutParams,
  CutoutParams,
  apply_box_cutout,
  apply_cutout,
  box_cutout,
  cutout,
  sample_box_cutout_params,
  sample_cutout_params,
)
from cutblur_jax.augment.mixing import (  # noqa: F401
  BlendParams,
  DegradationMixupParams,
  MixupParams,
  RGBParams,
  apply_blend,
  apply_degradation_mixup,
  apply_mixup,
  apply_rgb,
  blend,
  degradation_mixup,
  mixup,
  rgb,
  sample_blend_params,
  sample_degradation_mixup_params,
  sample_mixup_params,
  sample_rgb_params,
)

__all__ = [
  "BlendParams",
  "RGBParams",
  "MixupParams",
  "CutoutParams",
  "CutMixParams",
  "CutMixupParams",
  "CutBlurParams",
  "SoftCutBlurParams",
  "DegradationMixupParams",
  "BoxCutoutParams",
  "sample_blend_params",
  "sample_rgb_params",
  "sample_mixup_params",
  "sample_cutout_params",
  "sample_cutmix_params",
  "sample_cutmixup_params",
  "sample_cutblur_params",
  "sample_soft_cutblur_params",
  "sample_degradation_mixup_params",
  "sample_box_cutout_params",
  "apply_blend",
  "apply_rgb",
  "apply_mixup",
  "apply_cutout",
  "apply_cutmix",
  "apply_cutmixup",
  "apply_cutblur",
  "apply_soft_cutblur",
  "apply_degradation_mixup",
  "apply_box_cutout",
  "blend",
  "rgb",
  "mixup",
  "cutout",
  "cutmix",
  "cutmixup",
  "cutblur",
  "soft_cutblur",
  "degradation_mixup",
  "box_cutout",
]
