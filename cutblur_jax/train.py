"""The public training entry: ``train_and_evaluate``, ``train_step`` and what they take.

The code lives in ``cutblur_jax.training`` (one module per concept); this module keeps
``from cutblur_jax import train`` working for users and scripts.

Examples:
  >>> from cutblur_jax import train
  >>> config = train.base_config()
  >>> config.dataset = "embedded"  # doctest: +SKIP
  >>> result = train.train_and_evaluate(config, "/tmp/run")  # doctest: +SKIP
"""

from cutblur_jax import training
from cutblur_jax.training import *  # noqa: F403  # the names training.__all__ lists

__all__ = list(training.__all__)
