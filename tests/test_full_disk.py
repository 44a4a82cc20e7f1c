"""A real full disk: a run on a small tmpfs that fills up, and the other commands that write.

Each case runs its commands in a private mount namespace (``unshare``; as root, or as a
user where the kernel allows user namespaces) on a 4 MiB tmpfs, so the disk really fills:
orbax's background save, its temporary folders and the log writers meet ENOSPC as they
would on a real disk. The namespace, and the tmpfs with it, go when the case ends.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "run_0_1"
TINY = [
  "--config.num_blocks=1",
  "--config.num_channels=4",
  "--config.patch_size=8",
  "--config.batch_size=2",
  "--config.use_moa=False",
  "--config.num_workers=0",
  "--config.progress_bar=False",
  "--config.lr=1e-3",
]


def _in_small_filesystem(tmp_path: pathlib.Path, script: str, *, size: str = "4m") -> dict:
  """Runs bash ``script`` with ``$MNT`` a fresh tmpfs of ``size``; returns its ``$OUT`` files."""
  out = tmp_path / "out"
  out.mkdir()
  mnt = tmp_path / "mnt"
  mnt.mkdir()
  prologue = (
    f"set -u\nmount -t tmpfs -o size={size} tmpfs {mnt}\nMNT={mnt}\nOUT={out}\n"
    f"PY={sys.executable}\ncd {ROOT}\n"
    "fill() { dd if=/dev/zero of=$MNT/fill bs=4k 2>/dev/null; "
    "truncate -s -${1}K $MNT/fill; }\n"
  )
  done = subprocess.run(
    ["unshare", "-rm", "bash", "-c", prologue + script], capture_output=True, text=True, timeout=540
  )
  assert done.returncode == 0, done.stdout + done.stderr
  return {p.name: p.read_text() for p in out.iterdir()}


def _one_line(stderr: str, *needles: str) -> str:
  # Progress bars (tqdm, on stderr) aside.
  lines = [
    line
    for line in stderr.replace("\r", "\n").splitlines()
    if line.strip() and "/s]" not in line and "it/s" not in line
  ]
  assert len(lines) == 1 and lines[0].startswith("error: "), stderr[-3000:]
  assert "Traceback" not in stderr
  for needle in needles:
    assert needle in lines[0], lines[0]
  return lines[0]


def _run(name: str, args: str) -> str:
  """Bash lines that run a CLI with a 120 s limit (a hang ends as status 124), saving its
  status, stdout and stderr."""
  return (
    f"timeout 120 $PY experiments/{args} > $OUT/{name}.out 2> $OUT/{name}.err\n"
    f"echo $? > $OUT/{name}.rc\n"
  )


@pytest.mark.slow
def test_training_onto_a_disk_that_fills_up_ends_in_one_line_and_resumes(tmp_path):
  tiny = " ".join(TINY)
  script = "".join(
    [
      # 1. A checkpoint save meets the full disk (nothing else writes between saves).
      _run(
        "first",
        f"train.py --workdir $MNT/run {tiny} --config.num_train_steps=2 "
        "--config.checkpoint_every_steps=2 --config.eval_every_steps=0 "
        "--config.log_every_steps=0",
      ),
      # 80 KiB: enough for the start's writes (config.json, the logs), not for a checkpoint
      # (about 116 KiB on a tmpfs, 4 KiB a file).
      "fill 80\n",
      _run(
        "save",
        f"train.py --workdir $MNT/run {tiny} --config.num_train_steps=2000 "
        "--config.checkpoint_every_steps=2 --config.eval_every_steps=0 "
        "--config.log_every_steps=0",
      ),
      "(cd $MNT/run/checkpoints && find . -maxdepth 2 | sort) > $OUT/left_after_save.txt\n",
      # 2. A metrics write meets it (no checkpoint until the end).
      _run(
        "log",
        f"train.py --workdir $MNT/run {tiny} --config.num_train_steps=2000 "
        "--config.checkpoint_every_steps=0 --config.eval_every_steps=0 "
        "--config.log_every_steps=1",
      ),
      # 3. The first save of a new run meets it.
      "rm $MNT/fill; fill 80\n",
      _run(
        "fresh",
        f"train.py --workdir $MNT/fresh {tiny} --config.num_train_steps=2000 "
        "--config.checkpoint_every_steps=2 --config.eval_every_steps=0",
      ),
      # The newest complete checkpoint loads; with space again it resumes, and no temporary
      # folder of the failed saves stays.
      "$PY -c \"from cutblur_jax import checkpoint; print(checkpoint.describe("
      "'$MNT/run/checkpoints/latest'))\" > $OUT/newest.txt 2>&1\n",
      "rm $MNT/fill\n",
      _run(
        "resume",
        f"train.py --workdir $MNT/run {tiny} --config.num_train_steps=4 "
        "--config.checkpoint_every_steps=2 --config.eval_every_steps=0 "
        "--config.log_every_steps=0",
      ),
      "(cd $MNT/run/checkpoints && find . -maxdepth 2 | sort) > $OUT/left_after_resume.txt\n",
    ]
  )
  got = _in_small_filesystem(tmp_path, script)
  assert got["first.rc"].strip() == "0", got["first.err"]
  latest = f"{tmp_path}/mnt/run/checkpoints/latest"
  line = _one_line(got["save.err"], latest, "No space left on device")
  assert re.match(rf"error: Saving step \d+ in {re.escape(latest)} failed", line), line
  _one_line(got["log.err"], f"{tmp_path}/mnt/run/", "No space left on device")
  _one_line(got["fresh.err"], f"{tmp_path}/mnt/fresh", "No space left on device")
  for case in ("save", "log", "fresh"):
    assert got[f"{case}.rc"].strip() == "1", got[f"{case}.err"]
  assert got["resume.rc"].strip() == "0", got["resume.err"]
  assert "/checkpoints/latest/" in got["newest.txt"] and "(step " in got["newest.txt"], got[
    "newest.txt"
  ]
  assert "Done: 4 steps" in got["resume.out"] or "already finished" in got["resume.out"]
  assert "orbax-checkpoint-tmp" not in got["left_after_resume.txt"], got["left_after_resume.txt"]
  assert "./latest/4" in got["left_after_resume.txt"]


@pytest.mark.slow
def test_evaluate_infer_and_export_onto_a_full_disk_are_one_line_and_leave_nothing(tmp_path):
  run = tmp_path / "run"  # on the real disk: only the outputs go to the full one
  shutil.copytree(FIXTURE, run, ignore=shutil.ignore_patterns("data", "*.npz"))
  lr = tmp_path / "lr"
  lr.mkdir()
  shutil.copy(FIXTURE / "data" / "DIV2K_train_LR_bicubic" / "X2" / "0003x2.png", lr / "a.png")
  script = "fill 0\n" + "".join(
    [
      _run(
        "evaluate",
        f"evaluate.py --checkpoint {run} --dataset embedded --no_hr_input_test "
        "--save_images $MNT/sr",
      ),
      _run("infer", f"infer.py --checkpoint {run} --input {lr} --output $MNT/inferred"),
      _run("export", f"export.py --checkpoint {run} --format stablehlo --output $MNT/m.shlo"),
      "rm $MNT/fill\n(cd $MNT && find . | sort) > $OUT/left.txt\n",
    ]
  )
  got = _in_small_filesystem(tmp_path, script)
  for case in ("evaluate", "infer", "export"):
    assert got[f"{case}.rc"].strip() == "1", got[f"{case}.err"]
    _one_line(got[f"{case}.err"], f"{tmp_path}/mnt/", "No space left on device")
  left = got["left.txt"].split()
  # Nothing half-written: no image, export or temporary file, at most the empty folders.
  assert left and not [name for name in left if name.endswith((".png", ".shlo", ".tmp"))], left
