"""Stateless, jit-compiled CutBlur, the MoA policy and their companions.

The names mirror the official ``augments.py`` so code ports line by line, but
everything is a pure function of a JAX PRNG key:

* Ops, ``op(key, hr, lr, *, options) -> (hr, lr)`` (the cutouts also return the
  loss mask): ``blend``, ``rgb``, ``mixup``, ``cutout``, ``cutmix``,
  ``cutmixup``, ``cutblur`` and the new ``soft_cutblur``,
  ``degradation_mixup`` and ``box_cutout``. Each has a deterministic half,
  ``apply_<op>(params, hr, lr)``, under a sampler
  ``sample_<op>_params(key, shape, *, options, per_sample=False)``.
* ``Policy`` (a frozen, hashable dataclass), ``moa(*, realsr, same_size, carn)`` (the
  paper's presets; ``moa(dataset, model)`` with the reference's names) and
  ``apply_augment(key, hr, lr, policy) -> (hr, lr, mask, index)``.
* Combinators ``chain(*ops)`` and ``one_of(ops, weights)`` for custom policies.
* Boxes: ``Box``, ``sample_box``, ``box_mask``, ``box_row_mask``.
* ``random_flip_and_rotate(key, hr, lr)``: the reference's random flips and transposes.

Images are ``[N, H, W, C]`` floats in [0, 255]; ``hr`` and ``lr`` have the
same shape (bring LR to HR size with ``cutblur_jax.image.upsample_nearest``).
See the submodules' docstrings for the exact draws and invariants.

Examples:
  >>> import jax, jax.numpy as jnp
  >>> from cutblur_jax import augment
  >>> hr = jnp.full((4, 16, 16, 3), 128.0); lr = jnp.full((4, 16, 16, 3), 64.0)
  >>> step = jax.jit(augment.apply_augment, static_argnames="policy")
  >>> hr2, lr2, mask, index = step(jax.random.key(0), hr, lr, policy=augment.moa())
"""

from __future__ import annotations

from cutblur_jax.augment.boxes import Box, box_mask, box_row_mask, sample_box
from cutblur_jax.augment.combinators import Chain, OneOf, chain, one_of
from cutblur_jax.augment.flips import random_flip_and_rotate
from cutblur_jax.augment import ops
from cutblur_jax.augment.ops import *  # noqa: F403  # the ops, their samplers, applies and params
from cutblur_jax.augment.policy import OP_NAMES, Policy, apply_augment, normalize_output
from cutblur_jax.augment.presets import moa

__all__ = [
  *ops.__all__,  # ops, samplers, deterministic applies and their params
  # boxes
  "Box",
  "sample_box",
  "box_mask",
  "box_row_mask",
  # policies
  "Policy",
  "moa",
  "apply_augment",
  "OP_NAMES",
  "normalize_output",
  # combinators
  "chain",
  "one_of",
  "Chain",
  "OneOf",
  # the train step's random flips and transposes
  "random_flip_and_rotate",
]
