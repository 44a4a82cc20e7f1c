"""Flax EDSR, RCAN and CARN, equal to the official CutBlur PyTorch networks.

A network is described by an *arch* dict, which is also what checkpoints store::

  {"model": "EDSR" | "RCAN" | "CARN", "scale": int, "num_blocks": int, "num_channels": int,
   "res_scale": float, "num_groups": int (RCAN, CARN), "reduction": int (RCAN)}

``model_arch(name, scale, **overrides)`` fills one from the official presets
(``option.py``), ``create_model(arch)`` builds the Flax module. Every network takes the
HR-sized float image on [0, 255] (the LR image upsampled by nearest neighbour,
``cutblur_jax.image.upsample_nearest``), NHWC, and returns the float32 SR image of the same
size. Params are a plain pytree: ``model.init(key, x)["params"]``.

Examples:
  >>> arch = model_arch("EDSR-baseline", scale=2)
  >>> arch["num_blocks"], arch["num_channels"], arch["res_scale"]
  (16, 64, 1.0)
  >>> model = create_model(model_arch("CARN", 2, num_channels=8, num_groups=1, num_blocks=1))
  >>> x = jnp.zeros((1, 8, 12, 3))
  >>> params = model.init(jax.random.key(0), x)["params"]
  >>> model.apply({"params": params}, x).shape
  (1, 8, 12, 3)
"""

from __future__ import annotations

import fractions
import functools
import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from cutblur_jax.models.carn import CARN
from cutblur_jax.models.edsr import EDSR
from cutblur_jax.models.layers import (DIV2K_RGB_MEAN, MEAN_SHIFT_PARAM_COUNT, pixel_shuffle,
                                       space_to_depth, upsampler_factors)
from cutblur_jax.models.rcan import RCAN

__all__ = [
    "CARN", "DIV2K_RGB_MEAN", "EDSR", "MEAN_SHIFT_PARAM_COUNT", "PRESETS", "RCAN",
    "abstract_params", "canonical_arch", "count_params", "create_model", "model_arch",
    "official_param_count", "pixel_shuffle", "receptive_radius", "space_to_depth",
]

# option.py's make_template, plus EDSR-baseline (Lim et al.'s small EDSR).
PRESETS: Mapping[str, Mapping[str, Any]] = {
    "EDSR": {"model": "EDSR", "num_blocks": 32, "num_channels": 256, "res_scale": 0.1},
    "EDSR-baseline": {"model": "EDSR", "num_blocks": 16, "num_channels": 64, "res_scale": 1.0},
    "RCAN": {"model": "RCAN", "num_groups": 10, "num_blocks": 20, "num_channels": 64,
             "reduction": 16, "res_scale": 1.0},
    "CARN": {"model": "CARN", "num_groups": 3, "num_blocks": 3, "num_channels": 64,
             "res_scale": 1.0},
}
_MODULES = {"EDSR": EDSR, "RCAN": RCAN, "CARN": CARN}
_INT_FIELDS = ("scale", "num_blocks", "num_channels", "num_groups", "reduction")


def _preset(name: str) -> Mapping[str, Any]:
  if not isinstance(name, str):
    raise TypeError(f"`model` must be a string, got {name!r}.")
  for preset_name, preset in PRESETS.items():
    if preset_name.lower() == name.lower():
      return preset
  raise ValueError(f"Unknown model {name!r}; expected one of {sorted(PRESETS)}.")


def model_arch(model: str, scale: int, **overrides: Any) -> dict[str, Any]:
  """The arch dict of a preset (``EDSR``, ``EDSR-baseline``, ``RCAN``, ``CARN``), overridden.

  Args:
    model: preset name (case-insensitive).
    scale: super-resolution factor: 3 or a power of two (1 for same-size restoration).
    **overrides: any architecture field of that model (``num_blocks``, ``num_channels``,
      ``res_scale``, and ``num_groups`` for RCAN/CARN, ``reduction`` for RCAN).

  Returns:
    A new dict with ``model`` (the network: EDSR, RCAN or CARN), ``scale`` and every
    architecture field of that network, JSON-serialisable.

  Raises:
    ValueError: unknown model, bad scale, or a non-positive field.
    TypeError: a field the model does not have, or of the wrong type.

  Examples:
    >>> model_arch("RCAN", 4, num_groups=2)["num_groups"]
    2
  """
  preset = _preset(model)
  arch = {"model": preset["model"], "scale": scale}
  arch.update((k, v) for k, v in preset.items() if k != "model")
  unknown = set(overrides) - set(arch)
  if unknown:
    fields = sorted(k for k in arch if k not in ("model", "scale"))
    raise TypeError(
        f"{preset['model']} has no architecture field(s) {sorted(unknown)}; its fields: {fields}.")
  arch.update(overrides)
  for key in _INT_FIELDS:
    if key not in arch:
      continue
    value = arch[key]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
      raise TypeError(f"`{key}` must be an int, got {value!r}.")
    if value < 1:
      raise ValueError(f"`{key}` must be positive, got {value}.")
    arch[key] = int(value)
  upsampler_factors(arch["scale"])  # Raises for unsupported scales.
  res_scale = arch["res_scale"]
  if isinstance(res_scale, bool) or not isinstance(res_scale, (int, float, np.floating,
                                                               np.integer)):
    raise TypeError(f"`res_scale` must be a number, got {res_scale!r}.")
  if not math.isfinite(res_scale) or res_scale <= 0:
    raise ValueError(f"`res_scale` must be positive and finite, got {res_scale}.")
  arch["res_scale"] = float(res_scale)
  if "reduction" in arch and arch["num_channels"] // arch["reduction"] < 1:
    raise ValueError(
        f"`reduction` {arch['reduction']} leaves no channel-attention channels for "
        f"num_channels {arch['num_channels']} (num_channels // reduction must be >= 1).")
  return arch


