"""Bad input to the four CLIs: one ``error:`` line naming the argument, and the exit status.

Each CLI is called in-process through ``main(argv)``; one ``train.py`` case also runs as
the program itself, in a subprocess.
"""

from __future__ import annotations

import errno
import importlib
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "tests" / "fixtures" / "run_0_1" / "checkpoints" / "best"


def _one_error_line(stderr: str, named: str) -> None:
  # Progress bars (tqdm, on stderr) aside.
  lines = [
    line
    for line in stderr.replace("\r", "\n").splitlines()
    if line.strip() and "/s]" not in line and "it/s" not in line
  ]
  assert len(lines) == 1, stderr
  assert lines[0].startswith("error: ") and named in lines[0], lines[0]
  assert "Traceback" not in stderr


@pytest.fixture
def places(tmp_path):
  """Paths the cases refer to: an image folder, an empty folder, a file, an existing output."""
  images = tmp_path / "images"
  images.mkdir()
  Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(images / "a.png")
  (tmp_path / "empty").mkdir()
  (tmp_path / "file.txt").write_text("not an image")
  (tmp_path / "raising_config.py").write_text("def get_config():\n  raise ValueError('no scale')\n")
  (tmp_path / "report.json").write_text("{}")
  (tmp_path / "converted").mkdir()
  (tmp_path / "done").mkdir()
  (tmp_path / "done" / "a.png").write_bytes(b"an earlier output")
  return tmp_path


def _format(args, places):
  return [
    str(a).format(tmp=places, ckpt=CHECKPOINT, configs=ROOT / "experiments" / "configs")
    for a in args
  ]


TRAIN_CASES = [
  (["--config.foo=1"], 2, "--config.foo"),
  (["--config.scale=3", "--config={configs}/rcan_div2k.py"], 2, "before a value for --config"),
  (["--config={tmp}/file.txt"], 1, "file.txt: line 1: invalid syntax"),
  (["--config={tmp}/raising_config.py"], 1, "get_config() failed: ValueError: no scale"),
  (["--config.batch_size=abc"], 2, "--config.batch_size"),
  (["--conf=x"], 2, "--conf"),
  (["--config.num_train_step=5"], 2, "--config.num_train_steps"),
  (["--workdirr=x"], 2, "workdirr"),
  (["--config.batch_size=0"], 1, "batch_size"),
  (["--config.dataset=Nope_XYZ"], 1, "Nope_XYZ"),
  (["--config=/nonexistent/config.py"], 1, "/nonexistent/config.py"),
  (["--workdir={tmp}/file.txt"], 1, "file.txt"),
  (["--workdir={tmp}/done"], 1, "no training run"),
  (["--config.gclip=nan"], 1, "gclip=nan"),
  (["--config.seed=99999999999999999999"], 1, "`seed` must be an integer in [0, "),
  (["--config.noise_seed=-1"], 1, "`noise_seed`"),
  # Without the cloud extra, a URL names the package it needs (tests/test_cloud_paths.py runs
  # them on a fake bucket).
  (["--workdir=gs://bucket/run"], 1, "--workdir 'gs://bucket/run' needs gcsfs"),
  (
    ["--config.dataset=DIV2K_SR", "--config.dataset_root=s3://b/div2k"],
    1,
    "`dataset_root` 's3://b/div2k' needs s3fs",
  ),
  (["--config.pretrain=gs://b/run"], 1, "Checkpoint 'gs://b/run' needs gcsfs"),
]


@pytest.mark.parametrize("args, status, named", TRAIN_CASES)
def test_train_cli(places, capsys, args, status, named):
  args = _format(args, places)
  if not any(a.startswith("--workdir") for a in args):
    args.append(f"--workdir={places / 'run'}")
  main = importlib.import_module("experiments.train").main
  try:
    got = main(args)
  except SystemExit as stop:  # argparse's usage errors
    got = stop.code
  assert got == status
  _one_error_line(capsys.readouterr().err, named)
  assert not (places / "run").exists()  # a failed start leaves nothing behind
  assert not pathlib.Path("gs:").exists()  # a URL is never read as the local folder gs:/...


