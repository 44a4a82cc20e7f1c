r"""Trains a super-resolution model with CutBlur / MoA (a thin CLI over `cutblur_jax.train`).

Usage:

  python experiments/train.py                      # small EDSR + MoA on the embedded photos
  python experiments/train.py --config experiments/configs/edsr_div2k.py \
      --config.dataset_root=/data/DIV2K --workdir workdirs/edsr_x2
  python experiments/train.py --config experiments/configs/edsr_div2k.py \
      --config.scale=4 --config.pretrain=workdirs/edsr_x2 --workdir workdirs/edsr_x4

`--config.FIELD=VALUE` overrides any field (`python experiments/train.py --help` lists them).
Without `--workdir` the run goes to `./workdirs/<config name>-<timestamp>`
(printed at start). Rerunning with the same `--workdir` resumes from its latest
checkpoint. A NaN loss stops the run with exit status 1, keeping the last good
checkpoint.
"""

from __future__ import annotations

import datetime
import pathlib
import sys

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

_ROOT = pathlib.Path(__file__).resolve().parent.parent

from cutblur_jax import xla_cpu  # pylint: disable=g-import-not-at-top,wrong-import-position

xla_cpu.enable_fast_path()  # before JAX starts: XLA reads XLA_FLAGS once

from cutblur_jax import train  # pylint: disable=g-import-not-at-top,wrong-import-position

_DEFAULT_CONFIG = _ROOT / "experiments" / "configs" / "default.py"
_CONFIG = config_flags.DEFINE_config_file(
    "config", str(_DEFAULT_CONFIG),
    "Training config file (override fields with --config.FIELD=VALUE).",
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Run directory (resumes if it holds a checkpoint). Default: "
    "./workdirs/<config name>-<timestamp>.")


def _default_workdir(config) -> pathlib.Path:
  if config.get("coordinator_address") or (config.get("num_processes") or 1) > 1:
    raise app.UsageError("Multi-process runs need an explicit --workdir shared by every process.")
  name = pathlib.Path(flags.FLAGS["config"].config_filename).stem
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  return pathlib.Path("workdirs") / f"{name}-{stamp}"


def main(argv) -> int:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  if not flags.FLAGS["verbosity"].present:
    absl_logging.set_verbosity(absl_logging.WARNING)  # orbax logs every save at INFO
  config = _CONFIG.value
  workdir = pathlib.Path(_WORKDIR.value) if _WORKDIR.value else _default_workdir(config)
  print(f"Work directory: {workdir.absolute()}  "
        f"(TensorBoard: tensorboard --logdir {workdir}; resume: --workdir {workdir})", flush=True)
  try:
    result = train.train_and_evaluate(config, workdir)
  except train.NonFiniteLossError as error:
    print(f"error: {error}", file=sys.stderr, flush=True)
    return 1
  summary = ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in result.items())
  print(f"Done: {summary}", flush=True)
  return 0


if __name__ == "__main__":
  app.run(main)
