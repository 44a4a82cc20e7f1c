"""A run written before the package redesign still loads and resumes.

The fixture (``tests/fixtures/run_0_1``, written by version 0.1.0 at commit 73112d7) is a
tiny EDSR x2 with EMA on, trained for 2 steps on a 4-image DIV2K-layout
folder (also committed), with ``latest`` steps 1 and 2 and a ``best`` step 2.
``expected_sr.npz`` holds what that code's ``super_resolve`` gave for a fixed input.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pytest

from cutblur_jax import checkpoint, inference, train
from cutblur_jax.training.logs import read_metrics

# Run on both orbax versions: the default install's and the export extra's (tests/run.sh).
pytestmark = pytest.mark.checkpoint_format

FIXTURE = pathlib.Path(__file__).resolve().parent / "fixtures" / "run_0_1"


def test_old_best_checkpoint_loads_and_gives_the_same_outputs():
  expected = np.load(FIXTURE / "expected_sr.npz")
  for name, use_ema in (("ema", True), ("raw", False)):
    params, arch = checkpoint.load_model(FIXTURE / "checkpoints" / "best", use_ema=use_ema)
    assert dict(arch) == {
      "model": "EDSR",
      "scale": 2,
      "num_blocks": 1,
      "num_channels": 4,
      "res_scale": 1.0,
    }
    np.testing.assert_array_equal(
      inference.super_resolve(params, arch, expected["image"]), expected[name]
    )


def test_old_run_resumes_where_it_stopped(tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(FIXTURE, workdir, ignore=shutil.ignore_patterns("data", "*.npz"))
  stored = json.loads((FIXTURE / "config.json").read_text())
  config = train.base_config()
  config.update({key: tuple(v) if isinstance(v, list) else v for key, v in stored.items()})
  config.update(dataset_root=str(FIXTURE / "data"), num_train_steps=3, progress_bar=False)
  result = train.train_and_evaluate(config, workdir)
  assert result["step"] == 3 and result["weights"] == "ema"
  assert np.isfinite(result["loss"])
  steps = sorted(
    int(p.name) for p in (workdir / "checkpoints" / "latest").iterdir() if p.name.isdigit()
  )
  assert steps == [2, 3]
  # The old records (steps 1 and 2) stay; the resumed run adds step 3 only.
  train_steps = [r["step"] for r in read_metrics(workdir) if r["split"] == "train"]
  assert train_steps == [1, 2, 3]
