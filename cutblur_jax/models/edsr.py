"""EDSR (Lim et al., 2017) as the official CutBlur code builds it (``model/edsr.py``).

Residual blocks without batch norm, scaled by ``res_scale``; a conv closes the body and a
global skip adds the head's output. Flax parameter names and their official counterparts:

=====================  ====================================
Flax                   official ``state_dict``
=====================  ====================================
``head``               ``head.1``
``blocks_{i}/conv_0``  ``body.{i}.body.0``
``blocks_{i}/conv_1``  ``body.{i}.body.2``
``body_conv``          ``body.{num_blocks}``
``upsampler/conv_{k}`` ``tail.0.{2k}``
``tail``               ``tail.1``
=====================  ====================================
"""

from __future__ import annotations

import jax

from cutblur_jax.models.layers import ResBlock, SRNetwork, conv, masked
from cutblur_jax.models.network import Network, torch_conv


class EDSR(SRNetwork):
  """EDSR; the defaults are the official preset (32 blocks x 256 channels, res_scale 0.1).

  Attributes:
    scale: super-resolution factor (1, 2, 3, 4, 8, ...).
    num_channels: feature channels.
    dtype: computation dtype (params stay float32; the output is float32).
    num_blocks: residual blocks.
    res_scale: multiplier of each block's residual branch.

  Examples:
    >>> model = EDSR(scale=2, num_blocks=2, num_channels=8)
    >>> x = jnp.zeros((1, 16, 24, 3))
    >>> model.apply(model.init(jax.random.key(0), x), x).shape
    (1, 16, 24, 3)
  """

  scale: int = 4
  num_channels: int = 256
  num_blocks: int = 32
  res_scale: float = 0.1

  def body(self, x: jax.Array, mask: jax.Array | None) -> jax.Array:
    for index in range(self.num_blocks):
      x = ResBlock(self.num_channels, self.res_scale, dtype=self.dtype, name=f"blocks_{index}")(
        x, mask
      )
    c = self.num_channels
    return conv(c, 3, c, dtype=self.dtype, name="body_conv")(masked(x, mask))


def _body_torch_names(arch):
  blocks = arch.num_blocks
  for b in range(blocks):
    yield from torch_conv(f"body.{b}.body.0", (f"blocks_{b}", "conv_0"))
    yield from torch_conv(f"body.{b}.body.2", (f"blocks_{b}", "conv_1"))
  yield from torch_conv(f"body.{blocks}", ("body_conv",))


NETWORK = Network(
  name="EDSR",
  module=EDSR,
  presets={
    "EDSR": {"num_blocks": 32, "num_channels": 256, "res_scale": 0.1},
    # Lim et al.'s small EDSR.
    "EDSR-baseline": {"num_blocks": 16, "num_channels": 64, "res_scale": 1.0},
  },
  body_torch_names=_body_torch_names,
  body_convs=lambda arch: 1 + 2 * arch.num_blocks + 1,
)
