"""RCAN (Zhang et al., 2018) as the official CutBlur code builds it (``model/rcan.py``).

Residual groups of residual channel-attention blocks (RCAB); each group and the body end
with a conv, and each adds its input back. Flax parameter names and their official
counterparts (``g`` group, ``b`` block):

==========================================  ==========================================
Flax                                        official ``state_dict``
==========================================  ==========================================
``head``                                    ``head.1``
``groups_{g}/blocks_{b}/conv_0``            ``body.{g}.body.{b}.body.0``
``groups_{g}/blocks_{b}/conv_1``            ``body.{g}.body.{b}.body.2``
``groups_{g}/blocks_{b}/attention/squeeze`` ``body.{g}.body.{b}.body.3.conv_du.0``
``groups_{g}/blocks_{b}/attention/excite``  ``body.{g}.body.{b}.body.3.conv_du.2``
``groups_{g}/conv``                         ``body.{g}.body.{num_blocks}``
``body_conv``                               ``body.{num_groups}``
``upsampler/conv_{k}``, ``tail``            ``tail.0.{2k}``, ``tail.1``
==========================================  ==========================================

Channel attention pools over the whole image, so RCAN's output at a pixel depends on every
pixel: tiled inference is close to, but not equal to, whole-image inference. With a
``valid_size`` region the pooling is over that region only, so padding stays exact.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from cutblur_jax.models.layers import Dtype, SRNetwork, conv, conv_relu_conv, masked
from cutblur_jax.models.network import Network, torch_conv


class ChannelAttention(nn.Module):
  """Official ``CALayer``: global mean -> 1x1 conv C/r -> ReLU -> 1x1 conv C -> sigmoid, x*y."""

  features: int
  reduction: int = 16
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    # The mean in float32: a bfloat16 sum over a large image would lose the small terms.
    x32 = x.astype(jnp.float32)
    if mask is None:
      y = jnp.mean(x32, axis=(1, 2), keepdims=True)
    else:
      mask32 = mask.astype(jnp.float32)
      y = jnp.sum(x32 * mask32, axis=(1, 2), keepdims=True) / jnp.maximum(
        jnp.sum(mask32, axis=(1, 2), keepdims=True), 1.0
      )
    y = y.astype(self.dtype)
    hidden = self.features // self.reduction
    y = nn.relu(conv(hidden, 1, self.features, dtype=self.dtype, name="squeeze")(y))
    y = nn.sigmoid(conv(self.features, 1, hidden, dtype=self.dtype, name="excite")(y))
    return x * y


class RCAB(nn.Module):
  """Official ``RCAB``: conv3x3 -> ReLU -> conv3x3 -> channel attention, scaled, plus input."""

  features: int
  reduction: int = 16
  res_scale: float = 1.0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    h = conv_relu_conv(x, mask, self.features, dtype=self.dtype)
    h = ChannelAttention(self.features, self.reduction, dtype=self.dtype, name="attention")(h, mask)
    return h * self.res_scale + x


class ResidualGroup(nn.Module):
  """Official ``Group``: ``num_blocks`` RCABs and a conv, plus the group's input."""

  features: int
  num_blocks: int
  reduction: int = 16
  res_scale: float = 1.0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    h = x
    for index in range(self.num_blocks):
      h = RCAB(
        self.features, self.reduction, self.res_scale, dtype=self.dtype, name=f"blocks_{index}"
      )(h, mask)
    c = self.features
    return conv(c, 3, c, dtype=self.dtype, name="conv")(masked(h, mask)) + x


class RCAN(SRNetwork):
  """RCAN; the defaults are the official preset (10 groups x 20 blocks x 64, reduction 16).

  Attributes:
    scale: super-resolution factor (1, 2, 3, 4, 8, ...).
    num_channels: feature channels.
    dtype: computation dtype (params stay float32; the output is float32).
    num_groups: residual groups.
    num_blocks: RCABs per group.
    reduction: channel-attention bottleneck (``num_channels // reduction`` channels).
    res_scale: multiplier of each RCAB's residual branch.

  Examples:
    >>> model = RCAN(scale=2, num_groups=2, num_blocks=2, num_channels=16, reduction=4)
    >>> x = jnp.zeros((1, 16, 24, 3))
    >>> model.apply(model.init(jax.random.key(0), x), x).shape
    (1, 16, 24, 3)
  """

  scale: int = 4
  num_channels: int = 64
  num_groups: int = 10
  num_blocks: int = 20
  reduction: int = 16
  res_scale: float = 1.0

  def body(self, x: jax.Array, mask: jax.Array | None) -> jax.Array:
    for index in range(self.num_groups):
      x = ResidualGroup(
        self.num_channels,
        self.num_blocks,
        self.reduction,
        self.res_scale,
        dtype=self.dtype,
        name=f"groups_{index}",
      )(x, mask)
    c = self.num_channels
    return conv(c, 3, c, dtype=self.dtype, name="body_conv")(masked(x, mask))


def _body_torch_names(arch):
  groups, blocks = arch.num_groups, arch.num_blocks
  for g in range(groups):
    for b in range(blocks):
      torch_block, flax_block = f"body.{g}.body.{b}", (f"groups_{g}", f"blocks_{b}")
      yield from torch_conv(f"{torch_block}.body.0", flax_block + ("conv_0",))
      yield from torch_conv(f"{torch_block}.body.2", flax_block + ("conv_1",))
      yield from torch_conv(
        f"{torch_block}.body.3.conv_du.0", flax_block + ("attention", "squeeze")
      )
      yield from torch_conv(f"{torch_block}.body.3.conv_du.2", flax_block + ("attention", "excite"))
    yield from torch_conv(f"body.{g}.body.{blocks}", (f"groups_{g}", "conv"))
  yield from torch_conv(f"body.{groups}", ("body_conv",))


NETWORK = Network(
  name="RCAN",
  module=RCAN,
  presets={
    "RCAN": {
      "num_groups": 10,
      "num_blocks": 20,
      "num_channels": 64,
      "reduction": 16,
      "res_scale": 1.0,
    }
  },
  body_torch_names=_body_torch_names,
  body_convs=lambda arch: 1 + arch.num_groups * (2 * arch.num_blocks + 1) + 1,
  train_presets={"num_train_steps": 1_000_000, "decay": "200-400-600-800"},
  pretrain_gclip=0.5,
  # The preset's conv receptive field (414 LR pixels) is far wider than useful context,
  # and channel attention sees the whole input anyway: tiles are approximate for RCAN.
  max_tile_overlap=48,
)