def test_train_program_gives_one_error_line(places):
  done = subprocess.run(
    [
      sys.executable,
      str(ROOT / "experiments" / "train.py"),
      "--config.num_train_step=5",
      f"--workdir={places / 'run'}",
    ],
    capture_output=True,
    text=True,
    cwd=places,
    timeout=120,
  )
  assert done.returncode == 2, done.stdout + done.stderr
  _one_error_line(done.stderr, "did you mean --config.num_train_steps?")
  assert not (places / "run").exists()


EVALUATE_CASES = [
  (["--checkpoint", "{tmp}/nonexistent", "--dataset", "embedded"], 1, "nonexistent"),
  (["--checkpoint", "{tmp}/empty", "--dataset", "embedded"], 1, "empty"),
  (["--checkpoint", "gs://b/run", "--dataset", "embedded"], 1, "'gs://b/run' needs gcsfs"),
  (["--checkpoint", "{ckpt}", "--dataset", "Nope"], 1, "Nope"),
  (["--checkpoint", "{ckpt}"], 2, "--dataset"),
  (
    ["--checkpoint", "{ckpt}", "--dataset", "embedded", "--json", "{tmp}/report.json"],
    1,
    "--overwrite",
  ),
  (
    ["--checkpoint", "{ckpt}", "--dataset", "embedded", "--json", "{ckpt}/2/r.json"],
    1,
    "inside the input folder of --checkpoint",
  ),
  (
    ["--checkpoint", "{ckpt}", "--dataset", "embedded", "--json", "{tmp}/no/r.json"],
    1,
    "does not exist",
  ),
  (["--checkpoint", "{ckpt}", "--dataset", "embedded", "--max_size", "0"], 1, "--max_size"),
  (["--checkpoint", "{ckpt}", "--dataset", "embedded", "--tile", "abc"], 2, "--tile"),
  (["--checkpoint", "{ckpt}", "--hr", "{tmp}/file.txt"], 1, "file.txt"),
]

INFER_CASES = [
  (
    ["--checkpoint", "{ckpt}", "--input", "{tmp}/nonexistent", "--output", "{tmp}/sr"],
    1,
    "nonexistent",
  ),
  (["--checkpoint", "{ckpt}", "--input", "{tmp}/empty", "--output", "{tmp}/sr"], 1, "empty"),
  (
    ["--checkpoint", "{ckpt}", "--input", "{tmp}/images", "--output", "{tmp}/images"],
    1,
    "onto the input --input",
  ),
  (
    ["--checkpoint", "{ckpt}", "--input", "{tmp}/images", "--output", "{tmp}/file.txt"],
    1,
    "file.txt",
  ),
  (
    ["--checkpoint", "{tmp}/images", "--input", "{tmp}/images", "--output", "{tmp}/sr"],
    1,
    "images",
  ),
  (
    ["--checkpoint", "{ckpt}", "--input", "{tmp}/images", "--output", "{tmp}/sr", "--tile", "-5"],
    2,
    "--tile",
  ),
  (["--input", "{tmp}/images", "--output", "{tmp}/sr"], 2, "--checkpoint"),
  (
    ["--checkpoint", "{ckpt}", "--input", "{tmp}/images", "--output", "{tmp}/done"],
    1,
    "--overwrite",
  ),
  (
    [
      "--checkpoint",
      "{ckpt}",
      "--input",
      "{tmp}/images",
      "--output",
      "{tmp}/sr",
      "--tile",
      "8",
      "--overlap",
      "100000",
    ],
    1,
    "--overlap 100000 is larger than the largest input (8 LR",
  ),
  (
    [
      "--checkpoint",
      "{ckpt}",
      "--input",
      "{tmp}/images",
      "--output",
      "{tmp}/sr",
      "--bucket",
      "100000",
    ],
    1,
    "--bucket 100000 is larger",
  ),
]

CONVERT_CASES = [
  (
    ["--model", "VGG", "--scale", "2", "--checkpoint", "{tmp}/x.pt", "--output", "{tmp}/o"],
    1,
    "VGG",
  ),
  (
    [
      "--model",
      "EDSR",
      "--scale",
      "2",
      "--checkpoint",
      "{tmp}/nonexistent.pt",
      "--output",
      "{tmp}/o",
    ],
    1,
    "nonexistent.pt",
  ),
  (
    ["--model", "EDSR", "--scale", "5", "--checkpoint", "{tmp}/x.pt", "--output", "{tmp}/o"],
    1,
    "scale",
  ),
  (
    ["--model", "EDSR", "--scale", "2", "--checkpoint", "{tmp}/file.txt", "--output", "{tmp}/o"],
    1,
    "file.txt",
  ),
  (["--scale", "2", "--checkpoint", "{tmp}/x.pt", "--output", "{tmp}/o"], 2, "--model"),
  (
    [
      "--model",
      "EDSR",
      "--scale",
      "2",
      "--num_blocks",
      "x",
      "--checkpoint",
      "{tmp}/x.pt",
      "--output",
      "{tmp}/o",
    ],
    2,
    "--num_blocks",
  ),
]


