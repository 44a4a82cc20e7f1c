"""Training: config, optimizer, state, the fused step, the loop, checkpoints and logs.

One module per concept, each importable alone:

* ``training.config``: ``base_config`` (every field with its default).
* ``training.recipe``: ``resolve_recipe`` and ``resolve_config``, the config checked and
  resolved once (the reference's presets, ``training.presets``) into a frozen ``Recipe``.
* ``training.optimizer``: ``OptimizerConfig`` and the optax chain it builds.
* ``training.state``: ``TrainState`` and ``create_train_state``.
* ``training.step``: ``train_step``, one XLA program.
* ``training.loop``: ``train_and_evaluate(config, workdir)``.
* ``training.checkpoints``: the ``latest`` and ``best`` orbax managers of a work directory.
* ``training.logs``: ``metrics.jsonl`` and TensorBoard.

``cutblur_jax.train`` re-exports the public names.
"""

from cutblur_jax.augment.flips import random_flip_and_rotate
from cutblur_jax.training.config import base_config, config_summary, parse_decay
from cutblur_jax.training.loop import NonFiniteLossError, TrainingInterrupted, train_and_evaluate
from cutblur_jax.training.optimizer import OptimizerConfig, create_optimizer, learning_rate_schedule
from cutblur_jax.training.recipe import Recipe, resolve_config, resolve_recipe
from cutblur_jax.training.state import TrainState, abstract_train_state, create_train_state
from cutblur_jax.training.step import train_step

__all__ = [
  "NonFiniteLossError",
  "OptimizerConfig",
  "Recipe",
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
  "resolve_recipe",
  "train_and_evaluate",
  "train_step",
]
