"""experiments/reproduce_hr_input.py: a tiny budget end to end, its report, its statistics."""

from __future__ import annotations

import importlib
import json
import math
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "reproduce_hr_input.py"
TINY = ["--set", "num_blocks=1", "--set", "num_channels=8", "--set", "patch_size=8",
        "--set", "batch_size=2", "--set", "eval_every_steps=1", "--set", "log_every_steps=1",
        "--set", "checkpoint_every_steps=0", "--no-progress_bar"]


@pytest.fixture(scope="module")
def script():
  return importlib.import_module("experiments.reproduce_hr_input")


@pytest.fixture(scope="module")
def tiny_run(script, tmp_path_factory):
  # Relative paths, as a user types them (orbax itself needs absolute ones).
  cwd = tmp_path_factory.mktemp("cwd")
  argv = ["--seeds", "3", "--num_train_steps", "2", "--settings", "none", "moa",
          "--workdir", "runs", "--output", "out/report.json", *TINY]
  previous = os.getcwd()
  os.chdir(cwd)
  try:
    report = script.main(argv)
  finally:
    os.chdir(previous)
  return argv, cwd / "runs", report


def _finite(value) -> bool:
  return isinstance(value, float) and math.isfinite(value)


def test_report_structure_and_finite_numbers(tiny_run):
  argv, workdir, report = tiny_run
  on_disk = json.loads((workdir.parent / "out" / "report.json").read_text())
  assert on_disk == json.loads(json.dumps(report))
  assert report["seeds"] == [3] and report["settings"] == ["none", "moa"]
  assert report["scale"] == 2 and report["num_train_steps"] == 2
  assert report["protocol"] == {"crop_border": 2, "y_only": True}
  assert report["validation_images"] == ["chelsea", "stereo_motorcycle"]
  assert report["config"]["num_blocks"] == 1 and report["config"]["num_channels"] == 8
  assert report["command"].startswith("python experiments/reproduce_hr_input.py --seeds 3")
  assert 30 < report["bicubic"]["psnr"] < 40  # MATLAB bicubic x2 on the two held-out photos
  assert [(run["setting"], run["seed"]) for run in report["runs"]] == [("none", 3), ("moa", 3)]
  for run in report["runs"]:
    assert run["steps"] == 2
    assert run["workdir"] == str(workdir / f"{run['setting']}-seed3")
    for key in ("psnr", "ssim", "hr_input_psnr", "train_wall_time_s"):
      assert _finite(run[key]), (key, run[key])
    assert 0 < run["psnr"] < 60 and 0 < run["hr_input_psnr"] < 80 and 0 < run["ssim"] <= 1
    assert [name["name"] for name in run["images"]] == ["chelsea", "stereo_motorcycle"]
    assert [step for step, _ in run["validation_curve"]] == [1, 2]
    assert all(_finite(psnr) for _, psnr in run["validation_curve"])
    # The final validation of training measures the same parameters the report measures.
    assert run["validation_curve"][-1][1] == pytest.approx(run["psnr"], abs=1e-6)
  for setting in ("none", "moa"):
    for key in ("psnr", "ssim", "hr_input_psnr"):
      stats = report["summary"][setting][key]
      assert stats["n"] == 1 and stats["std"] is None and _finite(stats["mean"])
      assert stats["min"] == stats["max"] == stats["mean"]
  moa, none = report["runs"][1], report["runs"][0]
  paired = report["paired_difference"]
  assert list(paired) == ["moa"]
  assert paired["moa"]["hr_input_psnr"]["mean"] == pytest.approx(
      moa["hr_input_psnr"] - none["hr_input_psnr"])


