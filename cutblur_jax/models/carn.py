"""CARN (Ahn et al., 2018) as the official CutBlur code builds it (``model/carn.py``).

Cascading residual network: inside each group, every residual block's output is
concatenated to all earlier features and fused back to ``num_channels`` by a 1x1 conv; the
groups cascade the same way. Flax parameter names and their official counterparts
(``g`` group, ``b`` block, both from 0; the official names count from 1):

===============================  ==============================
Flax                             official ``state_dict``
===============================  ==============================
``head``                         ``head.1``
``groups_{g}/blocks_{b}/conv_0`` ``b{g+1}.b{b+1}.body.0``
``groups_{g}/blocks_{b}/conv_1`` ``b{g+1}.b{b+1}.body.2``
``groups_{g}/fusions_{b}``       ``b{g+1}.c{b+1}``
``fusions_{g}``                  ``c{g+1}``
``upsampler/conv_{k}``, ``tail`` ``tail.0.{2k}``, ``tail.1``
===============================  ==============================

The official network builds its groups without passing ``res_scale`` (always 1.0, the
preset's value); here ``res_scale`` reaches the blocks, which is the same network at 1.0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from cutblur_jax.models.layers import Dtype, ResBlock, SRNetwork, conv
from cutblur_jax.models.network import Network, torch_conv


class CascadingGroup(nn.Module):
  """Official CARN ``Group``: blocks whose outputs cascade through 1x1 fusion convs."""

  features: int
  num_blocks: int
  res_scale: float = 1.0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    cascade = out = x
    for index in range(self.num_blocks):
      block = ResBlock(self.features, self.res_scale, dtype=self.dtype, name=f"blocks_{index}")(
        out, mask
      )
      cascade = jnp.concatenate([cascade, block], axis=-1)
      out = conv(self.features, 1, cascade.shape[-1], dtype=self.dtype, name=f"fusions_{index}")(
        cascade
      )
    return out


class CARN(SRNetwork):
  """CARN; the defaults are the official preset (3 groups x 3 blocks x 64 channels).

  Attributes:
    scale: super-resolution factor (1, 2, 3, 4, 8, ...).
    num_channels: feature channels.
    dtype: computation dtype (params stay float32; the output is float32).
    num_groups: cascading groups.
    num_blocks: residual blocks per group.
    res_scale: multiplier of each block's residual branch (1.0 in the official network).

  Examples:
    >>> model = CARN(scale=2, num_groups=2, num_blocks=2, num_channels=8)
    >>> x = jnp.zeros((1, 16, 24, 3))
    >>> model.apply(model.init(jax.random.key(0), x), x).shape
    (1, 16, 24, 3)
  """

  scale: int = 4
  num_channels: int = 64
  num_groups: int = 3
  num_blocks: int = 3
  res_scale: float = 1.0

  def body(self, x: jax.Array, mask: jax.Array | None) -> jax.Array:
    cascade = out = x
    for index in range(self.num_groups):
      group = CascadingGroup(
        self.num_channels, self.num_blocks, self.res_scale, dtype=self.dtype, name=f"groups_{index}"
      )(out, mask)
      cascade = jnp.concatenate([cascade, group], axis=-1)
      out = conv(
        self.num_channels, 1, cascade.shape[-1], dtype=self.dtype, name=f"fusions_{index}"
      )(cascade)
    return out


def _body_torch_names(arch):
  for g in range(arch.num_groups):
    for b in range(arch.num_blocks):
      yield from torch_conv(f"b{g + 1}.b{b + 1}.body.0", (f"groups_{g}", f"blocks_{b}", "conv_0"))
      yield from torch_conv(f"b{g + 1}.b{b + 1}.body.2", (f"groups_{g}", f"blocks_{b}", "conv_1"))
      yield from torch_conv(f"b{g + 1}.c{b + 1}", (f"groups_{g}", f"fusions_{b}"))
    yield from torch_conv(f"c{g + 1}", (f"fusions_{g}",))


NETWORK = Network(
  name="CARN",
  module=CARN,
  presets={"CARN": {"num_groups": 3, "num_blocks": 3, "num_channels": 64, "res_scale": 1.0}},
  body_torch_names=_body_torch_names,
  body_convs=lambda arch: 1 + arch.num_groups * 2 * arch.num_blocks,
  train_presets={"batch_size": 64, "decay": "400"},
  fixed_for_torch={"res_scale": 1.0},
)  # the official CARN's blocks always use 1.0
