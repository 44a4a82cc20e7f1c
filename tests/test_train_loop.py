"""``train_and_evaluate`` in-process: the default run, logs, checkpoints, NaN, bad input."""

from __future__ import annotations

import importlib
import json
import math
import pathlib

import jax
import numpy as np
import pytest
from PIL import Image

from cutblur_jax import checkpoint, models, sharding, train
from cutblur_jax.data.io import write_json
from cutblur_jax.training.checkpoints import TrainCheckpointer
from cutblur_jax.training.logs import MetricWriter, read_metrics

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "experiments" / "configs"
TINY = {"num_blocks": 1, "num_channels": 8, "res_scale": 1.0}


def _load_config(name: str):
  return importlib.import_module(f"experiments.configs.{name}").get_config()


def write_div2k(root: pathlib.Path, *, count: int = 4, scale: int = 2, size=(40, 48), seed=0):
  """A tiny DIV2K_SR folder in the published layout (smooth images a network can fit)."""
  rng = np.random.default_rng(seed)
  hr_dir = root / "DIV2K_train_HR"
  lr_dir = root / "DIV2K_train_LR_bicubic" / f"X{scale}"
  hr_dir.mkdir(parents=True, exist_ok=True)
  lr_dir.mkdir(parents=True, exist_ok=True)
  h, w = size
  for index in range(1, count + 1):
    yy, xx = np.mgrid[0:h, 0:w]
    phase = rng.uniform(0, 2 * np.pi, 3)
    hr = 127 + 100 * np.sin(xx[..., None] / (3 + index) + yy[..., None] / 5 + phase)
    hr = hr.astype(np.uint8)
    Image.fromarray(hr).save(hr_dir / f"{index:04d}.png")
    Image.fromarray(hr[::scale, ::scale]).save(lr_dir / f"{index:04d}x{scale}.png")
  return root


def tiny_config(root: pathlib.Path, **overrides):
  config = train.base_config()
  config.update(
    dict(
      model="EDSR",
      dataset="DIV2K_SR",
      dataset_root=str(root),
      scale=2,
      div2k_range="1-3/4-4",
      patch_size=8,
      batch_size=2,
      num_train_steps=2,
      eval_every_steps=0,
      checkpoint_every_steps=1,
      log_every_steps=1,
      progress_bar=False,
      num_workers=0,
      **TINY,
    )
  )
  config.update(overrides)
  return config


@pytest.fixture(scope="module")
def div2k(tmp_path_factory):
  return write_div2k(tmp_path_factory.mktemp("div2k"))


def test_default_config_trains_evaluates_checkpoints_and_resumes(tmp_path):
  config = _load_config("default")
  config.update(
    num_train_steps=4,
    eval_every_steps=2,
    checkpoint_every_steps=2,
    log_every_steps=1,
    progress_bar=False,
  )
  result = train.train_and_evaluate(config, tmp_path)
  for key in (
    "step",
    "loss",
    "psnr",
    "ssim",
    "bicubic_psnr",
    "bicubic_ssim",
    "best_psnr",
    "best_step",
    "wall_time_s",
    "workdir",
  ):
    assert key in result, key
  assert result["step"] == 4 and math.isfinite(result["loss"])
  assert 10 < result["psnr"] < 60 and 25 < result["bicubic_psnr"] < 45

  records = read_metrics(tmp_path)
  train_steps = [r["step"] for r in records if r["split"] == "train"]
  eval_records = [r for r in records if r["split"] == "eval"]
  assert train_steps == [1, 2, 3, 4]
  assert [r["step"] for r in eval_records] == [0, 2, 4]
  assert "bicubic_psnr" in eval_records[0] and "psnr" in eval_records[-1]
  assert all(r["steps_per_sec"] > 0 for r in records if r["split"] == "train")

  saved = json.loads((tmp_path / "config.json").read_text())
  assert saved["augs"] == ["blend", "rgb", "mixup", "cutout", "cutmix", "cutmixup", "cutblur"]
  assert saved["num_blocks"] == 4 and saved["dataset"] == "embedded"
  events = list(tmp_path.glob("events.out.tfevents.*"))
  assert len(events) == 1
  blob = events[0].read_bytes()
  for tag in (b"train/loss", b"eval/psnr", b"eval/bicubic_psnr", b"samples/0/sr", b"samples/1/hr"):
    assert tag in blob, tag

  latest = sorted(
    int(p.name) for p in (tmp_path / "checkpoints" / "latest").iterdir() if p.name.isdigit()
  )
  assert latest == [2, 4]
  params, arch = checkpoint.load_model(tmp_path)  # layout (c): the best step
  assert arch == models.model_arch("EDSR", 2, num_blocks=4, num_channels=32, res_scale=1.0)
  assert models.count_params(params) > 0

  # Same command again: resumes at the end, trains nothing, still reports.
  again = train.train_and_evaluate(config, tmp_path)
  assert again["step"] == 4 and again["psnr"] == pytest.approx(result["psnr"], abs=1e-9)
  assert again["finished_before"] and not result["finished_before"]
  assert again["best_checkpoint"] == str(
    tmp_path / "checkpoints" / "best" / str(again["best_step"])
  )
  assert [r["step"] for r in read_metrics(tmp_path) if r["split"] == "train"] == train_steps