def canonical_arch(arch: Mapping[str, Any]) -> dict[str, Any]:
  """Validates an arch dict (e.g. read from a checkpoint) and fills missing preset fields.

  Raises:
    ValueError: ``arch`` lacks ``model`` or ``scale``, or as ``model_arch``.
    TypeError: as ``model_arch``.
  """
  if not isinstance(arch, Mapping):
    raise TypeError(f"`arch` must be a mapping, got {type(arch).__name__}.")
  for key in ("model", "scale"):
    if key not in arch:
      raise ValueError(f"`arch` lacks the field {key!r}: {dict(arch)!r}.")
  fields = {k: v for k, v in arch.items() if k not in ("model", "scale")}
  return model_arch(arch["model"], arch["scale"], **fields)


def create_model(arch: Mapping[str, Any], *, dtype: Any = jnp.float32) -> nn.Module:
  """The Flax module of ``arch``.

  Args:
    arch: an arch dict (``model_arch``); missing fields take the preset's values.
    dtype: computation dtype, e.g. ``jnp.bfloat16`` on GPU/TPU. Params stay float32 and
      the output is float32.

  Examples:
    >>> create_model(model_arch("EDSR", 4), dtype=jnp.bfloat16).num_channels
    256
  """
  arch = canonical_arch(arch)
  module = _MODULES[arch.pop("model")]
  return module(**arch, dtype=jnp.dtype(dtype))


def abstract_params(arch: Mapping[str, Any]) -> Any:
  """The params pytree of ``arch`` as ``jax.ShapeDtypeStruct`` leaves (nothing computed).

  Examples:
    >>> abstract_params(model_arch("EDSR", 2))["head"]["kernel"].shape  # 3 * 2 * 2 in
    (3, 3, 12, 256)
  """
  cached = _abstract_params(tuple(sorted(canonical_arch(arch).items())))
  return jax.tree.map(lambda leaf: leaf, cached)  # A fresh tree: callers may edit it.


@functools.lru_cache(maxsize=64)
def _abstract_params(arch_items: tuple) -> Any:
  arch = dict(arch_items)
  model = create_model(arch)
  scale = arch["scale"]
  x = jax.ShapeDtypeStruct((1, scale, scale, 3), jnp.float32)
  return jax.eval_shape(lambda x: model.init(jax.random.key(0), x)["params"], x)


def count_params(params: Any) -> int:
  """Number of values in a params pytree (arrays or ``ShapeDtypeStruct`` leaves)."""
  return int(sum(math.prod(np.shape(leaf)) for leaf in jax.tree.leaves(params)))


def official_param_count(arch: Mapping[str, Any]) -> int:
  """What the official code prints as ``# params`` for ``arch``.

  The official ``sum(p.numel() for p in net.parameters())`` counts the frozen ``MeanShift``
  convs (24 values), which are constants here: this is ``count_params`` of our params plus
  ``MEAN_SHIFT_PARAM_COUNT``.
  """
  return count_params(abstract_params(arch)) + MEAN_SHIFT_PARAM_COUNT


def receptive_radius(arch: Mapping[str, Any]) -> int:
  """How many LR pixels away an input pixel can change an output pixel through convolutions.

  An output pixel (in LR pixel cell ``p``) depends only on LR pixels within this Chebyshev
  distance of ``p``; 3x3 convs at the LR resolution add 1 each, those after the pixel
  shuffles add ``1 / resolution``. For RCAN this ignores channel attention, which pools
  over the whole image.

  Examples:
    >>> receptive_radius(model_arch("EDSR-baseline", 4))  # 1 + 2*16 + 1 + 1, plus 3/4 -> 1
    36
  """
  arch = canonical_arch(arch)
  blocks = arch["num_blocks"]
  if arch["model"] == "EDSR":
    lr_convs = 1 + 2 * blocks + 1
  elif arch["model"] == "RCAN":
    lr_convs = 1 + arch["num_groups"] * (2 * blocks + 1) + 1
  else:
    lr_convs = 1 + arch["num_groups"] * 2 * blocks
  radius = fractions.Fraction(lr_convs)
  resolution = 1
  for factor in upsampler_factors(arch["scale"]):
    radius += fractions.Fraction(1, resolution)
    resolution *= factor
  radius += fractions.Fraction(1, resolution)  # The tail conv at the output resolution.
  return math.ceil(radius)
