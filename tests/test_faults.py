"""Faults during training and the CLIs: nothing lost, one clear line, the work directory intact.

Signals (SIGINT, SIGTERM, SIGKILL at random moments) are in ``test_train_distributed.py``,
which runs the CLI in a subprocess.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil

import numpy as np
import pytest

from cutblur_jax import checkpoint, train
from cutblur_jax.training import logs
from cutblur_jax.training.logs import LogWriteError, MetricWriter, read_metrics
from cutblur_jax.training.workdir import WorkdirBusyError, WorkdirLock
from test_train_loop import tiny_config  # pylint: disable=wrong-import-order

FIXTURE = pathlib.Path(__file__).resolve().parent / "fixtures" / "run_0_1"


def _snapshot(folder: pathlib.Path) -> dict[str, bytes]:
  return {
    str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
  }


def _old_run(tmp_path: pathlib.Path, **overrides):
  """A copy of the committed 0.1.0 run (steps 1 and 2 kept) and a config that resumes it."""
  workdir = tmp_path / "run"
  shutil.copytree(FIXTURE, workdir, ignore=shutil.ignore_patterns("data", "*.npz"))
  stored = json.loads((FIXTURE / "config.json").read_text())
  config = train.base_config()
  config.update({k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()})
  config.update(
    {
      "dataset_root": str(FIXTURE / "data"),
      "num_train_steps": 3,
      "progress_bar": False,
      **overrides,
    }
  )
  return workdir, config


class _FullDisk:
  """A file whose writes fail with ENOSPC after ``allowed`` of them."""

  def __init__(self, file, allowed: int):
    self._file, self._allowed = file, allowed

  def write(self, text):
    if self._allowed <= 0:
      raise OSError(errno.ENOSPC, "No space left on device")
    self._allowed -= 1
    return self._file.write(text)

  def __getattr__(self, name):
    return getattr(self._file, name)


def test_a_full_disk_stops_the_run_at_once_naming_the_log(tmp_path, monkeypatch):
  workdir, config = _old_run(
    tmp_path, num_train_steps=40, log_every_steps=1, checkpoint_every_steps=1
  )
  real_open = open
  monkeypatch.setattr(
    logs, "open", lambda path, mode: _FullDisk(real_open(path, mode), 3), raising=False
  )
  with pytest.raises(LogWriteError, match=r"metrics\.jsonl: No space left on device"):
    train.train_and_evaluate(config, workdir)
  params, arch = checkpoint.load_model(workdir / "checkpoints" / "latest")  # still loadable
  assert arch["num_channels"] == 4 and params


def test_a_failed_checkpoint_save_stops_the_run_naming_the_folder(tmp_path, monkeypatch):
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  from cutblur_jax.training.checkpoints import CheckpointWriteError  # pylint: disable=g-import-not-at-top

  workdir, config = _old_run(tmp_path, num_train_steps=6, checkpoint_every_steps=1)

  def full(self, *args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(ocp.CheckpointManager, "save", full)
  with pytest.raises(
    CheckpointWriteError, match=r"step 3 in .*checkpoints/latest failed: No space left on device"
  ):
    train.train_and_evaluate(config, workdir)
  monkeypatch.undo()
  params, _ = checkpoint.load_model(workdir / "checkpoints" / "latest")  # step 2 survives
  assert params


def test_train_help_lists_every_config_field_with_its_default():
  from cutblur_jax.training import config as config_lib  # pylint: disable=g-import-not-at-top

  text = config_lib.fields_help()
  for name in config_lib.base_config().keys():
    line = next(line for line in text.splitlines() if line.startswith(f"--config.{name} "))
    assert "(default: " in line and len(line.split(") ", 1)[1]) > 3, line


def test_a_metric_writer_error_names_the_file_and_stops_writing(tmp_path, monkeypatch):
  writer = MetricWriter(tmp_path, enabled=True, tensorboard=False)
  writer._jsonl = _FullDisk(writer._jsonl, 1)  # pylint: disable=protected-access
  writer.write_scalars(1, {"loss": 1.0})
  with pytest.raises(LogWriteError, match=str(tmp_path / "metrics.jsonl")):
    writer.write_scalars(2, {"loss": 1.0})
  writer.write_scalars(3, {"loss": 1.0})  # after a failure: nothing more, no second error
  writer.close()
  assert [r["step"] for r in read_metrics(tmp_path)] == [1]


def test_a_second_trainer_is_refused_naming_the_holder(tmp_path):
  workdir, config = _old_run(tmp_path)
  before = _snapshot(workdir)
  with WorkdirLock(workdir):
    # What the running trainer writes while the second one starts is not the second's to undo.
    real_start = train.train_and_evaluate.__globals__["StartGuard"]

    class WritesMeanwhile(real_start):
      def __init__(self, folder):
        super().__init__(folder)
        (pathlib.Path(folder) / "written_by_the_first_run.txt").write_text("keep")

    train.train_and_evaluate.__globals__["StartGuard"] = WritesMeanwhile
    try:
      with pytest.raises(WorkdirBusyError, match=f"process {os.getpid()}"):
        train.train_and_evaluate(config, workdir)
    finally:
      train.train_and_evaluate.__globals__["StartGuard"] = real_start
    assert (workdir / "written_by_the_first_run.txt").read_text() == "keep"
    (workdir / "written_by_the_first_run.txt").unlink()
    assert {k: v for k, v in _snapshot(workdir).items() if k != ".lock"} == before
  # A lock file that no live process holds does not block a run (e.g. after kill -9).
  assert (workdir / ".lock").exists()
  assert train.train_and_evaluate(config, workdir)["step"] == 3


@pytest.mark.parametrize("damage", ["missing_chunks", "truncated_metadata"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_step(tmp_path, capfd, damage):
  workdir, config = _old_run(tmp_path)
  newest = workdir / "checkpoints" / "latest" / "2"
  if damage == "missing_chunks":
    for chunk in (newest / "params").rglob("d/*"):
      chunk.unlink()
  else:
    meta = newest / "train_meta" / "metadata"
    meta.write_bytes(meta.read_bytes()[:10])
  result = train.train_and_evaluate(config, workdir)
  warnings = [line for line in capfd.readouterr().err.splitlines() if "damaged" in line]
  assert len(warnings) == 1 and "step 2" in warnings[0] and "previous" in warnings[0]
  assert result["step"] == 3  # resumed from step 1, then ran steps 2 and 3
  train_steps = [r["step"] for r in read_metrics(workdir) if r["split"] == "train"]
  assert train_steps == [1, 2, 3]  # step 2's old record dropped, written again
  # The damaged step was saved again when the run got there.
  assert checkpoint.load_model(newest)[1]["model"] == "EDSR"


def test_a_refused_resume_writes_nothing(tmp_path):
  workdir, config = _old_run(tmp_path, batch_size=4)
  before = _snapshot(workdir)
  with pytest.raises(ValueError, match="batch_size: run 2, now 4"):
    train.train_and_evaluate(config, workdir)
  assert _snapshot(workdir) == before  # config.json, metrics.jsonl, checkpoints untouched


def test_a_new_seed_on_resume_is_recorded_as_ignored(tmp_path, capfd):
  workdir, config = _old_run(tmp_path, seed=7)
  train.train_and_evaluate(config, workdir)
  assert "`seed` 7 is ignored" in capfd.readouterr().err
  assert json.loads((workdir / "config.json").read_text())["seed"] == 1


def test_a_failed_start_leaves_the_work_directory_as_it_found_it(tmp_path):
  from test_train_loop import write_div2k  # pylint: disable=import-outside-toplevel

  root = write_div2k(tmp_path / "div2k", count=4, size=(24, 24))
  fresh = tmp_path / "fresh"
  with pytest.raises(ValueError, match="smaller than the LR patch"):
    train.train_and_evaluate(tiny_config(root, patch_size=64), fresh)
  assert not fresh.exists()
  existing = tmp_path / "existing"  # an empty folder made for the run stays, empty
  existing.mkdir()
  with pytest.raises(ValueError, match="smaller than the LR patch"):
    train.train_and_evaluate(tiny_config(root, patch_size=64), existing)
  assert existing.is_dir() and not list(existing.iterdir())
  (existing / "notes.txt").write_text("mine")  # a folder of other files is no work directory
  with pytest.raises(ValueError, match="holds other files .notes.txt. and is no training run"):
    train.train_and_evaluate(tiny_config(root), existing)
  assert sorted(p.name for p in existing.iterdir()) == ["notes.txt"]


def test_metrics_after_the_checkpoint_are_dropped_on_resume(tmp_path):
  workdir, config = _old_run(tmp_path)
  with open(workdir / "metrics.jsonl", "a") as file:  # logged after step 2's checkpoint
    file.write(json.dumps({"step": 5, "split": "train", "loss": 1.0}) + "\n")
    file.write('{"step": 6, "spl')  # torn by the kill
  train.train_and_evaluate(config, workdir)
  records = read_metrics(workdir)
  assert [r["step"] for r in records if r["split"] == "train"] == [1, 2, 3]
  assert len({(r["split"], r["step"]) for r in records}) == len(records)


def test_super_resolve_refuses_what_it_would_turn_into_garbage():
  from cutblur_jax import inference, models  # pylint: disable=import-outside-toplevel

  arch = models.model_arch("EDSR", 2, num_blocks=1, num_channels=4)
  params = models.abstract_params(arch)  # never reached: the checks come first
  for image, match in (
    (np.full((4, 4, 3), np.nan, np.float32), "NaN"),
    (np.full((4, 4, 3), 4000, np.uint16), r"uint16 .* / 257"),
    (np.full((4, 4, 3), -1.0, np.float32), r"span \[-1, -1\].*\[0, 255\]"),
    (np.full((4, 4, 3), 300, np.int32), r"up to 300"),
  ):
    with pytest.raises(ValueError, match=match):
      inference.super_resolve(params, arch, image)


def test_moa_refuses_unknown_names_listing_the_known_ones():
  from cutblur_jax import augment  # pylint: disable=import-outside-toplevel

  with pytest.raises(ValueError, match="Unknown dataset 'FOO'.*DIV2K_SR"):
    augment.moa("FOO", "EDSR")
  with pytest.raises(ValueError, match="unknown model 'VGG'.*EDSR, EDSR-baseline, RCAN, CARN"):
    augment.moa("DIV2K_SR", "VGG")
  assert augment.moa("DIV2K_SR", "carn").probs[0] == 0.2  # case-insensitive, as model_arch
