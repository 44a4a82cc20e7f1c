"""Evaluation library and experiments/evaluate.py, end to end on the embedded data."""

from __future__ import annotations

import importlib
import json
import math
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from cutblur_jax import checkpoint, evaluation, metrics, models
from cutblur_jax import image as image_lib
from cutblur_jax.data.embedded import embedded_dataset
from cutblur_jax.data.bicubic import imresize
from cutblur_jax.data.types import ImagePair

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "evaluate.py"


def _load_script():
  return importlib.import_module("experiments.evaluate")


@pytest.fixture(scope="module")
def script():
  return _load_script()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  """A tiny random EDSR x2 saved as a model checkpoint: (path, params, arch)."""
  arch = models.model_arch("EDSR", 2, num_blocks=2, num_channels=8, res_scale=1.0)
  params = models.create_model(arch).init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))["params"]
  path = checkpoint.save_model(tmp_path_factory.mktemp("ckpt") / "edsr_x2", params, arch)
  return path, params, arch


def _pairs(scale=2, sizes=((32, 40), (30, 26)), seed=0):
  rng = np.random.default_rng(seed)
  pairs = []
  for i, (h, w) in enumerate(sizes):
    hr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    pairs.append(ImagePair(f"img{i}", hr, imresize(hr, 1 / scale)))
  return pairs


# --------------------------------------------------------------------------------------
# Library.


def test_bicubic_upscale_is_matlab_imresize():
  lr = np.random.default_rng(1).integers(0, 256, (7, 9, 3), dtype=np.uint8)
  up = evaluation.bicubic_upscale(lr, 3)
  assert up.dtype == np.uint8 and up.shape == (21, 27, 3)
  np.testing.assert_array_equal(up, imresize(lr, 3))
  np.testing.assert_array_equal(evaluation.bicubic_upscale(lr, 1), lr)


def test_evaluate_images_with_bicubic_oracle_and_identity():
  pairs = _pairs()
  hr_by_lr = {pair.lr.tobytes(): pair.hr for pair in pairs}
  options = dict(scale=2, crop_border=2, y_only=True)
  bicubic = evaluation.evaluate_images(
    pairs, lambda lr: evaluation.bicubic_upscale(lr, 2), hr_input=lambda hr: hr, **options
  )
  for row, pair in zip(bicubic["images"], pairs):
    assert row["psnr"] == row["bicubic_psnr"] and row["ssim"] == row["bicubic_ssim"]
    assert row["bicubic_psnr"] == metrics.psnr(
      imresize(pair.lr, 2), pair.hr, crop_border=2, y_only=True
    )
    assert row["hr_input_psnr"] == math.inf
  oracle = evaluation.evaluate_images(pairs, lambda lr: hr_by_lr[lr.tobytes()], **options)
  assert oracle["mean"]["psnr"] == math.inf and oracle["mean"]["ssim"] == 1.0
  assert "hr_input_psnr" not in oracle["mean"]
  assert oracle["mean"]["bicubic_psnr"] == pytest.approx(
    np.mean([row["bicubic_psnr"] for row in oracle["images"]])
  )
  assert (oracle["scale"], oracle["crop_border"], oracle["y_only"], oracle["round_y"]) == (
    2,
    2,
    True,
    True,
  )


def test_evaluate_images_rejects_wrong_sizes_naming_the_image():
  pairs = _pairs()
  with pytest.raises(ValueError, match=r"'img0'.*output has shape \(32, 38, 3\)"):
    evaluation.evaluate_images(
      pairs, lambda lr: np.zeros((32, 38, 3), np.uint8), scale=2, crop_border=0, y_only=False
    )
  bad = [ImagePair("odd", np.zeros((33, 40, 3), np.uint8), np.zeros((16, 20, 3), np.uint8))]
  with pytest.raises(ValueError, match="'odd'.*HR is 33x40"):
    evaluation.evaluate_images(bad, lambda lr: lr, scale=2, crop_border=0, y_only=False)
  with pytest.raises(ValueError, match="no images"):
    evaluation.evaluate_images([], lambda lr: lr, scale=2, crop_border=0, y_only=False)