@pytest.mark.parametrize(
  "script, args, status, named",
  [("evaluate", *case) for case in EVALUATE_CASES]
  + [("infer", *case) for case in INFER_CASES]
  + [("convert_torch", *case) for case in CONVERT_CASES],
)
def test_other_clis(places, capsys, script, args, status, named):
  main = importlib.import_module(f"experiments.{script}").main
  try:
    got = main(_format(args, places))
  except SystemExit as stop:  # argparse's usage errors
    got = stop.code
  assert got == status
  _one_error_line(capsys.readouterr().err, named)


def test_a_read_only_output_is_one_line_naming_the_file(places, capsys, monkeypatch):
  infer = importlib.import_module("experiments.infer")

  def read_only(path, image, **kwargs):
    raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

  monkeypatch.setattr(infer, "write_image", read_only)
  got = infer.main(
    [
      "--checkpoint",
      str(CHECKPOINT),
      "--input",
      str(places / "images"),
      "--output",
      str(places / "sr"),
    ]
  )
  assert got == 1
  err = capsys.readouterr().err
  _one_error_line(err, str(places / "sr" / "a.png"))
  assert "Read-only file system" in err


def test_the_end_of_a_run_shows_the_best_model_its_gain_and_the_next_commands(tmp_path):
  summary = importlib.import_module("experiments.train")._summary  # pylint: disable=protected-access
  result = {
    "step": 1500,
    "wall_time_s": 135.0,
    "loss": 3.2,
    "best_step": 1500,
    "best_psnr": 33.62,
    "weights": "raw",
    "psnr": 33.62,
    "ssim": 0.9331,
    "bicubic_psnr": 32.65,
    "bicubic_ssim": 0.9139,
    "finished_before": False,
    "best_checkpoint": str(tmp_path / "checkpoints" / "best" / "1500"),
  }
  config = {"dataset": "embedded", "dataset_root": ""}
  text = summary(result, tmp_path, config)
  assert f"step 1500, PSNR 33.62 dB (raw weights), in {tmp_path}/checkpoints/best/1500" in text
  assert "gain +0.97 dB" in text
  assert f"python experiments/evaluate.py --checkpoint {tmp_path} --dataset embedded" in text
  assert f"python experiments/infer.py --checkpoint {tmp_path}" in text
  assert "already finished" in summary({**result, "finished_before": True}, tmp_path, config)
  # The hint names the run's own data set.
  text = summary(result, tmp_path, {"dataset": "Set5_SR", "dataset_root": "/data/my sets"})
  assert "--dataset Set5_SR --dataset_root '/data/my sets'" in text


def test_docstring_examples_run(monkeypatch):
  import doctest  # pylint: disable=g-import-not-at-top
  from cutblur_jax import cli  # pylint: disable=g-import-not-at-top

  monkeypatch.chdir(ROOT)  # the examples name the repository's default config
  results = doctest.testmod(cli)
  assert results.attempted >= 3 and results.failed == 0


@pytest.mark.parametrize("script", ["evaluate", "infer", "export"])
def test_a_damaged_best_checkpoint_is_one_short_line_with_the_way_out(tmp_path, capfd, script):
  run = tmp_path / "run"
  shutil.copytree(CHECKPOINT.parents[1], run, ignore=shutil.ignore_patterns("data", "*.npz"))
  chunks = sorted((run / "checkpoints" / "best" / "2" / "ema_params").rglob("d/*"))
  max(chunks, key=lambda p: p.stat().st_size).unlink()
  (tmp_path / "lr").mkdir()
  Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(tmp_path / "lr" / "a.png")
  args = {
    "evaluate": ["--dataset", "embedded"],
    "infer": ["--input", tmp_path / "lr", "--output", tmp_path / "sr"],
    "export": ["--format", "stablehlo", "--output", tmp_path / "m.shlo"],
  }[script]
  done = subprocess.run(
    [
      sys.executable,
      str(ROOT / "experiments" / f"{script}.py"),
      "--checkpoint",
      str(run),
      *map(str, args),
    ],
    capture_output=True,
    text=True,
    timeout=300,
    cwd=tmp_path,
  )
  assert done.returncode == 1, done.stderr[-3000:]
  _one_error_line(done.stderr, f"step 2 in {run}/checkpoints/best is damaged")
  assert f"use --checkpoint {run}/checkpoints/latest instead" in done.stderr
  assert len(done.stderr) < 400, done.stderr


