"""The recipe redesign: a config resolved once, a data set described once, one protocol.

The counter test runs a short default run under a profile hook and counts how often it
parses the data set name and checks an architecture: the round trips the redesign removed.
"""

from __future__ import annotations

import collections
import dataclasses
import runpy
import subprocess
import sys
import threading

import jax
import numpy as np
import pytest

from cutblur_jax import augment, evaluation, models, train
from cutblur_jax.data import registry, spec
from cutblur_jax.data.embedded import embedded_dataset
from cutblur_jax.data.prefetch import load_pairs
from cutblur_jax.data.types import ImagePair, input_scale_of
from cutblur_jax.training.presets import moa_flags


def _count_calls(functions, run):
  """``run()``'s result and how often each function of ``functions`` was entered."""
  codes = {function.__code__: name for name, function in functions.items()}
  counts = collections.Counter()

  def hook(frame, event, arg):
    if event == "call" and frame.f_code in codes:
      counts[codes[frame.f_code]] += 1

  sys.setprofile(hook)
  threading.setprofile(hook)
  try:
    result = run()
  finally:
    sys.setprofile(None)
    threading.setprofile(None)
  return result, counts


def test_a_default_run_parses_the_dataset_name_once(tmp_path):
  config = runpy.run_path("experiments/configs/default.py")["get_config"]()
  config.update(
    num_blocks=1,
    num_channels=8,
    num_train_steps=4,
    eval_every_steps=2,
    checkpoint_every_steps=2,
    log_every_steps=2,
    batch_size=2,
    patch_size=8,
    num_eval_images=1,
    progress_bar=False,
  )
  functions = {"parse_dataset": spec.parse_dataset, "canonical_arch": models.canonical_arch}
  result, counts = _count_calls(
    functions, lambda: train.train_and_evaluate(config, tmp_path / "run")
  )
  assert result["step"] == 4 and np.isfinite(result["psnr"])
  # Before the redesign this run made 5 parses and 16 arch checks; now 1 and 10.
  assert counts["parse_dataset"] == 1, counts
  assert counts["canonical_arch"] <= 10, counts


def test_the_recipe_holds_typed_values_and_round_trips_through_config_json():
  recipe = train.resolve_recipe({"model": "RCAN", "dataset": "RealSR", "scale": 2})
  assert isinstance(recipe.arch, models.Arch) and recipe.arch.num_groups == 10
  assert isinstance(recipe.data, spec.DataSpec) and recipe.data.dataset.is_realsr
  assert recipe.protocol == spec.EvalProtocol(crop_border=2, y_only=True)
  assert recipe.steps.total == 1_000_000 and recipe.input.batch_size == 16
  assert recipe.optimizer.milestones == (200_000, 400_000, 600_000, 800_000)
  with pytest.raises(dataclasses.FrozenInstanceError):
    recipe.seed = 3
  again = train.resolve_recipe(recipe.config)  # config.json's values give the same recipe
  assert (again.arch, again.policy, again.optimizer, again.data) == (
    recipe.arch,
    recipe.policy,
    recipe.optimizer,
    recipe.data,
  )
  assert train.resolve_recipe(recipe) is recipe
  assert train.resolve_config({"model": "RCAN"}) == train.resolve_recipe({"model": "RCAN"}).config
  with pytest.raises(ValueError, match="`ema_decay` must be in"):
    train.resolve_recipe({"ema_decay": 1.0})


def test_moa_takes_flags_and_the_names_map_to_them_in_the_training_presets():
  for dataset in ("DIV2K_SR", "RealSR", "DIV2K_DN", "Set5_JPEG", "tfds:div2k/bicubic_x4"):
    for model in ("EDSR", "RCAN", "CARN"):
      flags = moa_flags(dataset, model)
      assert augment.moa(dataset, model) == augment.moa(**flags), (dataset, model)
  assert moa_flags("RealSR", "carn") == {"realsr": True, "same_size": False, "carn": True}
  assert augment.moa(realsr=True, carn=True).probs[0] == 1.0  # RealSR wins over CARN's 0.2
  with pytest.raises(ValueError, match="not both"):
    augment.moa("RealSR", realsr=True)
  with pytest.raises(TypeError):
    augment.moa(None, None, True)  # the flags are keyword-only


