"""The public training entry: ``train_and_evaluate``, ``train_step`` and what they take.

The code lives in ``cutblur_jax.training`` (one module per concept); this module keeps
``from cutblur_jax import train`` working for users and scripts.

Examples:
  >>> from cutblur_jax import train
  >>> config = train.base_config()
  >>> config.dataset = "embedded"  # doctest: +SKIP
  >>> result = train.train_and_evaluate(config, "/tmp/run")  # doctest: +SKIP
"""

from cutblur_jax.training import (
  NonFiniteLossError,
  OptimizerConfig,
  TrainState,
  TrainingInterrupted,
  abstract_train_state,
  base_config,
  config_summary,
  create_optimizer,
  create_train_state,
  learning_rate_schedule,
  parse_decay,
  random_flip_and_rotate,
  resolve_config,
  train_and_evaluate,
  train_step,
)

__all__ = [
  "NonFiniteLossError",
  "OptimizerConfig",
  "TrainingInterrupted",
  "TrainState",
  "abstract_train_state",
  "base_config",
  "config_summary",
  "create_optimizer",
  "create_train_state",
  "learning_rate_schedule",
  "parse_decay",
  "random_flip_and_rotate",
  "resolve_config",
  "train_and_evaluate",
  "train_step",
]