def test_hr_input_forward_is_the_network_on_the_hr_image(tiny):
  _, params, arch = tiny
  hr = np.random.default_rng(2).integers(0, 256, (36, 50, 3), dtype=np.uint8)
  out = evaluation.hr_input_forward(params, arch, hr)
  direct = np.asarray(
    image_lib.quantize(
      models.create_model(arch).apply({"params": params}, hr[None].astype(np.float32))
    )
  )[0]
  assert out.shape == hr.shape and out.dtype == np.uint8
  # Padding is masked inside the network: equal up to float rounding at .5 ties.
  assert np.abs(out.astype(int) - direct).max() <= 1 and (out == direct).mean() > 0.999
  with pytest.raises(ValueError, match="multiple of the model's scale 2"):
    evaluation.hr_input_forward(params, arch, hr[:35])


class _SameSizePairs(list):
  """RealSR v1-like pairs: LR already at HR size, for a scale-2 network."""

  input_scale = 1


def test_evaluate_model_feeds_same_size_pairs_to_the_network_as_they_are(tiny):
  _, params, arch = tiny
  rng = np.random.default_rng(3)
  hr = rng.integers(0, 256, (36, 50, 3), dtype=np.uint8)
  lr = np.asarray(image_lib.upsample_nearest(imresize(hr, 0.5), 2))
  report = evaluation.evaluate_model(
    params, arch, _SameSizePairs([ImagePair("a", hr, lr)]), hr_input_test=False
  )
  sr = evaluation.hr_input_forward(params, arch, lr)  # the network on the input as it is
  row = report["images"][0]
  assert row["psnr"] == pytest.approx(metrics.psnr(sr, hr, crop_border=2, y_only=True))
  # The baseline of a same-size pair is its input.
  assert row["bicubic_psnr"] == pytest.approx(metrics.psnr(lr, hr, crop_border=2, y_only=True))


def test_center_crop_pair_keeps_hr_and_lr_aligned():
  pair = _pairs(scale=2, sizes=((40, 60),))[0]
  cropped = evaluation.center_crop_pair(pair, 20, 2)
  assert cropped.hr.shape == (20, 20, 3) and cropped.lr.shape == (10, 10, 3)
  np.testing.assert_array_equal(cropped.hr, pair.hr[10:30, 20:40])
  np.testing.assert_array_equal(cropped.lr, pair.lr[5:15, 10:20])
  same = evaluation.center_crop_pair(pair, 1000, 2)
  np.testing.assert_array_equal(same.hr, pair.hr)


def test_hr_pairs_modcrop_convert_and_synthesise(tmp_path):
  rng = np.random.default_rng(3)
  rgb = rng.integers(0, 256, (31, 45, 3), dtype=np.uint8)
  gray = rng.integers(0, 256, (20, 22), dtype=np.uint8)
  Image.fromarray(rgb).save(tmp_path / "b_rgb.png")
  Image.fromarray(gray).save(tmp_path / "a_gray.png")
  Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])).save(
    tmp_path / "c_rgba.png"
  )
  pairs = evaluation.hr_pairs(tmp_path, 4)
  assert [p.name for p in pairs] == ["a_gray", "b_rgb", "c_rgba"]
  assert pairs[0].hr.shape == (20, 20, 3)
  np.testing.assert_array_equal(pairs[0].hr[..., 1], gray[:20, :20])
  np.testing.assert_array_equal(pairs[1].hr, rgb[:28, :44])
  np.testing.assert_array_equal(pairs[1].lr, imresize(rgb[:28, :44], 1 / 4))
  np.testing.assert_array_equal(pairs[2].hr, pairs[1].hr)
  single = evaluation.hr_pairs(tmp_path / "b_rgb.png", 2)
  assert len(single) == 1 and single[0].hr.shape == (30, 44, 3)
  with pytest.raises(ValueError, match="does not exist"):
    evaluation.hr_pairs(tmp_path / "missing", 2)
  (tmp_path / "d_cut.png").write_bytes((tmp_path / "b_rgb.png").read_bytes()[:200])
  with pytest.raises(ValueError, match="d_cut.png"):
    evaluation.hr_pairs(tmp_path, 2)


