"""Runs written by earlier versions still load, resume and evaluate to the same numbers.

Two fixtures, each with ``latest`` steps 1 and 2 and a ``best`` step 2, trained for 2 steps
on a 4-image DIV2K-layout folder (``run_0_1/data``, committed):

* ``tests/fixtures/run_0_1``, written by version 0.1.0 at commit 73112d7 (before the package
  redesign): a tiny EDSR x2 with EMA on.
* ``tests/fixtures/run_0_2``, written at commit 197fb64 (before the recipe redesign, issue
  20) by ``tests/fixtures/make_run_0_2.py``: a tiny RCAN x2 with MoA and EMA, with
  ``expected_eval.json``, that code's ``evaluate_model`` report on the validation image.

``expected_sr.npz`` holds what the writing code's ``super_resolve`` gave for a fixed input.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pytest

from cutblur_jax import checkpoint, data, evaluation, inference, train
from cutblur_jax.training.logs import read_metrics

# Run on both orbax versions: the default install's and the export extra's (tests/run.sh).
pytestmark = pytest.mark.checkpoint_format

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
FIXTURE = FIXTURES / "run_0_1"
DATA = FIXTURE / "data"
RUN_0_2 = FIXTURES / "run_0_2"


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


def test_pre_recipe_checkpoint_loads_and_evaluates_to_the_same_numbers():
  expected = np.load(RUN_0_2 / "expected_sr.npz")
  for name, use_ema in (("ema", True), ("raw", False)):
    params, arch = checkpoint.load_model(RUN_0_2 / "checkpoints" / "best", use_ema=use_ema)
    assert dict(arch) == {
      "model": "RCAN",
      "scale": 2,
      "num_groups": 1,
      "num_blocks": 1,
      "num_channels": 4,
      "reduction": 2,
      "res_scale": 1.0,
    }
    np.testing.assert_array_equal(
      inference.super_resolve(params, arch, expected["image"]), expected[name]
    )
  params, arch = checkpoint.load_model(RUN_0_2 / "checkpoints" / "best")
  spec = {"dataset": "DIV2K_SR", "dataset_root": str(DATA), "scale": 2, "div2k_range": "1-3/4-4"}
  report = evaluation.evaluate_model(
    params, arch, data.create_dataset(spec, "validation"), protocol="DIV2K_SR"
  )
  assert report == json.loads((RUN_0_2 / "expected_eval.json").read_text())


@pytest.mark.parametrize("fixture", [FIXTURE, RUN_0_2], ids=["0.1.0", "pre-recipe"])
def test_old_run_resumes_where_it_stopped(tmp_path, fixture):
  workdir = tmp_path / "run"
  shutil.copytree(fixture, workdir, ignore=shutil.ignore_patterns("data", "expected_*"))
  stored = json.loads((fixture / "config.json").read_text())
  config = train.base_config()
  config.update({key: tuple(v) if isinstance(v, list) else v for key, v in stored.items()})
  config.update(dataset_root=str(DATA), num_train_steps=3, progress_bar=False)
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