def _damage_data(root: pathlib.Path, case: str) -> str:
  """Spoils a DIV2K_SR folder as a user's copy might be; returns the file the error names."""
  hr, lr = root / "DIV2K_train_HR", root / "DIV2K_train_LR_bicubic" / "X2"
  if case == "corrupt":
    (hr / "0002.png").write_bytes(os.urandom(300))
    return "0002.png"
  if case == "truncated":
    data = (lr / "0002x2.png").read_bytes()
    (lr / "0002x2.png").write_bytes(data[: len(data) // 2])
    return "0002x2.png"
  if case == "name_mismatch":
    (lr / "0002x2.png").rename(lr / "0002x3.png")
    return "0002.png"
  if case == "size_mismatch":
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(lr / "0002x2.png")
    return "0002x2.png"
  if case == "smaller_than_patch":
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(hr / "0002.png")
    Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(lr / "0002x2.png")
    return "0002"
  raise ValueError(case)


@pytest.mark.parametrize(
  "case", ["corrupt", "truncated", "name_mismatch", "size_mismatch", "smaller_than_patch"]
)
def test_a_spoiled_data_folder_is_one_line_naming_the_file(tmp_path, capsys, case):
  from test_train_loop import write_div2k  # pylint: disable=import-outside-toplevel

  root = write_div2k(tmp_path / "div2k", count=4, size=(24, 24))
  named = _damage_data(root, case)
  before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
  main = importlib.import_module("experiments.train").main
  got = main(
    [
      f"--workdir={tmp_path / 'run'}",
      "--config.dataset=DIV2K_SR",
      f"--config.dataset_root={root}",
      "--config.div2k_range=1-3/4-4",
      "--config.patch_size=8",
      "--config.num_train_steps=1",
      "--config.num_workers=0",
    ]
  )
  assert got == 1
  _one_error_line(capsys.readouterr().err, named)
  assert not (tmp_path / "run").exists()  # nothing written, nothing lost
  assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before


def test_a_named_set_without_the_model_scale_says_how_to_synthesise(tmp_path, capsys):
  set5 = tmp_path / "bench" / "Set5"
  (set5 / "HR").mkdir(parents=True)
  (set5 / "X4").mkdir()
  Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(set5 / "HR" / "baby.png")
  Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(set5 / "X4" / "baby.png")
  evaluate = importlib.import_module("experiments.evaluate").main
  argv = [
    "--checkpoint",
    str(CHECKPOINT),
    "--dataset",
    "Set5_SR",
    "--dataset_root",
    str(tmp_path / "bench"),
    "--no_hr_input_test",
  ]  # the checkpoint is x2
  assert evaluate(argv) == 1
  _one_error_line(capsys.readouterr().err, "evaluate.py --synthesize_lr")
  # Too small for SSIM once synthesised: the image is named.
  assert evaluate(argv + ["--synthesize_lr"]) == 1
  _one_error_line(capsys.readouterr().err, "Image 'baby' (12x12): SSIM needs")


def test_a_file_that_is_no_state_dict_is_one_short_line(tmp_path, capsys):
  pytest.importorskip("torch")
  (tmp_path / "random.pt").write_bytes(os.urandom(2000))
  convert = importlib.import_module("experiments.convert_torch").main
  assert (
    convert(
      [
        "--model",
        "EDSR",
        "--scale",
        "2",
        "--checkpoint",
        str(tmp_path / "random.pt"),
        "--output",
        str(tmp_path / "out"),
      ]
    )
    == 1
  )
  line = capsys.readouterr().err
  _one_error_line(line, "random.pt' as a PyTorch state_dict")
  assert len(line) < 400 and "Re-running" not in line
  assert not (tmp_path / "out").exists()
