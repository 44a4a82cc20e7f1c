"""experiments/reproduce.py on tiny budgets: the report, resume, statistics and the data.

The photos are a stand-in folder of small smooth images in the layout of
``cutblur_jax.data.photos`` (``$CUTBLUR_JAX_PHOTOS``); tests/test_photos.py tests the real
fetch.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from cutblur_jax import studies, train
from cutblur_jax.data import photos, registry
from cutblur_jax.studies import measure, regularization
from cutblur_jax.studies.runs import RUN_FILE, differences
from experiments import reproduce, reproduce_hr_input
from experiments.configs import default as default_config
from test_train_loop import write_div2k  # pylint: disable=wrong-import-order

TRAIN_NAMES, VALID_NAMES, TEST_NAMES = ["a", "b", "c", "d"], ["v1", "v2"], ["t1", "t2", "t3"]


@pytest.fixture(scope="module", autouse=True)
def fake_photos(tmp_path_factory):
  """PhotosTrain, PhotosValid and PhotosTest folders of small smooth images."""
  root = tmp_path_factory.mktemp("photos")
  smooth = write_div2k(root / "source", count=9, size=(40, 48))
  images = sorted((smooth / "DIV2K_train_HR").glob("*.png"))
  for folder, names in (("PhotosTrain", TRAIN_NAMES), ("PhotosValid", VALID_NAMES)):
    (root / folder / "HR").mkdir(parents=True)
    for name in names:
      (root / folder / "HR" / f"{name}.png").write_bytes(images.pop().read_bytes())
  (root / "PhotosTest" / "HR").mkdir(parents=True)
  for name in TEST_NAMES:
    (root / "PhotosTest" / "HR" / f"{name}.png").write_bytes(images.pop().read_bytes())
  previous = os.environ.get("CUTBLUR_JAX_PHOTOS")
  os.environ["CUTBLUR_JAX_PHOTOS"] = str(root)
  yield root
  if previous is None:
    del os.environ["CUTBLUR_JAX_PHOTOS"]
  else:
    os.environ["CUTBLUR_JAX_PHOTOS"] = previous


TINY = [
  "--set",
  "num_blocks=1",
  "--set",
  "num_channels=8",
  "--set",
  "patch_size=8",
  "--set",
  "batch_size=2",
]


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
  # Relative paths, as a user types them.
  cwd = tmp_path_factory.mktemp("cwd")
  argv = [
    "--study",
    "ablation",
    "--settings",
    "none",
    "cutblur",
    "--seeds",
    "3",
    "4",
    "--num_train_steps",
    "2",
    "--workdir",
    "runs",
    "--output",
    "out/ablation.json",
    *TINY,
  ]
  previous = os.getcwd()
  os.chdir(cwd)
  try:
    report = reproduce.main(argv)
  finally:
    os.chdir(previous)
  return argv, cwd, report


def _finite(value) -> bool:
  return isinstance(value, float) and math.isfinite(value)


def test_report_schema(tiny_study):
  _, cwd, report = tiny_study
  assert json.loads((cwd / "out" / "ablation.json").read_text()) == json.loads(json.dumps(report))
  assert report["study"] == "ablation"
  assert report["command"].startswith("python experiments/reproduce.py --study ablation")
  assert report["settings"] == ["none", "cutblur"] and report["seeds"] == [3, 4]
  assert report["train_images"] == {"PhotosTrain_SR": TRAIN_NAMES}
  assert report["validation_images"] == VALID_NAMES
  assert report["test_dataset"] == "PhotosTest_SR" and report["test_images"] == TEST_NAMES
  assert report["protocol"] == {"crop_border": 2, "y_only": True}
  assert _finite(report["baseline"]["psnr"])  # MATLAB bicubic x2 on the test photos
  assert set(report["machine"]) == {"cpu", "cores", "jax"}
  assert report["tested"] == ["psnr", "best_psnr"]
  # "config" holds what every run shared, and nothing that differed.
  config = report["config"]
  assert config["num_blocks"] == 1 and config["num_train_steps"] == 2 and config["scale"] == 2
  assert config["dataset"] == "PhotosTrain_SR" and config["valid_dataset"] == "PhotosValid_SR"
  assert "seed" not in config and "augs" not in config
  assert [(run["setting"], run["seed"]) for run in report["runs"]] == [
    ("none", 3),
    ("cutblur", 3),
    ("none", 4),
    ("cutblur", 4),
  ]
  for run in report["runs"]:
    assert run["num_train_steps"] == run["steps"] == 2 and run["best_step"] in (1, 2)
    assert [step for step, _ in run["validation"]] == [1, 2]
    for key in report["metrics"]:
      assert _finite(run[key]), (key, run)
      assert sorted(run["per_image"][key]) == TEST_NAMES
      mean = np.mean(list(run["per_image"][key].values()))
      assert run[key] == pytest.approx(mean)
    assert "num_blocks" not in run
    # The final step's PSNR under the name the report contract gives it, per photo too.
    assert run["final_psnr"] == run["psnr"]
    assert run["per_image"]["final_psnr"] == run["per_image"]["psnr"]
    assert 0 < run["train_wall_time_s"] < run["wall_time_s"]
  assert [entry["setting"] for entry in report["summary"]] == ["none", "cutblur"]
  assert "difference_vs_none" not in report["summary"][0]


def test_runs_differ_only_in_their_setting(tiny_study):
  _, cwd, _ = tiny_study
  none = json.loads((cwd / "runs" / "none-seed3" / "config.json").read_text())
  cutblur = json.loads((cwd / "runs" / "cutblur-seed3" / "config.json").read_text())
  assert {key for key in none if none[key] != cutblur[key]} == {"augs", "alpha"}
  assert none["augs"] == ["none"] and cutblur["augs"] == ["cutblur"]
  assert none["eval_every_steps"] == none["checkpoint_every_steps"] == 1  # a tenth of 2 steps


def test_budgets_end_annealed_at_the_papers_fractions():
  assert studies.schedule(700_000) == {
    "decay": "200-400-600",
    "eval_every_steps": 70_000,
    "checkpoint_every_steps": 70_000,
  }
  args = reproduce.parse_args(["--study", "ablation"])
  config = reproduce.run_config(args, studies.Cell("none", 0))
  milestones = train.resolve_recipe(config).optimizer.milestones
  assert milestones == (86, 171, 257) and milestones[-1] < config.num_train_steps == 300


def test_the_expected_time_counts_the_passes_over_the_test_photos():
  passes = {name: study.test_passes for name, study in studies.STUDIES.items()}
  assert passes == {"hr_input": 4, "ablation": 2, "regularization": 2, "denoise": 6}
  config = reproduce.run_config(
    reproduce.parse_args(["--study", "ablation"]), studies.Cell("none", 0)
  )
  untested = studies.expected_seconds(config, test_passes=0)
  assert studies.expected_seconds(config, test_passes=2) == pytest.approx(untested + 24.0)


def test_paired_differences_are_seed_by_seed_and_photo_by_photo(tiny_study):
  _, _, report = tiny_study
  runs = {(run["setting"], run["seed"]): run for run in report["runs"]}
  entry = report["summary"][1]
  for key in report["metrics"]:
    diffs = [runs["cutblur", seed][key] - runs["none", seed][key] for seed in (3, 4)]
    paired = entry["difference_vs_none"][key]
    assert paired["n"] == 2
    assert paired["by_seed"] == pytest.approx({"3": diffs[0], "4": diffs[1]})
    assert paired["mean"] == pytest.approx(np.mean(diffs))
    assert paired["std"] == pytest.approx(np.std(diffs, ddof=1))
    assert paired["seeds_up"] + paired["seeds_down"] <= 2
    by_photo = {
      name: np.mean(
        [
          runs["cutblur", seed]["per_image"][key][name] - runs["none", seed]["per_image"][key][name]
          for seed in (3, 4)
        ]
      )
      for name in TEST_NAMES
    }
    assert paired["by_photo"] == pytest.approx(by_photo)
    assert paired["photos_up"] == sum(v > 0 for v in by_photo.values())
    values = [runs["cutblur", seed][key] for seed in (3, 4)]
    assert entry[key]["mean"] == pytest.approx(np.mean(values))
    assert entry[key]["std"] == pytest.approx(np.std(values, ddof=1))
  for key in report["tested"]:  # the study's claims: corrected over its comparisons
    paired = entry["difference_vs_none"][key]
    assert paired["comparisons"] == 2 and paired["p_holm"] >= paired["p_photos"]
    assert paired["effect"] in ("+", "-", "0")


def test_rerun_reads_finished_runs_without_training(tiny_study, monkeypatch):
  argv, cwd, report = tiny_study
  monkeypatch.chdir(cwd)

  def refuse(*args, **kwargs):
    raise AssertionError("a finished run was trained again")

  monkeypatch.setattr(train, "train_and_evaluate", refuse)
  again = reproduce.main([*argv, "--overwrite"])  # the report it wrote is replaced
  assert again["runs"] == json.loads(json.dumps(report["runs"]))
  assert again["summary"] == json.loads(json.dumps(report["summary"]))


def test_a_cell_retrained_from_scratch_gives_the_recorded_psnr(tiny_study, tmp_path):
  argv, _, report = tiny_study
  cell = reproduce.main(
    [
      "--study",
      "ablation",
      "--settings",
      "cutblur",
      "--seeds",
      "4",
      "--num_train_steps",
      "2",
      "--workdir",
      str(tmp_path),
      *TINY,
    ]
  )
  recorded = [run for run in report["runs"] if run["run"] == "cutblur-seed4"][0]
  assert abs(cell["runs"][0]["psnr"] - recorded["psnr"]) < 0.01
  assert abs(cell["runs"][0]["best_psnr"] - recorded["best_psnr"]) < 0.01


def test_a_finished_run_of_another_config_is_refused(tiny_study, monkeypatch):
  argv, cwd, _ = tiny_study
  monkeypatch.chdir(cwd)
  with pytest.raises(ValueError, match=r"another config \(lr differ\)"):
    reproduce.main([*argv, "--set", "lr=0.01", "--overwrite"])
  # A field added to the config since a run was made counts as its default.
  record_path = cwd / "runs" / "none-seed3" / RUN_FILE
  record = json.loads(record_path.read_text())
  assert not differences(
    {k: v for k, v in record["config"].items() if k != "per_sample"}, record["config"]
  )
  assert differences(record["config"], {**record["config"], "per_sample": True}) == ["per_sample"]


def test_summary_statistics_by_hand():
  runs = [
    {"setting": s, "seed": seed, "psnr": p, "ssim": 0.5}
    for s, seed, p in [
      ("none", 0, 30.0),
      ("none", 1, 31.0),
      ("none", 2, 32.0),
      ("moa", 0, 31.0),
      ("moa", 1, 31.0),
      ("moa", 2, 31.0),
      ("moa", 5, 40.0),
    ]
  ]  # seed 5 has no baseline: not paired
  none, moa = studies.summarize(runs, ["psnr", "ssim"])
  assert none == {
    "setting": "none",
    "n": 3,
    "psnr": {"mean": 31.0, "std": 1.0},
    "ssim": {"mean": 0.5, "std": 0.0},
  }
  assert moa["n"] == 4 and moa["psnr"]["mean"] == pytest.approx(33.25)
  paired = moa["difference_vs_none"]["psnr"]
  assert paired["by_seed"] == {"0": 1.0, "1": 0.0, "2": -1.0}
  assert paired["n"] == 3 and paired["mean"] == 0.0 and paired["std"] == pytest.approx(1.0)


def _gain(train_set, by_seed, photos_up, photos_down):
  mean = float(np.mean(by_seed))
  return {
    "setting": "moa",
    "train_set": train_set,
    "difference_vs_none": {
      "best_psnr": {
        "mean": mean,
        "n": len(by_seed),
        "seeds_up": sum(d > 0 for d in by_seed),
        "seeds_down": sum(d < 0 for d in by_seed),
        "photos_up": photos_up,
        "photos_down": photos_down,
      }
    },
  }


def test_the_regularization_premise_and_verdict_follow_the_registered_rule():
  def none_tiny(seed, curve):
    return {"setting": "none", "train_set": "tiny", "seed": seed, "validation": curve}

  overfits = [none_tiny(0, [[1, 30.0], [2, 30.5], [3, 30.35]])]
  overfits.append(none_tiny(1, [[1, 30.0], [2, 30.25], [3, 30.13]]))  # a drop of 0.12
  held = regularization.premise(overfits + [{"setting": "moa", "train_set": "tiny", "seed": 0}])
  assert held["held"] and [row["peak_step"] for row in held["runs"]] == [2, 2]
  assert held["runs"][0]["drop_db"] == pytest.approx(0.15)
  failed = regularization.premise(overfits + [none_tiny(2, [[1, 30.0], [2, 30.5], [3, 30.45]])])
  assert not failed["held"] and len(failed["runs"]) == 3
  assert not regularization.premise([])["held"]  # no tiny run: nothing shown

  medium = _gain("medium", [0.1, 0.1, 0.1], 8, 4)
  cases = [
    (failed, [_gain("tiny", [1.0, 1.0, 1.0], 12, 0), medium], "outside the paper's regime"),
    (held, [_gain("tiny", [0.5, 0.3, 0.2], 7, 5), medium], "agrees"),
    (held, [_gain("tiny", [0.5, 0.3, 0.2], 6, 6), medium], "inconclusive"),  # not most photos
    (held, [_gain("tiny", [0.5, 0.3, -0.1], 9, 3), medium], "inconclusive"),  # a seed down
    (held, [_gain("tiny", [0.05, 0.05, 0.05], 9, 3), medium], "inconclusive"),  # not larger
    (held, [_gain("tiny", [-0.5, -0.3, -0.2], 2, 10), medium], "disagrees"),
  ]
  for premise, summary, expected in cases:
    assert regularization.verdict(summary, premise) == expected, (summary, expected)


def test_the_regularization_study_runs_end_to_end(tmp_path):
  root = tmp_path / "photos"
  shutil.copytree(os.environ["CUTBLUR_JAX_PHOTOS"], root)
  first = next(photo for photo in photos.PHOTOS if photo.split == "train")
  shutil.copy(
    root / "PhotosTrain" / "HR" / "a.png", root / "PhotosTrain" / "HR" / f"{first.name}.png"
  )
  report = reproduce.main(
    [
      "--study",
      "regularization",
      "--seeds",
      "0",
      "--num_train_steps",
      "3",
      "--tiny_size",
      "16",
      "--photos_root",
      str(root),
      "--workdir",
      str(tmp_path / "runs"),
      "--output",
      str(tmp_path / "regularization.json"),
      "--plot",
      str(tmp_path / "regularization.png"),
      *TINY,
    ]
  )
  assert [run["run"] for run in report["runs"]] == [
    "none-tiny-seed0",
    "moa-tiny-seed0",
    "none-medium-seed0",
    "moa-medium-seed0",
  ]
  assert report["train_images"] == {
    "PhotosCrops1x16_SR": [first.name],
    "PhotosTrain_SR": sorted([*TRAIN_NAMES, first.name]),
  }
  crop = np.asarray(Image.open(root / "PhotosCrops1x16" / "HR" / f"{first.name}.png"))
  assert crop.shape == (16, 16, 3)
  for run in report["runs"]:
    assert _finite(run["final_psnr"]) and _finite(run["best_psnr"])
    assert sorted(run["per_image"]["best_psnr"]) == TEST_NAMES
  (row,) = report["premise"]["runs"]
  curve = report["runs"][0]["validation"]
  assert [step for step, _ in curve] == [1, 2, 3] and row["final_psnr"] == curve[-1][1]
  assert row["drop_db"] == pytest.approx(max(p for _, p in curve) - curve[-1][1])
  assert report["premise"]["held"] == (row["drop_db"] >= regularization.DROP_DB)
  assert report["verdict"] == regularization.verdict(report["summary"], report["premise"])
  assert report["tested"] == ["psnr", "best_psnr"]
  moa = [entry for entry in report["summary"] if entry["setting"] == "moa"]
  assert [entry["train_set"] for entry in moa] == ["tiny", "medium"]
  assert {entry["difference_vs_none"]["best_psnr"]["comparisons"] for entry in moa} == {4}
  assert (tmp_path / "regularization.png").read_bytes()[:4] == b"\x89PNG"


def test_regularization_groups_pair_within_a_training_set():
  runs = [
    {"setting": s, "seed": 0, "train_set": t, "psnr": p}
    for s, t, p in [
      ("none", "tiny", 30.0),
      ("moa", "tiny", 29.0),
      ("none", "medium", 31.0),
      ("moa", "medium", 33.0),
    ]
  ]
  summary = studies.summarize(runs, ["psnr"])
  moa = [entry for entry in summary if entry["setting"] == "moa"]
  assert [(e["train_set"], e["difference_vs_none"]["psnr"]["mean"]) for e in moa] == [
    ("tiny", -1.0),
    ("medium", 2.0),
  ]


def test_photo_level_tests_and_holm_correction_by_hand():
  photos_up = {f"p{i}": 1.0 + i for i in range(8)}
  runs = [
    {
      "setting": "none",
      "seed": 0,
      "psnr": 30.0,
      "per_image": {"psnr": dict.fromkeys(photos_up, 30.0)},
    },
    {
      "setting": "moa",
      "seed": 0,
      "psnr": 31.0,
      "per_image": {"psnr": {k: 30.0 + v for k, v in photos_up.items()}},
    },
  ]
  (moa,) = [e for e in studies.summarize(runs, ["psnr"], ["psnr"]) if e["setting"] == "moa"]
  paired = moa["difference_vs_none"]["psnr"]
  assert (paired["photos_up"], paired["photos_down"]) == (8, 0)
  assert paired["p_photos"] == pytest.approx(2 / 2**8)  # exact: every photo moves up
  assert paired["comparisons"] == 1 and paired["p_holm"] == paired["p_photos"]
  assert paired["effect"] == "+" and paired["p_seeds"] is None  # one seed: no t-test
  assert studies.holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]


def test_table_rows():
  runs = [
    {"setting": s, "seed": k, "psnr": p, "ssim": 0.5, "best_psnr": p + 1}
    for s, k, p in [("none", 0, 30.0), ("none", 1, 32.0), ("moa", 0, 31.0), ("moa", 1, 31.0)]
  ]
  report = {
    "summary": studies.summarize(runs, ["psnr", "ssim", "best_psnr"]),
    "metrics": ["psnr", "ssim", "best_psnr"],
    "baseline": {"psnr": 29.5, "ssim": 0.4},
  }
  lines = studies.format_table(report).splitlines()
  assert lines[0] == "| setting | seeds | PSNR (dB), final | SSIM, final | PSNR (dB), best |"
  assert lines[2] == "| none | 2 | 31.00 ± 1.41 | 0.5000 ± 0.0000 | 32.00 ± 1.41 |"
  assert lines[4] == "| bicubic | - | 29.50 | 0.4000 | 29.50 |"
  assert lines[5] == "| moa - none | 2 | +0.00 ± 1.41 | +0.0000 ± 0.0000 | +0.00 ± 1.41 |"


def test_denoise_trains_and_tests_at_its_noise_levels(monkeypatch, tmp_path):
  args = reproduce.parse_args(["--study", "denoise", "--seeds", "0"])
  config = reproduce.run_config(args, studies.Cell("none", 0))
  assert (config.dataset, config.valid_dataset, config.sigma, config.scale) == (
    "PhotosTrain_DN",
    "PhotosValid_DN",
    30,
    1,
  )
  train_pair = registry.create_dataset(config, "train")[0]
  noise = train_pair.lr.astype(float) - train_pair.hr.astype(float)
  assert train_pair.lr.shape == train_pair.hr.shape
  unclipped = (train_pair.hr > 60) & (train_pair.hr < 195)
  assert np.std(noise[unclipped]) == pytest.approx(30, rel=0.1)

  seen = []

  def fake_evaluate(params, arch, dataset, **kwargs):
    pair = dataset[0]
    mask = (pair.hr > 60) & (pair.hr < 195)
    sigma = float(np.std(pair.lr.astype(float)[mask] - pair.hr.astype(float)[mask]))
    seen.append((list(dataset.names), sigma, kwargs["hr_input_test"]))
    psnr = 40.0 - round(sigma, -1) / 10
    images = [{"name": n, "psnr": psnr, "ssim": 0.9} for n in dataset.names]
    mean = {"psnr": psnr, "ssim": 0.9, "bicubic_psnr": 20.0, "bicubic_ssim": 0.5}
    return {"mean": mean, "images": images}

  monkeypatch.setattr(measure.checkpoint, "load_model", lambda path: ({}, {}))
  monkeypatch.setattr(measure.evaluation, "evaluate_model", fake_evaluate)
  means, per_image, baseline = measure.measure_checkpoint(
    studies.STUDIES["denoise"], config, tmp_path, "PhotosTest_DN"
  )
  assert [(n, h) for n, _, h in seen] == [(TEST_NAMES, False)] * 3
  assert [s for _, s, _ in seen] == pytest.approx([10, 30, 50], rel=0.1)
  assert means == {"psnr_sigma10": 39.0, "psnr_sigma30": 37.0, "psnr": 37.0, "ssim": 0.9,
                   "psnr_sigma50": 35.0}  # fmt: skip
  assert per_image["psnr_sigma50"] == dict.fromkeys(TEST_NAMES, 35.0)
  assert baseline["psnr"] == 20.0  # the noisy input itself


@pytest.mark.parametrize("best_weights", [1.0, 2.0])
def test_a_best_step_equal_to_the_final_one_is_measured_once(monkeypatch, tmp_path, best_weights):
  steps = {"latest": 4, "best": 4 if best_weights == 1.0 else 2}
  monkeypatch.setattr(
    measure.checkpoint, "run_checkpoint", lambda run_dir, kind: run_dir / kind / str(steps[kind])
  )
  weights = {"latest": 1.0, "best": best_weights}
  arch = {"model": "EDSR"}
  monkeypatch.setattr(
    measure.checkpoint,
    "load_model",
    lambda path: ({"w": np.full(3, weights[path.parent.name])}, arch),
  )
  calls = []

  def fake_evaluate(params, arch, dataset, **kwargs):
    calls.append(float(params["w"][0]))
    psnr = 30.0 + float(params["w"][0])
    images = [{"name": n, "psnr": psnr, "ssim": 0.9, "hr_input_psnr": 1.0} for n in dataset.names]
    mean = {"psnr": psnr, "ssim": 0.9, "hr_input_psnr": 1.0, "bicubic_psnr": 20.0,
            "bicubic_ssim": 0.5}  # fmt: skip
    return {"mean": mean, "images": images}

  monkeypatch.setattr(measure.evaluation, "evaluate_model", fake_evaluate)
  args = reproduce.parse_args(["--study", "hr_input", "--seeds", "0"])
  config = reproduce.run_config(args, studies.Cell("none", 0))
  result = measure.measure(studies.STUDIES["hr_input"], config, tmp_path, "PhotosTest_SR")
  assert calls == ([1.0] if best_weights == 1.0 else [1.0, 2.0])
  assert result["best_step"] == (4 if best_weights == 1.0 else 2)
  assert (result["psnr"], result["best_psnr"]) == (31.0, 30.0 + best_weights)
  assert result["per_image"]["best_psnr"] == dict.fromkeys(TEST_NAMES, 30.0 + best_weights)


def test_settings_and_base_fields():
  base = default_config.get_config()
  for field, value in studies.BASE_FIELDS.items():
    if field not in ("dataset", "valid_dataset", "synthesize_lr", "log_every_steps"):
      assert base[field] == value, field  # the default run's network and recipe
  ablation = studies.STUDIES["ablation"]
  assert ablation.settings[0] == "none" and set(ablation.settings) < set(studies.SETTINGS)
  assert set(studies.SETTINGS) - set(ablation.settings) == {
    "moa_per_sample",
    "soft_cutblur",
    "degradation_mixup",
  }
  for name, fields in studies.SETTINGS.items():
    assert set(fields) <= set(studies.AUGMENT_FIELDS), name
  args = reproduce.parse_args(["--study", "ablation", "--settings", "moa_per_sample"])
  config = reproduce.run_config(args, studies.Cell("moa_per_sample", 0))
  policy = train.resolve_recipe(config).policy
  assert policy.per_sample and policy.augs[-1] == "cutblur"
  cutout = reproduce.run_config(args, studies.Cell("pixel_drop_25", 0))
  assert cutout.augs == ("cutout",) and cutout.alpha == (0.25,)
  box = train.resolve_recipe(reproduce.run_config(args, studies.Cell("box_cutout_25", 0))).policy
  assert box.augs == ("box_cutout",) and box.alphas == (0.5,)  # a quarter of the area
  old_name = reproduce.parse_args(["--study", "ablation", "--settings", "none", "cutout_25"])
  assert old_name.settings == ["none", "pixel_drop_25"]


@pytest.mark.parametrize(
  "argv, message",
  [
    (["--study", "ablation", "--set", "seed=3"], "the study sets seed"),
    (["--study", "regime"], "--study regime was retired in version 2 in favour of --study reg"),
    (["--study", "regim"], "unknown study 'regim'; known: hr_input, ablation, regularization"),
    (["--study", "ablation", "--set", "augs=none"], "the study sets augs"),
    (["--study", "ablation", "--seeds", "0", "0"], "distinct"),
    (["--study", "ablation", "--settings", "cutblurr"], "unknown setting 'cutblurr'"),
    (["--study", "ablation", "--num_train_steps", "0"], "positive"),
    (["--study", "ablation", "--train_sets", "tiny"], "belong to --study regularization"),
    (["--study", "denoise", "--scale", "2"], "--scale"),
    (["--study", "ablation", "--set", "num_blocks"], "FIELD=VALUE"),
    (["--study", "nope"], "--study"),
  ],
)
def test_bad_arguments_get_one_line(capsys, argv, message):
  with pytest.raises(SystemExit) as exit_info:
    reproduce.parse_args(argv)
  assert exit_info.value.code == 2
  err = capsys.readouterr().err
  assert message in err and len(err.strip().splitlines()) == 1


def test_a_bad_field_is_refused_before_anything_trains(tmp_path):
  with pytest.raises(ValueError, match="no field 'num_blokcs'"):
    reproduce.main(["--study", "hr_input", "--set", "num_blokcs=2", "--workdir", str(tmp_path)])
  assert list(tmp_path.iterdir()) == []


def test_dry_run_prints_the_plan(capsys, tmp_path):
  assert (
    reproduce.main(["--study", "regularization", "--dry_run", "--workdir", str(tmp_path)]) == {}
  )
  out = capsys.readouterr().out
  assert out.startswith("Study regularization: 12 runs (0 finished), 2000 steps each")
  assert "expected CPU time about" in out and "moa-medium-seed2" in out
  assert list(tmp_path.iterdir()) == []


def test_the_old_hr_input_command_maps_onto_the_runner():
  assert reproduce_hr_input.translate(
    ["--seeds", "0", "1", "--num_train_steps", "3000", "--decay", "2", "--workdir", "w"]
  ) == [
    "--study",
    "hr_input",
    "--seeds",
    "0",
    "1",
    "--num_train_steps",
    "3000",
    "--decay",
    "2",
    "--workdir",
    "w",
    "--settings",
    "none",
    "moa",
  ]
  with pytest.raises(SystemExit, match="--config"):
    reproduce_hr_input.translate(["--config", "x.py"])
  args = reproduce.parse_args(reproduce_hr_input.translate(["--seeds", "0"]))
  assert args.settings == ["none", "moa"] and args.num_train_steps == 1500


def test_plots_are_written(tiny_study, tmp_path):
  from cutblur_jax.studies import plots  # pylint: disable=g-import-not-at-top

  _, _, report = tiny_study
  path = plots.plot_report(report, tmp_path / "ablation.png")
  assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
  with pytest.raises(ValueError, match="no setting paired"):
    plots.plot_report({**report, "summary": report["summary"][:1]}, tmp_path / "none.png")


def test_docstring_examples_run():
  import doctest  # pylint: disable=g-import-not-at-top
  from cutblur_jax.studies import definitions, summary  # pylint: disable=g-import-not-at-top

  for module in (definitions, summary, reproduce_hr_input):
    results = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert results.attempted > 0 and results.failed == 0, module.__name__


def test_plot_without_matplotlib_fails_before_training(monkeypatch, tmp_path):
  monkeypatch.setitem(sys.modules, "cutblur_jax.studies.plots", None)  # as if not installed
  monkeypatch.delattr(studies, "plots", raising=False)  # an earlier import leaves it here
  with pytest.raises(ImportError, match=r"--plot needs matplotlib.*\[studies\]"):
    reproduce.main(
      ["--study", "denoise", "--plot", str(tmp_path / "p.png"), "--workdir", str(tmp_path / "runs")]
    )
  assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
  "raised, status, line",
  [
    (
      train.TrainingInterrupted(15, 7, "stopped at step 7"),
      143,
      "Interrupted by signal 15 after the run in flight saved step 7; rerun the same command",
    ),
    (KeyboardInterrupt(), 130, "Interrupted; rerun the same command to resume"),
    (ValueError("bad --set"), 1, "error: bad --set"),
  ],
)
def test_the_cli_turns_a_stop_or_a_mistake_into_one_line(monkeypatch, capsys, raised, status, line):
  def stop():
    raise raised

  monkeypatch.setattr(reproduce, "main", stop)
  monkeypatch.setattr(sys, "argv", ["reproduce.py"])
  assert reproduce._main() == status  # pylint: disable=protected-access
  err = capsys.readouterr().err
  assert err.startswith(line) and len(err.strip().splitlines()) == 1
