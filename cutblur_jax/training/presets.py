"""The reference's training presets (``option.py``'s ``make_template``), by name.

Two tables that depend on names, kept apart from the config fields (``training.config``)
and from the augmentation library, which takes flags only:

* ``moa_flags(dataset, model)``: the flags of ``augment.moa`` for a data set and model.
* ``run_presets(arch, task, fine_tuning)``: ``num_train_steps``, ``decay``,
  ``batch_size`` and ``gclip`` (model first, then task, as ``make_template``).

Examples:
  >>> moa_flags("tfds:div2k/bicubic_x4", "CARN")
  {'realsr': False, 'same_size': False, 'carn': True}
"""

from __future__ import annotations

from typing import Any

from cutblur_jax import models
from cutblur_jax.augment.presets import MOA_MODELS
from cutblur_jax.data.spec import DatasetName, parse_dataset

__all__ = ["moa_flags", "run_presets"]


def moa_flags(dataset: str | DatasetName, model: str) -> dict[str, bool]:
  """``augment.moa``'s flags for the reference's ``--dataset`` and ``--model``.

  A ``tfds:`` copy counts as the data it holds (``data.spec.parse_dataset``); the model
  name is case-insensitive, as ``models.model_arch``.

  Raises:
    TypeError: a name that is not a string.
    ValueError: an unknown data set or model, listing the known ones.
  """
  if not isinstance(model, str):
    raise TypeError(f"moa: `model` must be a string, got {model!r}.")
  known = {m.lower(): m for m in MOA_MODELS}
  if model.lower() not in known:
    raise ValueError(f"moa: unknown model {model!r}; use one of {', '.join(MOA_MODELS)}.")
  if not isinstance(dataset, DatasetName):
    if not isinstance(dataset, str):
      raise TypeError(f"moa: `dataset` must be a string, got {dataset!r}.")
    dataset = parse_dataset(dataset)
  return {
    "realsr": dataset.is_realsr,
    "same_size": dataset.same_size,
    "carn": known[model.lower()] == "CARN",
  }


def run_presets(arch: models.Arch, task: str, *, fine_tuning: bool) -> dict[str, Any]:
  """The run-length and optimisation presets of a network and task.

  700k steps, decay "200-400-600", batch 16 and no clipping, then the network's own
  (``Network.train_presets``: RCAN 1M steps and "200-400-600-800", CARN batch 64 and "400"),
  its clip when fine-tuning (RCAN 0.5), and for denoising or JPEG 1M steps and
  "300-550-800".
  """
  network = models.network(arch)  # "EDSR-baseline" is an EDSR
  presets = {
    "num_train_steps": 700_000,
    "decay": "200-400-600",
    "gclip": 0.0,
    "batch_size": 16,
    **network.train_presets,
  }
  if fine_tuning:
    presets["gclip"] = network.pretrain_gclip
  if task in ("DN", "JPEG"):
    presets.update(num_train_steps=1_000_000, decay="300-550-800")
  return presets
