"""What a network file declares (``Network``) and the architecture value (``Arch``).

Each network lives in one file that defines its Flax module and one ``Network``: its
presets, the official PyTorch name of every parameter, how many LR-resolution 3x3 convs
its body chains (its receptive radius), and its training presets. ``models/__init__.py``
lists the networks; adding one is a new file plus a line there.

``Arch`` is the architecture as one typed, frozen, hashable value, checked once when it
is built. It is a read-only ``dict`` of its set fields, so it is the ``arch`` JSON that
checkpoints store (``{"model", "scale", "num_blocks", ...}``) as it is.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from cutblur_jax.models.layers import upsampler_factors

__all__ = ["ARCH_FIELDS", "Arch", "Network", "torch_conv"]

# Every architecture field any network has, beside "model" and "scale".
ARCH_FIELDS = ("num_blocks", "num_channels", "res_scale", "num_groups", "reduction")
_INT_FIELDS = ("scale", "num_blocks", "num_channels", "num_groups", "reduction")


def _read_only(self, *args, **kwargs):
  raise TypeError("An Arch is immutable; use arch.replace(field=value) or dict(arch).")


class Arch(dict):
  """One network's architecture: ``model`` (EDSR, RCAN or CARN), ``scale`` and its sizes.

  Build it with ``models.model_arch`` (presets) or ``models.canonical_arch`` (a stored
  dict); every field is checked once, here. It is a read-only, hashable ``dict`` of its
  set fields, so it serialises to the checkpoints' ``arch`` JSON as it is, and its fields
  read as attributes too (``arch.scale``; ``None`` for a field the network lacks).

  Examples:
    >>> arch = Arch("EDSR", 2, num_blocks=2, num_channels=8, res_scale=1.0)
    >>> arch.scale, arch["num_blocks"], arch.num_groups
    (2, 2, None)
    >>> arch.replace(scale=4) == {**arch, "scale": 4}
    True
  """

  __slots__ = ()

  def __init__(
    self,
    model: str,
    scale: int,
    *,
    num_blocks: int,
    num_channels: int,
    res_scale: float,
    num_groups: int | None = None,
    reduction: int | None = None,
  ):
    fields = {
      "model": str(model),
      "scale": scale,
      "num_blocks": num_blocks,
      "num_channels": num_channels,
      "res_scale": res_scale,
      "num_groups": num_groups,
      "reduction": reduction,
    }
    for key in _INT_FIELDS:
      value = fields[key]
      if value is None and key in ("num_groups", "reduction"):
        continue
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{key}` must be an int, got {value!r}.")
      if value < 1:
        raise ValueError(f"`{key}` must be positive, got {value}.")
      fields[key] = int(value)
    upsampler_factors(fields["scale"])  # raises for unsupported scales
    if isinstance(res_scale, bool) or not isinstance(
      res_scale, (int, float, np.floating, np.integer)
    ):
      raise TypeError(f"`res_scale` must be a number, got {res_scale!r}.")
    if not math.isfinite(res_scale) or res_scale <= 0:
      raise ValueError(f"`res_scale` must be positive and finite, got {res_scale}.")
    fields["res_scale"] = float(res_scale)
    if reduction is not None and fields["num_channels"] // fields["reduction"] < 1:
      raise ValueError(
        f"`reduction` {reduction} leaves no channel-attention channels for "
        f"num_channels {num_channels} (num_channels // reduction must be >= 1)."
      )
    super().__init__({k: v for k, v in fields.items() if v is not None})

  model = property(lambda self: self["model"])
  scale = property(lambda self: self["scale"])
  num_blocks = property(lambda self: self["num_blocks"])
  num_channels = property(lambda self: self["num_channels"])
  res_scale = property(lambda self: self["res_scale"])
  num_groups = property(lambda self: self.get("num_groups"))
  reduction = property(lambda self: self.get("reduction"))

  __setitem__ = __delitem__ = __ior__ = _read_only
  clear = pop = popitem = setdefault = update = _read_only

  def __hash__(self) -> int:  # type: ignore[override]
    return hash(tuple(sorted(self.items())))

  def __reduce__(self):
    return _arch_from_dict, (dict(self),)

  def __repr__(self) -> str:
    return f"Arch({dict.__repr__(self)})"

  def replace(self, **changes: Any) -> "Arch":
    """A copy with ``changes`` (checked again)."""
    return _arch_from_dict({**self, **changes})


def _arch_from_dict(fields: Mapping[str, Any]) -> Arch:
  fields = dict(fields)
  return Arch(fields.pop("model"), fields.pop("scale"), **fields)


def torch_conv(torch_prefix: str, flax_path: tuple[str, ...]) -> Iterator[tuple[str, tuple]]:
  """The official ``<prefix>.weight``/``.bias`` names of one conv, with their Flax paths."""
  yield f"{torch_prefix}.weight", flax_path + ("kernel",)
  yield f"{torch_prefix}.bias", flax_path + ("bias",)


@dataclasses.dataclass(frozen=True)
class Network:
  """A network family as its file declares it.

  Attributes:
    name: the ``model`` value in an ``Arch`` ("EDSR").
    module: the Flax module class; ``module(**fields, dtype=...)`` builds it.
    presets: preset name -> its fields (``option.py``'s ``make_template``); the preset
      named like the network is its default.
    body_torch_names: ``arch -> (torch name, Flax path)`` pairs of the body's parameters
      (head, upsampler and tail are common to every network).
    body_convs: ``arch ->`` the number of 3x3 convs at LR resolution from head to body end.
    train_presets: ``option.py``'s training presets for the network, over the defaults.
    pretrain_gclip: the gradient clip the reference uses when fine-tuning it (0: none).
    max_tile_overlap: cap on the tile overlap of inference, for networks whose
      receptive field is wider than useful (None: the whole receptive radius).
    fixed_for_torch: fields the official network does not read, with the value it uses.
  """

  name: str
  module: type
  presets: Mapping[str, Mapping[str, Any]]
  body_torch_names: Callable[[Arch], Iterator[tuple[str, tuple]]]
  body_convs: Callable[[Arch], int]
  train_presets: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  pretrain_gclip: float = 0.0
  max_tile_overlap: int | None = None
  fixed_for_torch: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def fields(self) -> tuple[str, ...]:
    """The architecture fields this network has (beside ``model`` and ``scale``)."""
    return tuple(k for k in ARCH_FIELDS if k in self.presets[self.name])