def test_settings_differ_only_in_the_augmentation(tiny_run):
  _, workdir, _ = tiny_run
  none = json.loads((workdir / "none-seed3" / "config.json").read_text())
  moa = json.loads((workdir / "moa-seed3" / "config.json").read_text())
  differing = {key for key in none if none[key] != moa[key]}
  assert differing == {"use_moa", "augs", "prob", "alpha"}
  assert none["augs"] == ["none"] and moa["augs"][-1] == "cutblur"
  assert none["seed"] == moa["seed"] == 3 and none["decay"] == moa["decay"]


def test_rerun_resumes_and_measures_the_same_models(script, tiny_run, monkeypatch):
  argv, workdir, report = tiny_run
  monkeypatch.chdir(workdir.parent)
  again = script.main(argv)
  for first, second in zip(report["runs"], again["runs"]):
    assert second["steps"] == first["steps"] == 2
    for key in ("psnr", "ssim", "hr_input_psnr"):
      assert second[key] == first[key]


def test_statistics_and_table(script):
  runs = [{"setting": s, "seed": seed, "psnr": p, "ssim": 0.5, "hr_input_psnr": h}
          for s, seed, p, h in [("none", 0, 30.0, 40.0), ("none", 1, 31.0, 41.0),
                                ("none", 2, 32.0, 42.0), ("moa", 0, 31.0, 45.0),
                                ("moa", 1, 31.0, 47.0), ("moa", 2, 31.0, 49.0)]]
  summary, paired = script.summarize(runs, ["none", "moa"])
  assert summary["none"]["psnr"] == {"mean": 31.0, "std": 1.0, "min": 30.0, "max": 32.0, "n": 3}
  assert summary["moa"]["psnr"]["std"] == 0.0
  assert summary["moa"]["hr_input_psnr"]["mean"] == 47.0
  assert paired["moa"]["hr_input_psnr"] == {"mean": 6.0, "std": 1.0, "n": 3}
  assert paired["moa"]["psnr"]["mean"] == 0.0 and paired["moa"]["psnr"]["std"] == 1.0
  table = script.format_table({"summary": summary, "paired_difference": paired,
                               "bicubic": {"psnr": 29.5, "ssim": 0.4}})
  lines = table.splitlines()
  assert lines[0] == "| setting | seeds | PSNR (dB) | SSIM | HR-input PSNR (dB) |"
  assert lines[2] == "| none | 3 | 31.00 ± 1.00 | 0.5000 ± 0.0000 | 41.00 ± 1.00 |"
  assert lines[4] == "| bicubic | - | 29.50 | 0.4000 | - |"
  assert lines[5] == ("| moa - none (paired) | 3 | +0.00 ± 1.00 | +0.0000 ± 0.0000 "
                      "| +6.00 ± 1.00 |")


@pytest.mark.parametrize("argv, message", [
    (["--set", "seed=3"], "set by the script"),
    (["--set", "use_moa=False"], "set by the script"),
    (["--seeds", "0", "0"], "distinct"),
    (["--num_train_steps", "0"], "positive"),
    (["--scale", "1"], "SR factor"),
    (["--set", "num_blocks"], "FIELD=VALUE"),
])
def test_bad_arguments_are_rejected(script, capsys, argv, message):
  with pytest.raises(SystemExit):
    script.parse_args(argv)
  assert message in capsys.readouterr().err


def test_bad_config_is_rejected_before_training(script, tmp_path):
  with pytest.raises(ValueError, match="no field 'num_blokcs'"):
    script.main(["--set", "num_blokcs=2", "--workdir", str(tmp_path)])
  with pytest.raises(ValueError, match="does not exist"):
    script.main(["--config", str(tmp_path / "missing.py"), "--workdir", str(tmp_path)])
  config = tmp_path / "div2k.py"
  config.write_text("from cutblur_jax.train import base_config\n"
                    "def get_config():\n  c = base_config()\n  c.dataset = 'DIV2K_SR'\n"
                    "  return c\n")
  with pytest.raises(ValueError, match="embedded"):
    script.main(["--config", str(config), "--workdir", str(tmp_path / "w")])
  assert not (tmp_path / "w").exists()
