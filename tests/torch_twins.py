"""Test helpers around ``torch_networks`` (the PyTorch twins): random weights for both frameworks."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from torch_networks import (  # noqa: F401  # re-exported for the tests
  DownBlock,
  MeanShift,
  build_twin,
  official_param_count,
)


def randomize(net: nn.Module, seed: int = 0) -> nn.Module:
  """Fills every trainable tensor with N(0, 1/fan_in)-ish values so outputs are not tiny.

  Biases get a visible spread too, so a swapped bias would show; MeanShift stays standard.
  """
  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, parameter in net.named_parameters():
      if "mean" in name.split(".")[0]:
        continue
      if parameter.ndim == 4:
        fan_in = parameter.shape[1] * parameter.shape[2] * parameter.shape[3]
        parameter.copy_(torch.randn(parameter.shape, generator=generator) / fan_in**0.5)
      else:
        parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
  return net


def random_flax_params(arch: Mapping[str, Any], seed: int = 0) -> dict:
  """Random Flax params for ``arch`` drawn with NumPy, scaled as ``randomize`` does.

  Tests use these instead of ``model.init``: compiling JAX's threefry sampler for every
  parameter shape costs seconds per shape on a small CPU.
  """
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  from cutblur_jax import models  # pylint: disable=import-outside-toplevel

  rng = np.random.default_rng(seed)

  def draw(leaf):
    if len(leaf.shape) == 4:
      fan_in = leaf.shape[0] * leaf.shape[1] * leaf.shape[2]
      return (rng.standard_normal(leaf.shape) / fan_in**0.5).astype(np.float32)
    return (rng.standard_normal(leaf.shape) * 0.1).astype(np.float32)

  return jax.tree.map(draw, models.abstract_params(arch))
