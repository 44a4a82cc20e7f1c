"""The official CutBlur networks in PyTorch (``model/{ops,edsr,rcan,carn}.py``'s layout).

Written from the reference's description, not copied: the module tree is laid out so
that ``state_dict()`` has exactly the official parameter names and shapes, and
``forward`` computes what the official networks compute (NCHW, [0, 255]). An official
checkpoint loads with ``load_state_dict(..., strict=True)``, and so does
``cutblur_jax.convert.flax_to_torch(params, arch)``: a model trained here runs in PyTorch.
The tests compare the Flax networks against these; ``benchmarks/`` times them. A test
oracle, so it lives with the tests (``tests/``), not in the package.

``build_twin(arch)`` takes the same arch as ``cutblur_jax.models.create_model``. Needs
the optional ``torch`` extra.

Examples:
  >>> net = build_twin(models.model_arch("EDSR", 2, num_blocks=2, num_channels=8))  # doctest: +SKIP
  >>> net.load_state_dict({k: torch.from_numpy(v) for k, v in
  ...                      convert.flax_to_torch(params, arch).items()})  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class MeanShift(nn.Conv2d):
  """A frozen 1x1 conv: identity weight, bias ``sign * 255 * mean`` (as in ``ops.py``)."""

  def __init__(self, sign: int):
    super().__init__(3, 3, kernel_size=1)
    self.weight.data = torch.eye(3).reshape(3, 3, 1, 1)
    self.bias.data = sign * 255 * torch.tensor(DIV2K_RGB_MEAN, dtype=torch.float32)
    for parameter in self.parameters():
      parameter.requires_grad = False


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
  return nn.Conv2d(in_channels, out_channels, 3, 1, 1)


def conv1x1(in_channels: int, out_channels: int) -> nn.Conv2d:
  return nn.Conv2d(in_channels, out_channels, 1, 1, 0)


class DownBlock(nn.Module):
  """Space-to-depth by reshaping NCHW to (n, c, h/s, s, w/s, s) and moving (s, s) first."""

  def __init__(self, scale: int):
    super().__init__()
    self.scale = scale

  def forward(self, x):
    n, c, h, w = x.shape
    s = self.scale
    x = x.view(n, c, h // s, s, w // s, s).permute(0, 3, 5, 1, 2, 4).contiguous()
    return x.view(n, c * s * s, h // s, w // s)


class ResBlock(nn.Module):
  def __init__(self, channels: int, res_scale: float = 1.0):
    super().__init__()
    self.body = nn.Sequential(
      conv3x3(channels, channels), nn.ReLU(inplace=True), conv3x3(channels, channels)
    )
    self.res_scale = res_scale

  def forward(self, x):
    return self.body(x) * self.res_scale + x


class Upsampler(nn.Sequential):
  def __init__(self, channels: int, scale: int):
    layers = []
    if scale & (scale - 1) == 0:
      for _ in range(scale.bit_length() - 1):
        layers += [conv3x3(channels, 4 * channels), nn.PixelShuffle(2)]
    elif scale == 3:
      layers += [conv3x3(channels, 9 * channels), nn.PixelShuffle(3)]
    else:
      raise ValueError(scale)
    super().__init__(*layers)


def _head_and_tail(arch: Mapping[str, Any]) -> tuple[nn.Sequential, nn.Sequential]:
  scale, channels = arch["scale"], arch["num_channels"]
  head = nn.Sequential(DownBlock(scale), conv3x3(3 * scale * scale, channels))
  tail = nn.Sequential(Upsampler(channels, scale), conv3x3(channels, 3))
  return head, tail


class _ResidualTwin(nn.Module):
  """The official EDSR and RCAN layout: mean shift, head, ``units`` + conv with a skip, tail."""

  def __init__(self, arch: Mapping[str, Any], units: list[nn.Module]):
    super().__init__()
    channels = arch["num_channels"]
    self.sub_mean = MeanShift(-1)
    self.add_mean = MeanShift(+1)
    head, tail = _head_and_tail(arch)
    self.head = head  # in the official order of state_dict keys: head, body, tail
    self.body = nn.Sequential(*units, conv3x3(channels, channels))
    self.tail = tail

  def forward(self, x):
    x = self.head(self.sub_mean(x))
    x = self.body(x) + x
    return self.add_mean(self.tail(x))


class EDSRTwin(_ResidualTwin):
  def __init__(self, arch: Mapping[str, Any]):
    super().__init__(
      arch, [ResBlock(arch["num_channels"], arch["res_scale"]) for _ in range(arch["num_blocks"])]
    )


class CALayer(nn.Module):
  def __init__(self, channels: int, reduction: int):
    super().__init__()
    self.avg_pool = nn.AdaptiveAvgPool2d(1)
    self.conv_du = nn.Sequential(
      conv1x1(channels, channels // reduction),
      nn.ReLU(inplace=True),
      conv1x1(channels // reduction, channels),
      nn.Sigmoid(),
    )

  def forward(self, x):
    return x * self.conv_du(self.avg_pool(x))


class RCAB(nn.Module):
  def __init__(self, channels: int, reduction: int, res_scale: float):
    super().__init__()
    self.body = nn.Sequential(
      conv3x3(channels, channels),
      nn.ReLU(inplace=True),
      conv3x3(channels, channels),
      CALayer(channels, reduction),
    )
    self.res_scale = res_scale

  def forward(self, x):
    return self.body(x) * self.res_scale + x


class RCANGroup(nn.Module):
  def __init__(self, channels: int, num_blocks: int, reduction: int, res_scale: float):
    super().__init__()
    blocks = [RCAB(channels, reduction, res_scale) for _ in range(num_blocks)]
    self.body = nn.Sequential(*blocks, conv3x3(channels, channels))

  def forward(self, x):
    return self.body(x) + x


class RCANTwin(_ResidualTwin):
  def __init__(self, arch: Mapping[str, Any]):
    super().__init__(
      arch,
      [
        RCANGroup(arch["num_channels"], arch["num_blocks"], arch["reduction"], arch["res_scale"])
        for _ in range(arch["num_groups"])
      ],
    )


class CARNGroup(nn.Module):
  """Blocks ``b1..bN`` and fusion convs ``c1..cN`` registered as attributes, as officially."""

  def __init__(self, channels: int, num_blocks: int, res_scale: float = 1.0):
    super().__init__()
    self.num_blocks = num_blocks
    for index in range(1, num_blocks + 1):
      self.add_module(f"b{index}", ResBlock(channels, res_scale))
      self.add_module(f"c{index}", conv1x1(channels * (index + 1), channels))

  def forward(self, x):
    cascade = out = x
    for index in range(1, self.num_blocks + 1):
      block = getattr(self, f"b{index}")(out)
      cascade = torch.cat([cascade, block], dim=1)
      out = getattr(self, f"c{index}")(cascade)
    return out


class CARNTwin(nn.Module):
  def __init__(self, arch: Mapping[str, Any]):
    super().__init__()
    channels = arch["num_channels"]
    self.num_groups = arch["num_groups"]
    self.sub_mean = MeanShift(-1)
    self.add_mean = MeanShift(+1)
    head, tail = _head_and_tail(arch)
    # Registration order as officially (state_dict order): c_g, b_g per group, head, tail.
    # The official groups never receive res_scale (always 1.0).
    for index in range(1, self.num_groups + 1):
      self.add_module(f"c{index}", conv1x1(channels * (index + 1), channels))
      self.add_module(f"b{index}", CARNGroup(channels, arch["num_blocks"]))
    self.head = head
    self.tail = tail

  def forward(self, x):
    x = self.head(self.sub_mean(x))
    cascade = out = x
    for index in range(1, self.num_groups + 1):
      group = getattr(self, f"b{index}")(out)
      cascade = torch.cat([cascade, group], dim=1)
      out = getattr(self, f"c{index}")(cascade)
    return self.add_mean(self.tail(out + x))


_TWINS = {"EDSR": EDSRTwin, "RCAN": RCANTwin, "CARN": CARNTwin}


def build_twin(arch: Mapping[str, Any]) -> nn.Module:
  """The PyTorch twin of ``arch`` in eval mode, with torch's default random init."""
  return _TWINS[arch["model"]](arch).eval()


def official_param_count(arch: Mapping[str, Any]) -> int:
  """``sum(p.numel() for p in net.parameters())`` as the official solver prints it.

  Built on the meta device: no memory, no init, fast even for the full EDSR and RCAN.
  """
  with torch.device("meta"):
    net = _TWINS[arch["model"]](arch)
  return sum(parameter.numel() for parameter in net.parameters())
