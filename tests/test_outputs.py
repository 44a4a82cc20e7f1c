"""What the commands may write and replace (``cutblur_jax.outputs``), and the resume rules.

Each case is a file a user never asked to replace: it must survive, and the command must
say why in one line. The writes a user does ask for (a report or an export inside the run
folder) must go through.
"""

from __future__ import annotations

import doctest
import importlib
import json
import pathlib
import shutil

import numpy as np
import pytest
from PIL import Image

from cutblur_jax import checkpoint, outputs, train
from cutblur_jax.training import workdir as workdir_lib
from cutblur_jax.training.logs import read_metrics

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "run_0_1"


def _main(script: str, argv: list[str]) -> int:
  try:
    return importlib.import_module(f"experiments.{script}").main([str(a) for a in argv])
  except SystemExit as stop:  # argparse's usage errors
    return stop.code


def _error_line(capsys) -> str:
  err = [
    line
    for line in capsys.readouterr().err.splitlines()
    if line.strip() and "it/s" not in line and "/s]" not in line
  ]
  assert len(err) == 1 and err[0].startswith("error: "), err
  return err[0]


@pytest.fixture
def run(tmp_path) -> pathlib.Path:
  """A copy of the committed 0.1.0 work directory (tiny EDSR x2), without its data."""
  workdir = tmp_path / "run"
  shutil.copytree(FIXTURE, workdir, ignore=shutil.ignore_patterns("data", "*.npz"))
  return workdir


def _fixture_config(**changes):
  stored = json.loads((FIXTURE / "config.json").read_text())
  config = train.base_config()
  config.update({key: tuple(v) if isinstance(v, list) else v for key, v in stored.items()})
  config.update({"dataset_root": str(FIXTURE / "data"), "progress_bar": False, **changes})
  return config


def test_docstring_examples_run():
  results = doctest.testmod(outputs, optionflags=doctest.ELLIPSIS)
  assert results.attempted >= 4 and results.failed == 0


# --- the rule, on a work directory ---------------------------------------------------------


@pytest.mark.parametrize(
  "relative, allowed",
  [
    ("eval.json", True),
    ("sub/eval.json", True),
    ("config.json", False),
    ("metrics.jsonl", False),
    ("checkpoints/best/report.json", False),
    ("checkpoints/new.json", False),
    (".", False),
  ],
)
def test_a_work_directory_takes_outputs_but_not_into_its_checkpoints(run, relative, allowed):
  target = run / relative
  check = lambda: outputs.check_output(
    target,
    flag="--json",
    inputs={"--checkpoint": run},
    overwrite=True,
    recognise=outputs.is_json_report,
  )
  if allowed:
    assert check() == target
  else:
    with pytest.raises(ValueError, match="--json .*(work directory|checkpoint folder|input)"):
      check()