def test_ema_run_validates_and_ships_the_average(div2k, tmp_path):
  config = tiny_config(div2k, num_train_steps=3, eval_every_steps=1, ema_decay=0.5)
  result = train.train_and_evaluate(config, tmp_path)
  assert result["weights"] == "ema"
  evals = [r for r in read_metrics(tmp_path) if r["split"] == "eval" and "psnr" in r]
  assert [r["weights"] for r in evals] == ["ema"] * 3
  best = next((tmp_path / "checkpoints" / "best").glob("[0-9]*"))
  assert (best / "ema_params").is_dir() and (best / "params").is_dir()
  assert json.loads((best / "eval" / "metadata").read_text())["weights"] == "ema"
  ema, _ = checkpoint.load_model(tmp_path)
  raw, _ = checkpoint.load_model(tmp_path, use_ema=False)
  assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(ema), jax.tree.leaves(raw)))


@pytest.mark.parametrize("dataset", ["DIV2K_DN", "DIV2K_JPEG"])
def test_official_dn_and_jpeg_network_scale_4_on_same_size_pairs(div2k, tmp_path, dataset):
  """What the official code trains for DN/JPEG with its default --scale 4."""
  from cutblur_jax import data  # pylint: disable=import-outside-toplevel

  config = tiny_config(
    div2k,
    dataset=dataset,
    scale=4,
    sigma=30,
    quality=20,
    synthesize_lr=True,
    num_train_steps=2,
    eval_every_steps=2,
  )
  resolved = train.resolve_config(config)
  pipeline = data.create_pipeline(resolved)
  batch = next(pipeline)
  pipeline.close()
  # Same-size 8x8 patches (patch_size, as the official crop), not 8 * scale.
  assert batch["hr"].shape == batch["lr"].shape == (2, 8, 8, 3)
  assert not np.array_equal(batch["hr"], batch["lr"])  # degraded input
  result = train.train_and_evaluate(config, tmp_path)
  assert result["step"] == 2 and "input_psnr" in result and math.isfinite(result["psnr"])
  params, arch = checkpoint.load_model(tmp_path)
  assert arch["scale"] == 4
  assert params["head"]["kernel"].shape[2] == 3 * 4 * 4  # the x4 space-to-depth head


@pytest.mark.parametrize("model", ["EDSR", "RCAN", "CARN"])
def test_dn_scale_4_network_has_the_official_parameter_count(model):
  torch_twins = pytest.importorskip("torch_twins")
  for dataset in ("DIV2K_DN", "DIV2K_JPEG"):
    arch = train.resolve_recipe({"model": model, "dataset": dataset, "scale": 4}).arch
    assert arch == models.model_arch(model, 4)
    assert models.official_param_count(arch) == torch_twins.official_param_count(arch)
    assert models.count_params(
      models.abstract_params(arch)
    ) + models.MEAN_SHIFT_PARAM_COUNT == torch_twins.official_param_count(arch)


def test_nan_loss_stops_without_saving_and_keeps_the_last_good_checkpoint(div2k, tmp_path):
  train.train_and_evaluate(tiny_config(div2k), tmp_path)
  with pytest.raises(train.NonFiniteLossError, match=r"step 3 .*last good checkpoint is step 2"):
    # Finite as a config value (a Python float), infinite in the float32 update.
    train.train_and_evaluate(
      tiny_config(div2k, lr=1e39, num_train_steps=6), tmp_path, accept_config_changes=True
    )
  steps = sorted(p.name for p in (tmp_path / "checkpoints" / "latest").iterdir())
  assert steps == ["1", "2"]  # nothing half-written, nothing after the bad step
  params, _ = checkpoint.load_model(tmp_path / "checkpoints" / "latest")
  assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(params))


@pytest.mark.parametrize(
  "overrides, message",
  [
    ({"model": "VDSR"}, "Unknown model"),
    ({"dataset": "Nope_XYZ"}, "Unknown dataset"),
    ({"augs": ("cutblurr",)}, "unknown op"),
    ({"patch_size": 64}, "smaller than the LR patch"),
    ({"pretrain": "/nonexistent/run"}, "does not exist"),
    ({"num_train_steps": -1}, "num_train_steps"),
    ({"decay": "4-2"}, "decay"),
  ],
)
def test_bad_input_fails_before_anything_compiles(div2k, tmp_path, monkeypatch, overrides, message):
  def no_compile(*args, **kwargs):
    raise AssertionError("reached state creation (compilation)")

  from cutblur_jax.training import loop, start

  for name in ("_create_train_state", "abstract_train_state", "initial_params"):
    monkeypatch.setattr(start, name, no_compile)
  monkeypatch.setattr(loop, "train_step", no_compile)
  with pytest.raises(ValueError, match=message):
    train.train_and_evaluate(tiny_config(div2k, **overrides), tmp_path)


