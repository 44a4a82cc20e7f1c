"""Flax EDSR, RCAN and CARN, equal to the official CutBlur PyTorch networks.

A network is described by an ``Arch``: a frozen, checked value that reads as the mapping
checkpoints store::

  {"model": "EDSR" | "RCAN" | "CARN", "scale": int, "num_blocks": int, "num_channels": int,
   "res_scale": float, "num_groups": int (RCAN, CARN), "reduction": int (RCAN)}

``model_arch(name, scale, **overrides)`` fills one from the official presets
(``option.py``), ``canonical_arch(mapping)`` checks a stored one, ``create_model(arch)``
builds the Flax module. Each network is one file (``edsr.py``, ``rcan.py``, ``carn.py``)
holding its module and its ``Network`` declaration; ``NETWORKS`` below lists them. Every network takes the
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
from typing import Any, Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import traverse_util

from cutblur_jax.models import carn, edsr, rcan
from cutblur_jax.models.carn import CARN
from cutblur_jax.models.edsr import EDSR
from cutblur_jax.models.layers import (
  DIV2K_RGB_MEAN,
  MEAN_SHIFT_PARAM_COUNT,
  pixel_shuffle,
  space_to_depth,
  upsampler_factors,
)
from cutblur_jax.models.network import ARCH_FIELDS, Arch, Network, torch_conv
from cutblur_jax.models.rcan import RCAN

__all__ = [
  "ARCH_FIELDS",
  "Arch",
  "CARN",
  "DIV2K_RGB_MEAN",
  "EDSR",
  "MEAN_SHIFT_PARAM_COUNT",
  "NETWORKS",
  "Network",
  "PRESETS",
  "RCAN",
  "abstract_params",
  "canonical_arch",
  "check_params",
  "count_params",
  "create_model",
  "model_arch",
  "network",
  "official_param_count",
  "pixel_shuffle",
  "receptive_radius",
  "space_to_depth",
  "torch_parameter_names",
]

# The registry: a new network is one file declaring a `Network`, plus its line here.
NETWORKS: Mapping[str, Network] = {
  net.name: net for net in (edsr.NETWORK, rcan.NETWORK, carn.NETWORK)
}
# Preset name -> its arch fields, "model" included (option.py's make_template, plus
# EDSR-baseline).
PRESETS: Mapping[str, Mapping[str, Any]] = {
  name: {"model": net.name, **fields}
  for net in NETWORKS.values()
  for name, fields in net.presets.items()
}


def network(arch_or_name: Mapping[str, Any] | str) -> Network:
  """The ``Network`` declaration of an arch (or of a network name such as "RCAN")."""
  name = arch_or_name if isinstance(arch_or_name, str) else arch_or_name["model"]
  if name not in NETWORKS:
    raise ValueError(f"Unknown network {name!r}; expected one of {sorted(NETWORKS)}.")
  return NETWORKS[name]


def _preset(name: str) -> tuple[str, Mapping[str, Any]]:
  if not isinstance(name, str):
    raise TypeError(f"`model` must be a string, got {name!r}.")
  for preset_name, preset in PRESETS.items():
    if preset_name.lower() == name.lower():
      return preset_name, preset
  raise ValueError(f"Unknown model {name!r}; expected one of {sorted(PRESETS)}.")


def model_arch(model: str, scale: int, **overrides: Any) -> Arch:
  """The ``Arch`` of a preset (``EDSR``, ``EDSR-baseline``, ``RCAN``, ``CARN``), overridden.

  Args:
    model: preset name (case-insensitive).
    scale: super-resolution factor: 3 or a power of two (1 for same-size restoration).
    **overrides: any architecture field of that model (``num_blocks``, ``num_channels``,
      ``res_scale``, and ``num_groups`` for RCAN/CARN, ``reduction`` for RCAN).

  Returns:
    An ``Arch``: ``model`` (the network: EDSR, RCAN or CARN), ``scale`` and every
    architecture field of that network; ``dict(arch)`` is JSON-serialisable.

  Raises:
    ValueError: unknown model, bad scale, or a non-positive field.
    TypeError: a field the model does not have, or of the wrong type.

  Examples:
    >>> model_arch("RCAN", 4, num_groups=2)["num_groups"]
    2
  """
  _, preset = _preset(model)
  fields = {k: v for k, v in preset.items() if k != "model"}
  unknown = set(overrides) - set(fields)
  if unknown:
    raise TypeError(
      f"{preset['model']} has no architecture field(s) {sorted(unknown)}; "
      f"its fields: {sorted(fields)}."
    )
  fields.update(overrides)
  return Arch(preset["model"], scale, **fields)


def canonical_arch(arch: Mapping[str, Any]) -> Arch:
  """``arch`` as a checked ``Arch`` (e.g. read from a checkpoint); missing fields take presets.

  An ``Arch`` is returned as it is: it was checked when it was built.

  Raises:
    ValueError: ``arch`` lacks ``model`` or ``scale``, or as ``model_arch``.
    TypeError: as ``model_arch``.
  """
  if isinstance(arch, Arch):
    return arch
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
    arch: an ``Arch`` or arch dict (``model_arch``); missing fields take the preset's values.
    dtype: computation dtype, e.g. ``jnp.bfloat16`` on GPU/TPU. Params stay float32 and
      the output is float32.

  Examples:
    >>> create_model(model_arch("EDSR", 4), dtype=jnp.bfloat16).num_channels
    256
  """
  arch = canonical_arch(arch)
  fields = {k: v for k, v in arch.items() if k != "model"}
  return network(arch).module(**fields, dtype=jnp.dtype(dtype))


