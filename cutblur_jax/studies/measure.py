"""Measuring a study's runs: the final and the best validated step on the test photos.

``measure(study, config, run_dir, test_dataset)`` is what ``experiments/reproduce.py``
records for a run: every metric of ``Study.base_metrics`` at the final step and, prefixed
``best_``, at the best validated step, with per-photo values, the baseline (bicubic, or the
noisy input) and the validation curve. ``machine()`` names the CPU and the JAX version: a
run is bitwise reproducible on that pair only.
"""

from __future__ import annotations

import os
import pathlib
import platform

import jax
import numpy as np

from cutblur_jax import checkpoint, evaluation
from cutblur_jax.data import create_dataset, registry
from cutblur_jax.studies.definitions import Study
from cutblur_jax.training.logs import read_metrics

__all__ = ["machine", "measure", "measure_checkpoint", "test_sets"]


def test_sets(study: Study, config, test_dataset: str):
  """``(sigma or None, DataSpec)`` of every test set: the test data set, at each test sigma."""
  sigmas = sorted({*study.test_sigmas, int(config.sigma)}) if study.test_sigmas else [None]
  for sigma in sigmas:
    overrides = {"dataset": test_dataset, **({"sigma": sigma} if sigma is not None else {})}
    yield sigma, registry.data_spec(config, **overrides)


def measure_checkpoint(study: Study, config, directory, test_dataset: str):
  """``(means, per_image, baseline)`` of one checkpoint on the study's test photos."""
  params, arch = checkpoint.load_model(directory)
  return _measure_params(study, config, params, arch, test_dataset)


def _same_weights(first, second) -> bool:
  leaves, other = jax.tree.leaves(first), jax.tree.leaves(second)
  return len(leaves) == len(other) and all(
    np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(leaves, other)
  )


def _measure_params(study: Study, config, params, arch, test_dataset: str):
  means, per_image, baseline = {}, {}, {}
  for sigma, spec in test_sets(study, config, test_dataset):
    report = evaluation.evaluate_model(
      params,
      arch,
      create_dataset(spec, "test"),
      hr_input_test=study.hr_input,
      protocol=spec.eval_protocol,
    )
    names = [("psnr", f"psnr_sigma{sigma}")] if sigma is not None else []
    if sigma is None or sigma == int(config.sigma):
      names += [("psnr", "psnr"), ("ssim", "ssim")]
      names += [("hr_input_psnr", "hr_input_psnr")] if study.hr_input else []
    for key, name in names:
      means[name] = float(report["mean"][key])
      per_image[name] = {row["name"]: float(row[key]) for row in report["images"]}
      if name in ("psnr", "ssim"):
        baseline[name] = float(report["mean"][f"bicubic_{key}"])  # or the noisy input
      elif name.startswith("psnr_sigma"):
        baseline[name] = float(report["mean"]["bicubic_psnr"])
  return means, per_image, baseline


def measure(study: Study, config, run_dir: pathlib.Path, test_dataset: str):
  """The final and the best validated step of a run, on the test photos."""
  final = checkpoint.run_checkpoint(run_dir, checkpoint.LATEST_DIR)
  best = checkpoint.run_checkpoint(run_dir, checkpoint.BEST_DIR) or final
  params, arch = checkpoint.load_model(final)
  means, per_image, baseline = _measure_params(study, config, params, arch, test_dataset)
  best_params, best_arch = checkpoint.load_model(best)
  if best_arch == arch and _same_weights(best_params, params):
    # The best step is the final one (the common case once annealed): measured once.
    best_means, best_images = means, per_image
  else:
    best_means, best_images, _ = _measure_params(
      study, config, best_params, best_arch, test_dataset
    )
  validation = [
    [int(record["step"]), float(record["psnr"])]
    for record in read_metrics(run_dir)
    if record.get("split") == "eval" and "psnr" in record
  ]
  return {
    "best_step": int(best.name),
    **means,
    **{f"best_{name}": value for name, value in best_means.items()},
    "per_image": {**per_image, **{f"best_{name}": v for name, v in best_images.items()}},
    "baseline": baseline,
    "validation": validation,
  }


def machine() -> dict[str, str]:
  """The CPU model and the JAX version: a report is bitwise reproducible on that pair only."""
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as info:
      cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
  except (OSError, StopIteration):
    pass
  return {"cpu": cpu, "cores": str(os.cpu_count()), "jax": jax.__version__}
