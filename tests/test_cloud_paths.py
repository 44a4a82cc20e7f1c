"""gs:// (any etils epath scheme) for --workdir, dataset_root, --checkpoint and outputs.

The URLs are served by a fake bucket on local disk (``fake_gcs``: etils' ``mock_epath`` plus
TensorStore's file driver for orbax), so no network is needed; what is tested is that every
path keeps its scheme from the command line to the write, and is never read as the local
folder ``gs:/...``.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from cutblur_jax import paths
from test_train_loop import write_div2k  # pylint: disable=wrong-import-order

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_a_url_keeps_its_scheme_and_is_never_made_a_local_path():
  run = paths.as_path("gs://bucket/runs") / "edsr"
  assert str(run) == "gs://bucket/runs/edsr" and paths.is_url(run)
  assert str(paths.absolute("gs://bucket/runs")) == "gs://bucket/runs"
  assert str(run.parent) == "gs://bucket/runs"
  assert paths.absolute("runs") == pathlib.Path("runs").absolute()
  assert not paths.is_url("/data/gs://x") and not paths.is_url(pathlib.Path("a"))


def test_a_url_whose_file_system_is_missing_is_one_line_naming_the_flag_and_package():
  if paths.importlib.util.find_spec("gcsfs") is not None:
    pytest.fail("gcsfs is installed: this test checks the message without it")
  with pytest.raises(
    ValueError, match=r"--workdir 'gs://b/run' needs gcsfs .*cutblur-jax\[cloud\]"
  ):
    paths.check_backend("gs://b/run", what="--workdir")
  with pytest.raises(ValueError, match="ftp:// scheme is not one etils.epath reads"):
    paths.check_backend("ftp://b/run", what="--workdir")
  paths.check_backend("/local/run", what="--workdir")


_SCRIPT = """
  import json, sys
  from fake_gcs import fake_gcs
  from experiments import train, evaluate
  root, command, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
  with fake_gcs(root):
    main = {"train": train.main, "evaluate": evaluate.main}[command]
    sys.exit(main(args))
"""


def _run(tmp_path, command, args):
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", "")])
  result = subprocess.run(
    [sys.executable, "-c", textwrap.dedent(_SCRIPT), str(tmp_path / "bucket"), command]
    + [json.dumps(args)],
    env=env,
    cwd=tmp_path,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
  return result.stdout


def test_train_resume_and_evaluate_with_every_path_in_a_bucket(tmp_path):
  bucket = tmp_path / "bucket" / "gs" / "b"
  write_div2k(bucket / "div2k", count=4)
  flags = [
    "--workdir=gs://b/run",
    "--config.dataset_root=gs://b/div2k",
    "--config.div2k_range=1-3/4-4",
    "--config.scale=2",
    "--config.patch_size=8",
    "--config.batch_size=2",
    "--config.num_blocks=1",
    "--config.num_channels=8",
    "--config.res_scale=1.0",
    "--config.eval_every_steps=2",
    "--config.checkpoint_every_steps=2",
    "--config.log_every_steps=1",
    "--config.progress_bar=False",
    "--config.num_workers=0",
  ]
  said = _run(tmp_path, "train", flags + ["--config.num_train_steps=2"])
  assert "gs://b/run" in said and "gs:/b" not in said.replace("gs://b", "")
  run = bucket / "run"
  assert (run / "config.json").is_file() and (run / "checkpoints" / "latest" / "2").is_dir()
  assert [r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())][
    :2
  ] == [0, 1]
  said = _run(tmp_path, "train", flags + ["--config.num_train_steps=4"])  # resumes at step 2
  assert "Resum" in said or "resum" in said
  assert (run / "checkpoints" / "latest" / "4").is_dir()
  steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
  assert max(steps) == 4 and steps == sorted(steps)
  _run(
    tmp_path,
    "evaluate",
    ["--checkpoint", "gs://b/run", "--dataset", "DIV2K_SR", "--dataset_root", "gs://b/div2k"]
    + ["--div2k_range", "1-3/4-4", "--json", "gs://b/run/eval.json"],
  )
  report = json.loads((run / "eval.json").read_text())
  assert report["images"][0]["name"] == "0004" and report["mean"]["psnr"] > 10
  # Nothing was written to a local folder named after the URL.
  assert not (tmp_path / "gs:").exists()