def _zero_params(arch):
  """Parameters of ``arch`` without running (or compiling) its initialisers."""
  model = models.create_model(arch)
  shapes = jax.eval_shape(
    model.init, jax.random.key(0), jax.ShapeDtypeStruct((1, 8, 8, 3), np.float32)
  )
  return jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes["params"])


def test_another_architecture_in_workdir_or_pretrain_is_rejected_before_compiling(
  div2k, tmp_path, monkeypatch
):
  other = models.model_arch("EDSR", 2, num_blocks=2, num_channels=8, res_scale=1.0)
  with TrainCheckpointer(tmp_path / "run") as checkpoints:
    checkpoints.save_best(5, _zero_params(other), other, {"step": 5, "psnr": 20.0})
  from cutblur_jax.training import start

  monkeypatch.setattr(start, "_create_train_state", lambda *a, **k: pytest.fail("compiled"))
  monkeypatch.setattr(start, "initial_params", lambda *a, **k: pytest.fail("compiled"))
  with pytest.raises(
    ValueError,
    match=r"another architecture \(num_blocks: checkpoint 2 vs "
    r"config 1\)",
  ):
    train.train_and_evaluate(tiny_config(div2k), tmp_path / "run")
  # Fine-tuning: the scale may differ (head and tail), the body may not.
  x4 = models.model_arch("EDSR", 4, num_blocks=1, num_channels=16, res_scale=1.0)
  checkpoint.save_model(tmp_path / "x4", _zero_params(x4), x4)
  with pytest.raises(
    ValueError,
    match=r"`pretrain` .*x4 holds another network \(num_channels: "
    r"checkpoint 16 vs config 8\)",
  ):
    train.train_and_evaluate(tiny_config(div2k, pretrain=str(tmp_path / "x4")), tmp_path / "new")


def test_metric_writer_and_atomic_json(tmp_path):
  with MetricWriter(tmp_path, enabled=True) as writer:
    writer.write_scalars(3, {"loss": np.float32(1.5), "bad": math.nan}, split="train")
    writer.write_images(3, {"x": np.zeros((4, 4, 3), np.uint8)})
  with open(tmp_path / "metrics.jsonl", "a") as file:
    file.write('{"step": 4, "spl')  # a line torn by a crash
  assert read_metrics(tmp_path) == [{"step": 3, "split": "train", "loss": 1.5, "bad": "nan"}]
  assert not MetricWriter(tmp_path / "off", enabled=False).enabled
  assert not (tmp_path / "off").exists()
  write_json(tmp_path / "c.json", {"a": 1})
  assert json.loads((tmp_path / "c.json").read_text()) == {"a": 1}
  assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_sharding_helpers_on_one_process():
  assert sharding.initialize_distributed({"distributed": "off"}) is False
  assert sharding.initialize_distributed({}) is False  # auto, nothing configured
  with pytest.raises(ValueError, match="coordinator_address"):
    sharding.initialize_distributed({"num_processes": 2})
  with pytest.raises(ValueError, match="distributed"):
    sharding.initialize_distributed({"distributed": "maybe"})
  mesh = sharding.create_mesh()
  assert mesh.axis_names == ("data",) and mesh.devices.size == jax.device_count()
  with pytest.raises(ValueError, match="batch_size"):
    sharding.check_batch_size(0, mesh)
  tree = {"a": np.arange(6.0).reshape(2, 3)}
  replicated = sharding.replicate(tree, mesh)
  assert replicated["a"].sharding == sharding.replicated_sharding(mesh)
  np.testing.assert_array_equal(sharding.to_local(replicated)["a"], tree["a"])


def test_a_run_validates_on_the_valid_dataset_folder(div2k, tmp_path, capsys):
  bench = tmp_path / "Set5"
  rng = np.random.default_rng(3)
  for name in ("baby", "bird"):
    small = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    for folder, image in (("HR", small.repeat(2, 0).repeat(2, 1)), ("LR_bicubic/X2", small)):
      (bench / folder).mkdir(parents=True, exist_ok=True)
      suffix = "x2" if folder != "HR" else ""
      Image.fromarray(image).save(bench / folder / f"{name}{suffix}.png")
  config = tiny_config(div2k, valid_dataset="Set5_SR", valid_dataset_root=str(bench))
  result = train.train_and_evaluate(config, tmp_path / "run")
  assert "Validation: 2 images, crop 2, Y" in capsys.readouterr().out  # Set5's, not DIV2K's
  stored = json.loads((tmp_path / "run" / "config.json").read_text())
  assert stored["valid_dataset"] == "Set5_SR" and np.isfinite(result["psnr"])


def test_a_url_workdir_without_its_file_system_is_refused_before_anything_is_written(
  div2k, tmp_path, monkeypatch
):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(ValueError, match="'gs://bucket/run' needs gcsfs"):
    train.train_and_evaluate(tiny_config(div2k), "gs://bucket/run")
  assert list(tmp_path.iterdir()) == []  # no local folder gs:/bucket/run