def test_format_report_and_atomic_json(tmp_path):
  report = evaluation.evaluate_images(
    _pairs(),
    lambda lr: imresize(lr, 2),
    scale=2,
    crop_border=2,
    y_only=True,
    hr_input=lambda hr: hr,
  )
  text = evaluation.format_report(report)
  lines = text.splitlines()
  assert lines[0].split()[:3] == ["image", "PSNR", "SSIM"] and "HR-input PSNR" in lines[0]
  assert lines[1].startswith("img0") and lines[-1].startswith("mean") and "inf" in lines[-1]
  path = tmp_path / "report.json"
  path.write_text("old")
  evaluation.write_report(report, path)

  def reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")

  written = json.loads(path.read_text(), parse_constant=reject_constant)  # standard JSON only
  assert written["mean"]["hr_input_psnr"] is None  # inf (identical images) as null
  assert [row["hr_input_psnr"] for row in written["images"]] == [None, None]
  assert written["mean"]["psnr"] == report["mean"]["psnr"] and math.isfinite(
    written["mean"]["psnr"]
  )
  assert written["images"][0]["name"] == "img0" and written["y_only"] is True
  with pytest.raises(TypeError):
    evaluation.write_report({"bad": object()}, path)
  assert json.loads(path.read_text())["scale"] == 2  # The old report survives a failed write.
  assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
  with pytest.raises(ValueError, match="does not exist"):
    evaluation.write_report(report, tmp_path / "missing" / "r.json")


# --------------------------------------------------------------------------------------
# experiments/evaluate.py.