def test_inputs_and_folders_of_inputs_are_never_outputs(tmp_path):
  images = tmp_path / "images"
  images.mkdir()
  (images / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
  inputs = {"--input": images}
  for target, reason in (
    (images, "onto the input --input"),
    (images / "sr", "inside the input folder of --input"),
    (tmp_path, "holds the input --input"),
  ):
    with pytest.raises(ValueError, match=reason):
      outputs.check_output(target, flag="--output", inputs=inputs, overwrite=True, kind="folder")
  assert (
    outputs.check_output(
      tmp_path / "sr", flag="--output", inputs=inputs, overwrite=False, kind="folder"
    )
    == tmp_path / "sr"
  )


def test_overwrite_replaces_only_what_the_command_writes(tmp_path):
  report, notes = tmp_path / "report.json", tmp_path / "notes.json"
  report.write_text(json.dumps({"images": [], "psnr": 30.0}))
  notes.write_text(json.dumps({"my": "notes"}))
  check = lambda path, overwrite: outputs.check_output(
    path, flag="--json", inputs={}, overwrite=overwrite, recognise=outputs.is_json_report
  )
  with pytest.raises(ValueError, match="exists; pass --overwrite"):
    check(report, False)
  assert check(report, True) == report
  with pytest.raises(ValueError, match="not an output of this command"):
    check(notes, True)


# --- the CLIs -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["stablehlo", pytest.param("onnx", marks=pytest.mark.onnx)])
def test_export_writes_into_its_own_run_folder(run, capsys, fmt):
  output = run / f"model.{fmt}"
  assert (
    _main("export", ["--checkpoint", run, "--format", fmt, "--output", output, "--no_check"]) == 0
  ), capsys.readouterr().err
  assert output.is_file()
  # Replacing its own export needs --overwrite; a file of the other format is left alone.
  assert _main("export", ["--checkpoint", run, "--format", fmt, "--output", output]) == 1
  assert "--overwrite" in _error_line(capsys)
  other = "onnx" if fmt == "stablehlo" else "stablehlo"
  assert (
    _main(
      "export",
      ["--checkpoint", run, "--format", other, "--output", output, "--overwrite", "--no_check"],
    )
    == 1
  )
  assert "not an output of this command" in _error_line(capsys)
  assert (
    _main(
      "export",
      ["--checkpoint", run, "--format", fmt, "--output", run / "checkpoints" / "m", "--no_check"],
    )
    == 1
  )
  assert "inside the checkpoint folder" in _error_line(capsys)
  assert (
    _main(
      "export",
      [
        "--checkpoint",
        run,
        "--format",
        fmt,
        "--output",
        run / "config.json",
        "--overwrite",
        "--no_check",
      ],
    )
    == 1
  )
  assert "config.json of the work directory" in _error_line(capsys)


def test_evaluate_writes_report_and_images_into_the_run_but_not_onto_its_files(run, capsys):
  config = run / "config.json"
  before = config.read_bytes()
  common = ["--checkpoint", run, "--dataset", "embedded", "--no_hr_input_test", "--max_size", "24"]
  assert _main("evaluate", [*common, "--json", config, "--overwrite"]) == 1
  assert "config.json of the work directory" in _error_line(capsys)
  assert config.read_bytes() == before
  assert _main("evaluate", [*common, "--save_images", run / "checkpoints" / "sr"]) == 1
  assert "inside the checkpoint folder" in _error_line(capsys)
  assert _main("evaluate", [*common, "--json", run / "eval.json", "--save_images", run / "sr"]) == 0
  assert outputs.is_json_report(run / "eval.json")
  assert sorted(p.suffix for p in (run / "sr").iterdir()) == [".png", ".png"]
  # A file in the images folder that is not a PNG is not replaced, even with --overwrite.
  victim = next((run / "sr").iterdir())
  victim.write_text("my notes")
  assert _main("evaluate", [*common, "--save_images", run / "sr", "--overwrite"]) == 1
  assert "not an output of this command" in _error_line(capsys)
  assert victim.read_text() == "my notes"


def test_evaluate_refuses_an_unknown_split(run, capsys):
  assert _main("evaluate", ["--checkpoint", run, "--dataset", "embedded", "--split", "bogus"]) == 2
  assert "--split" in _error_line(capsys)


def test_evaluate_says_when_a_folder_had_no_lr_at_the_model_scale(run, tmp_path, capsys):
  folder = tmp_path / "bench"
  (folder / "HR").mkdir(parents=True)
  (folder / "X4").mkdir()
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(folder / "HR" / "a.png")
  Image.fromarray(rng.integers(0, 255, (4, 4, 3), np.uint8)).save(folder / "X4" / "a.png")
  assert (
    _main("evaluate", ["--checkpoint", run, "--dataset", folder, "--no_hr_input_test"]) == 0
  )  # the model is x2, the LR x4
  header = [line for line in capsys.readouterr().out.splitlines() if " on " in line][0]
  assert "LR synthesised with imresize x1/2" in header and "no x2 LR" in header


def test_infer_reads_bmp_and_tiff_and_names_what_it_skips(run, tmp_path, capsys):
  images = tmp_path / "lr"
  images.mkdir()
  pixels = np.random.default_rng(0).integers(0, 255, (6, 6, 3), np.uint8)
  for name in ("a.bmp", "b.tif", "c.tiff", "d.png"):
    Image.fromarray(pixels).save(images / name)
  (images / "notes.txt").write_text("not an image")
  (images / "sub").mkdir()
  assert _main("infer", ["--checkpoint", run, "--input", images, "--output", tmp_path / "sr"]) == 0
  err = capsys.readouterr().err
  assert "skipped notes.txt (not .png" in err and "skipped sub/ (a folder" in err
  assert sorted(p.name for p in (tmp_path / "sr").iterdir()) == ["a.png", "b.png", "c.png", "d.png"]
  # Into the run folder is fine; into its checkpoints is not.
  assert (
    _main("infer", ["--checkpoint", run, "--input", images / "d.png", "--output", run / "sr"]) == 0
  )
  capsys.readouterr()
  assert (
    _main(
      "infer",
      ["--checkpoint", run, "--input", images / "d.png", "--output", run / "checkpoints" / "sr"],
    )
    == 1
  )
  assert "inside the checkpoint folder" in _error_line(capsys)


def test_reproduce_output_follows_the_evaluate_json_rule(tmp_path):
  reproduce = importlib.import_module("experiments.reproduce")
  study = tmp_path / "study"
  cell = study / "none-seed0"  # a run of the study, a work directory
  cell.mkdir(parents=True)
  (cell / "config.json").write_text(json.dumps({"dataset": "embedded", "num_train_steps": 5}))
  mine = tmp_path / "mine.json"
  mine.write_text("{}")
  base = ["--study", "hr_input", "--workdir", str(study), "--num_train_steps", "1"]
  with pytest.raises(ValueError, match="exists; pass --overwrite"):
    reproduce.main([*base, "--output", str(mine)])
  with pytest.raises(ValueError, match="not an output of this command"):
    reproduce.main([*base, "--output", str(mine), "--overwrite"])
  with pytest.raises(ValueError, match="config.json of the work directory"):
    reproduce.main([*base, "--output", str(cell / "config.json"), "--overwrite"])
  with pytest.raises(ValueError, match="--plot .* exists"):
    reproduce.main([*base, "--output", str(tmp_path / "new.json"), "--plot", str(mine)])
  assert mine.read_text() == "{}"
  assert json.loads((cell / "config.json").read_text())["num_train_steps"] == 5


# --- train.py: the work directory and the resume ---------------------------------------------


def test_train_refuses_a_folder_that_is_no_work_directory(tmp_path, capsys):
  notes = tmp_path / "mine"
  notes.mkdir()
  (notes / "notes.txt").write_text("keep me")
  converted = checkpoint.save_model(tmp_path / "converted", *checkpoint.load_model(FIXTURE))
  for folder in (notes, converted):
    before = sorted(p.name for p in folder.iterdir())
    assert _main("train", [f"--workdir={folder}", "--config.num_train_steps=1"]) == 1
    line = _error_line(capsys)
    assert str(folder) in line and "no training run" in line
    assert sorted(p.name for p in folder.iterdir()) == before
  assert (notes / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
  "changes, named",
  [
    ({"lr": 2e-4}, "lr: run 0.0001, now 0.0002"),
    ({"patch_size": 6}, "patch_size: run 8, now 6"),
    ({"ema_decay": 0.5}, "ema_decay: run 0.9, now 0.5"),
    ({"dataset": "embedded", "dataset_root": ""}, "dataset: run 'DIV2K_SR', now 'embedded'"),
  ],
)
def test_a_resume_that_changes_the_run_is_refused_naming_the_fields(run, changes, named):
  before = (run / "config.json").read_bytes()
  with pytest.raises(ValueError, match="holds a run with another config") as error:
    train.train_and_evaluate(_fixture_config(num_train_steps=3, **changes), run)
  assert named in str(error.value) and "--accept_config_changes" in str(error.value)
  assert (run / "config.json").read_bytes() == before


def test_an_accepted_change_is_recorded_in_the_metrics(run):
  result = train.train_and_evaluate(
    _fixture_config(num_train_steps=3, lr=2e-4), run, accept_config_changes=True
  )
  assert result["step"] == 3
  events = [r for r in read_metrics(run) if r["split"] == "event"]
  assert events == [
    {"step": 2, "split": "event", "event": "config_changed", "changes": {"lr": [0.0001, 0.0002]}}
  ]
  assert json.loads((run / "config.json").read_text())["lr"] == 2e-4
  # The run's length, cadence and workers may change without the flag.
  assert (
    workdir_lib.config_changes(
      run,
      train.resolve_config(
        _fixture_config(num_train_steps=9, lr=2e-4, eval_every_steps=5, num_workers=2)
      ),
    )
    == {}
  )


@pytest.mark.parametrize("script", ["evaluate", "infer", "export", "convert_torch", "reproduce"])
def test_every_command_that_writes_states_the_rule_in_its_help(script, capsys):
  assert _main(script, ["--help"]) == 0
  assert " ".join(outputs.RULE.split()) in " ".join(capsys.readouterr().out.split())
