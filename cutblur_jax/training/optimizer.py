"""The optimizer: Adam with the reference's multi-step decay, and optional clip by value.

``solver.py`` builds ``torch.optim.Adam(lr, betas=(0.9, 0.999), eps=1e-8)`` and a
``MultiStepLR(milestones, gamma)`` stepped after every update, and clips gradients by
value when ``gclip > 0``. ``create_optimizer(OptimizerConfig(...))`` is the same as one
optax chain; ``OptimizerConfig`` is hashable, so it can be a static field of the train
state and two states built alike share one compiled step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import optax

from cutblur_jax.training.config import parse_decay

__all__ = ["OptimizerConfig", "create_optimizer", "learning_rate_schedule"]


class OptimizerConfig(NamedTuple):
  """Adam with ``torch.optim.lr_scheduler.MultiStepLR`` decay, and optional clip by value.

  Attributes:
    learning_rate: the initial learning rate (``lr``).
    milestones: update counts at which the rate is multiplied by ``gamma``.
    gamma: decay factor.
    gclip: clip every gradient entry to ``[-gclip, gclip]`` (0 disables).
    b1, b2, eps: Adam's (PyTorch's defaults, as ``solver.py``).
  """

  learning_rate: float = 1e-4
  milestones: tuple[int, ...] = (200_000, 400_000, 600_000)
  gamma: float = 0.5
  gclip: float = 0.0
  b1: float = 0.9
  b2: float = 0.999
  eps: float = 1e-8

  @classmethod
  def from_config(cls, config: Any) -> "OptimizerConfig":
    """From a resolved config's ``lr``, ``decay``, ``gamma`` and ``gclip``."""
    return cls(
      learning_rate=float(config.lr),
      milestones=parse_decay(config.decay),
      gamma=float(config.gamma),
      gclip=float(config.gclip),
    )


def learning_rate_schedule(optimizer: OptimizerConfig) -> optax.Schedule:
  """The learning rate of update ``count``: ``lr * gamma ** (milestones <= count)``.

  Equals PyTorch's ``MultiStepLR`` stepped once after every optimizer step, as
  ``solver.py`` does: update number ``200000`` (0-based) already uses the decayed rate.

  Examples:
    >>> schedule = learning_rate_schedule(OptimizerConfig(1e-4, (2, 4), 0.5))
    >>> [round(float(schedule(i)) * 1e5, 3) for i in (0, 1, 2, 4)]
    [10.0, 10.0, 5.0, 2.5]
  """
  return optax.piecewise_constant_schedule(
    optimizer.learning_rate, {int(m): float(optimizer.gamma) for m in optimizer.milestones}
  )


def create_optimizer(optimizer: OptimizerConfig) -> optax.GradientTransformation:
  """``optax.clip(gclip)`` (when ``gclip > 0``) then Adam with ``learning_rate_schedule``.

  Examples:
    >>> tx = create_optimizer(OptimizerConfig(gclip=0.5))
    >>> state = tx.init({"w": jnp.zeros(3)})
  """
  adam = optax.adam(
    learning_rate_schedule(optimizer), b1=optimizer.b1, b2=optimizer.b2, eps=optimizer.eps
  )
  if optimizer.gclip > 0:
    return optax.chain(optax.clip(optimizer.gclip), adam)
  return adam