def test_cli_end_to_end_on_embedded(tiny, script, tmp_path, capsys):
  path, params, arch = tiny
  out = tmp_path / "report.json"
  assert (
    script.main(
      ["--checkpoint", str(path), "--dataset", "embedded", "--max_size", "96", "--json", str(out)]
    )
    == 0
  )
  printed = capsys.readouterr().out
  assert "EDSR x2 on embedded validation x2: 2 images, crop 2, Y" in printed
  assert "chelsea" in printed and "stereo_motorcycle" in printed and "\nmean" in printed
  report = json.loads(out.read_text())
  assert [row["name"] for row in report["images"]] == ["chelsea", "stereo_motorcycle"]
  for row in report["images"]:
    assert set(row) == {"name", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim", "hr_input_psnr"}
    assert 0 < row["ssim"] < 1 and 20 < row["bicubic_psnr"] < 60
  assert set(report["mean"]) == {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim", "hr_input_psnr"}
  for key, value in report["mean"].items():
    assert value == pytest.approx(np.mean([row[key] for row in report["images"]]))
  # The same numbers as the library on the same (cropped) pairs.
  pairs = [evaluation.center_crop_pair(p, 96, 2) for p in embedded_dataset("validation", 2)]
  expected = evaluation.evaluate_model(params, arch, pairs, protocol="embedded")
  assert report["images"] == expected["images"]
  assert report["arch"] == arch and report["crop_border"] == 2 and report["y_only"]


def test_cli_hr_folder_and_benchmark_layout_agree(tiny, script, tmp_path, capsys):
  path, _, _ = tiny
  pairs = _pairs(scale=2, sizes=((48, 64), (40, 40)), seed=4)
  hr_dir, lr_dir = tmp_path / "Set" / "HR", tmp_path / "Set" / "X2"
  hr_dir.mkdir(parents=True)
  lr_dir.mkdir()
  for pair in pairs:
    Image.fromarray(pair.hr).save(hr_dir / f"{pair.name}.png")
    Image.fromarray(pair.lr).save(lr_dir / f"{pair.name}.png")
  reports = []
  for source in (
    ["--hr", str(hr_dir)],
    ["--dataset", str(hr_dir)],
    ["--dataset", str(tmp_path / "Set")],
  ):
    out = tmp_path / "r.json"
    assert (
      script.main(
        [
          "--checkpoint",
          str(path),
          *source,
          "--json",
          str(out),
          "--channels",
          "rgb",
          "--crop_border",
          "3",
          "--no_hr_input_test",
          "--overwrite",
        ]
      )
      == 0
    )
    reports.append(json.loads(out.read_text()))
  capsys.readouterr()
  assert reports[0]["images"] == reports[1]["images"] == reports[2]["images"]
  assert reports[0]["crop_border"] == 3 and not reports[0]["y_only"]
  assert "hr_input_psnr" not in reports[0]["mean"]


@pytest.mark.parametrize(
  "case",
  [
    "not_a_checkpoint",
    "unknown_name",
    "truncated",
    "json_folder",
    "json_is_a_folder",
    "folder_name_needs_root",
  ],
)
def test_cli_bad_input_exits_1_with_one_line(tiny, script, tmp_path, capsys, case):
  path, _, _ = tiny
  images = tmp_path / "images"
  images.mkdir()
  Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(images / "ok.png")
  args = {
    "not_a_checkpoint": (["--checkpoint", str(images), "--hr", str(images)], str(images)),
    "unknown_name": (["--checkpoint", str(path), "--dataset", "DIV3K"], "DIV3K"),
    "truncated": (["--checkpoint", str(path), "--hr", str(images / "cut.png")], "cut.png"),
    "json_folder": (
      [
        "--checkpoint",
        str(path),
        "--hr",
        str(images),
        "--json",
        str(tmp_path / "nowhere" / "r.json"),
      ],
      "nowhere",
    ),
    "json_is_a_folder": (
      ["--checkpoint", str(path), "--hr", str(images), "--json", str(tmp_path / "a_folder")],
      "is a folder",
    ),
    "folder_name_needs_root": (["--checkpoint", str(path), "--dataset", "Set5_SR"], "dataset_root"),
  }
  (images / "cut.png").write_bytes((images / "ok.png").read_bytes()[:40])
  (tmp_path / "a_folder").mkdir()
  argv, needle = args[case]
  assert script.main(argv) == 1
  captured = capsys.readouterr()
  assert captured.err.startswith("error: ") and needle in captured.err
  assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_cli_save_images_writes_each_output_and_refuses_input_folders(
  tiny, script, tmp_path, capsys
):
  path, params, arch = tiny
  pairs = _pairs(scale=2, sizes=((48, 64), (40, 40)), seed=6)
  hr_dir = tmp_path / "photos"
  hr_dir.mkdir()
  for pair in pairs:
    Image.fromarray(pair.hr).save(hr_dir / f"{pair.name}.png")
  out = tmp_path / "sr"
  assert (
    script.main(
      [
        "--checkpoint",
        str(path),
        "--hr",
        str(hr_dir),
        "--no_hr_input_test",
        "--save_images",
        str(out),
      ]
    )
    == 0
  )
  assert f"Wrote 2 images to {out}" in capsys.readouterr().out
  assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img1.png"]
  for pair in evaluation.hr_pairs(hr_dir, 2):
    saved = np.asarray(Image.open(out / f"{pair.name}.png"))
    from cutblur_jax import inference  # pylint: disable=import-outside-toplevel

    np.testing.assert_array_equal(saved, inference.super_resolve(params, arch, pair.lr))
  for folder in (hr_dir, hr_dir / "sub", path):
    assert (
      script.main(["--checkpoint", str(path), "--hr", str(hr_dir), "--save_images", str(folder)])
      == 1
    )
    err = capsys.readouterr().err
    assert err.startswith("error: --save_images") and "input" in err
    assert err.count("\n") == 1
  assert sorted(p.name for p in hr_dir.iterdir()) == ["img0.png", "img1.png"]


def test_cli_uses_the_ema_weights_unless_raw_weights(tiny, script, tmp_path, capsys):
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel

  _, params, arch = tiny
  path = checkpoint.save_model(tmp_path / "ema_ckpt", params, arch)
  ema = jax.tree.map(lambda p: p * 0.5, params)  # a different network, stored as the average
  with ocp.StandardCheckpointer() as saver:
    saver.save((path / checkpoint.EMA_ITEM).absolute(), ema)
  loaded, _ = checkpoint.load_model(path)
  raw, _ = checkpoint.load_model(path, use_ema=False)
  for a, b in zip(jax.tree.leaves((loaded, raw)), jax.tree.leaves((ema, params))):
    np.testing.assert_array_equal(a, b)
  reports = {}
  for flags in ([], ["--raw_weights"]):
    out = tmp_path / f"r{len(flags)}.json"
    assert (
      script.main(
        [
          "--checkpoint",
          str(path),
          "--dataset",
          "embedded",
          "--max_size",
          "48",
          "--no_hr_input_test",
          "--json",
          str(out),
          *flags,
        ]
      )
      == 0
    )
    reports[bool(flags)] = json.loads(out.read_text())["mean"]["psnr"]
  capsys.readouterr()
  pairs = [evaluation.center_crop_pair(p, 48, 2) for p in embedded_dataset("validation", 2)]
  for use_raw, weights in ((False, ema), (True, params)):
    expected = evaluation.evaluate_model(
      weights, arch, pairs, protocol="embedded", hr_input_test=False
    )["mean"]["psnr"]
    assert reports[use_raw] == pytest.approx(expected, abs=1e-9)
  assert reports[False] != reports[True]


def test_cli_process_exit_status(tmp_path):
  result = subprocess.run(
    [sys.executable, str(SCRIPT), "--checkpoint", str(tmp_path / "none"), "--dataset", "embedded"],
    capture_output=True,
    text=True,
    cwd=ROOT,
    timeout=300,
    check=False,
  )
  assert result.returncode == 1
  assert result.stderr.strip().startswith("error: ") and str(tmp_path / "none") in result.stderr
  assert "Traceback" not in result.stderr


def test_baseline_metrics_is_the_reports_bicubic_column():
  pairs = _pairs()
  assert evaluation.input_scale_of(pairs) == 2
  report = evaluation.evaluate_images(
    pairs, lambda lr: evaluation.bicubic_upscale(lr, 2), scale=2, crop_border=2, y_only=True
  )
  baseline = evaluation.baseline_metrics(pairs, evaluation.EvalProtocol(crop_border=2, y_only=True))
  assert baseline == {
    "bicubic_psnr": report["mean"]["bicubic_psnr"],
    "bicubic_ssim": report["mean"]["bicubic_ssim"],
  }
  assert baseline["bicubic_psnr"] == report["mean"]["psnr"]  # measured as the model was
  rng = np.random.default_rng(1)
  same_size = [
    ImagePair(p.name, p.hr, np.clip(p.hr + rng.normal(0, 5, p.hr.shape), 0, 255).astype(np.uint8))
    for p in pairs
  ]
  assert evaluation.input_scale_of(same_size) == 1
  noisy = evaluation.baseline_metrics(
    same_size, evaluation.EvalProtocol(crop_border=0, y_only=False)
  )
  assert set(noisy) == {"input_psnr", "input_ssim"}
  assert noisy["input_psnr"] == pytest.approx(
    np.mean([metrics.psnr(p.lr, p.hr) for p in same_size])
  )


def test_evaluate_model_without_baseline_or_hr_input_reports_the_model_only(tiny):
  _, params, arch = tiny
  full = evaluation.evaluate_model(params, arch, _pairs(), hr_input_test=False)
  bare = evaluation.evaluate_model(params, arch, _pairs(), hr_input_test=False, baseline=False)
  assert set(bare["mean"]) == {"psnr", "ssim"}
  assert bare["mean"]["psnr"] == full["mean"]["psnr"]


def test_docstring_examples_run():
  import doctest  # pylint: disable=g-import-not-at-top

  results = doctest.testmod(evaluation, optionflags=doctest.NORMALIZE_WHITESPACE)
  assert results.attempted > 0 and results.failed == 0