def abstract_params(arch: Mapping[str, Any]) -> Any:
  """The params pytree of ``arch`` as ``jax.ShapeDtypeStruct`` leaves (nothing computed).

  Examples:
    >>> abstract_params(model_arch("EDSR", 2))["head"]["kernel"].shape  # 3 * 2 * 2 in
    (3, 3, 12, 256)
  """
  cached = _abstract_params(canonical_arch(arch))
  return jax.tree.map(lambda leaf: leaf, cached)  # A fresh tree: callers may edit it.


@functools.lru_cache(maxsize=64)
def _abstract_params(arch: Arch) -> Any:
  model = create_model(arch)
  x = jax.ShapeDtypeStruct((1, arch.scale, arch.scale, 3), jnp.float32)
  return jax.eval_shape(lambda x: model.init(jax.random.key(0), x)["params"], x)


def _flat_params(tree: Any) -> dict[str, Any]:
  return traverse_util.flatten_dict(dict(tree), sep="/")


def _leaf_shape(leaf: Any) -> tuple[int, ...]:
  """The shape of an array, a ``ShapeDtypeStruct`` or orbax's stored ``ArrayMetadata``."""
  return tuple(leaf.shape) if hasattr(leaf, "shape") else np.shape(leaf)


def check_params(params: Any, arch: Mapping[str, Any]) -> None:
  """Raises ValueError unless ``params`` has exactly the tensors and shapes of ``arch``.

  ``params`` may hold arrays or anything with a ``shape`` (``jax.ShapeDtypeStruct``, orbax
  metadata).
  """
  expected = _flat_params(abstract_params(arch))
  given = _flat_params(params)
  missing, extra = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
  if missing:
    raise ValueError(f"Params lack {missing[:8]} of {dict(arch)}.")
  if extra:
    raise ValueError(f"Params have {extra[:8]}, which {dict(arch)} does not have.")
  for name, leaf in given.items():
    if _leaf_shape(leaf) != tuple(expected[name].shape):
      raise ValueError(
        f"Param {name!r} has shape {_leaf_shape(leaf)}, expected "
        f"{tuple(expected[name].shape)} for {dict(arch)}."
      )


def count_params(params: Any) -> int:
  """Number of values in a params pytree (arrays or ``ShapeDtypeStruct`` leaves)."""
  return int(sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params)))


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
  radius = fractions.Fraction(network(arch).body_convs(arch))
  resolution = 1
  for factor in upsampler_factors(arch.scale):
    radius += fractions.Fraction(1, resolution)
    resolution *= factor
  radius += fractions.Fraction(1, resolution)  # The tail conv at the output resolution.
  return math.ceil(radius)


def _head_and_tail_torch_names(arch: Arch) -> Iterator[tuple[str, tuple]]:
  yield from torch_conv("head.1", ("head",))
  for stage in range(len(upsampler_factors(arch.scale))):
    # The official Upsampler alternates conv and PixelShuffle: convs at even indices.
    yield from torch_conv(f"tail.0.{2 * stage}", ("upsampler", f"conv_{stage}"))
  yield from torch_conv("tail.1", ("tail",))


def torch_parameter_names(arch: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
  """Official ``state_dict`` name -> Flax params path, for every trainable tensor of ``arch``.

  The official mean-shift tensors have no Flax counterpart (they are constants here).
  """
  arch = canonical_arch(arch)
  names = dict(_head_and_tail_torch_names(arch))
  names.update(network(arch).body_torch_names(arch))
  return names