def test_the_augmentation_library_imports_no_data_module():
  code = (
    "import sys; from cutblur_jax import augment; augment.moa(realsr=True); "
    "print(sorted(m for m in sys.modules if m.startswith(('cutblur_jax.data', "
    "'cutblur_jax.training'))))"
  )
  out = subprocess.run(
    [sys.executable, "-c", code], capture_output=True, text=True, check=True
  ).stdout
  assert out.strip() == "[]", out


def test_every_source_knows_its_input_scale_when_built(tmp_path):
  embedded = registry.create_dataset({"dataset": "embedded", "scale": 3}, "validation")
  assert embedded.input_scale == 3
  denoising = registry.create_dataset({"dataset": "embedded_DN", "scale": 4}, "validation")
  assert denoising.input_scale == 1 and denoising.scale == 1
  loaded = load_pairs(embedded, num_workers=0, count=1)
  assert len(loaded) == 1 and loaded.input_scale == 3 and input_scale_of(loaded) == 3
  # Any other sequence: the first pair's rounded ratio.
  pair = embedded[0]
  assert input_scale_of([ImagePair("x", pair.hr[:-1], pair.lr)]) == 3
  with pytest.raises(ValueError, match="no image pairs"):
    input_scale_of([])


def test_one_eval_protocol_from_the_description_serves_every_caller():
  data = registry.data_spec({"dataset": "DIV2K_SR", "scale": 2})
  assert registry.data_spec(data) is data  # a DataSpec passes through, overrides applied
  assert registry.data_spec(data, scale=4, patch_size=8).scale == 4
  with pytest.raises(TypeError, match="Unknown data options"):
    registry.data_spec(data, scal=4)
  assert data.eval_protocol == spec.parse_dataset("DIV2K_SR").eval_protocol(2)
  assert data.eval_protocol == spec.EvalProtocol.of("SR", 2, div2k=True)
  assert data.eval_protocol.as_dict() == {"crop_border": 8, "y_only": False}
  assert str(spec.EvalProtocol(4, True, round_y=False)) == "crop 4, Y (float Y)"
  arch = models.model_arch("EDSR", 2, num_blocks=1, num_channels=4)
  params = models.create_model(arch).init(jax.random.key(0), np.zeros((1, 4, 4, 3)))["params"]
  pairs = embedded_dataset("validation", 2, max_size=32)
  by_name = evaluation.evaluate_model(params, arch, pairs, protocol="DIV2K_SR", hr_input_test=False)
  by_value = evaluation.evaluate_model(
    params, arch, pairs, protocol=data.eval_protocol, hr_input_test=False
  )
  assert by_name == by_value and by_value["crop_border"] == 8 and not by_value["y_only"]
  rgb = evaluation.evaluate_model(
    params, arch, pairs, protocol=data.eval_protocol, y_only=True, hr_input_test=False
  )
  assert rgb["y_only"] and rgb["mean"]["psnr"] != by_value["mean"]["psnr"]
  with pytest.raises(TypeError, match="`protocol` must be"):
    evaluation.evaluate_model(params, arch, pairs, protocol={"crop_border": 2})


def test_validation_can_use_another_data_set(tmp_path):
  recipe = train.resolve_recipe(
    {"dataset": "DF2K_SR", "dataset_root": "/data/df2k", "scale": 2, "valid_dataset": "Set14_SR"}
  )
  assert recipe.data.name == "DF2K_SR" and recipe.valid_data.name == "Set14_SR"
  assert recipe.valid_data.dataset_root == "/data/df2k" and recipe.valid_data.scale == 2
  assert recipe.protocol == spec.EvalProtocol(crop_border=2, y_only=True)  # Set14's, not DIV2K's
  assert train.resolve_recipe({"dataset": "embedded"}).valid_data.name == "embedded"
  with pytest.raises(ValueError, match="same task"):
    train.resolve_recipe({"dataset": "DIV2K_SR", "valid_dataset": "Set12_DN"})
  with pytest.raises(ValueError, match="`valid_dataset_root` is set"):
    train.resolve_recipe({"valid_dataset_root": "/data"})
  with pytest.raises(ValueError, match="Unknown dataset"):
    train.resolve_recipe({"valid_dataset": "Nope"})
