r"""Trains a super-resolution model with CutBlur / MoA (a thin CLI over `cutblur_jax.train`).

Usage:

  python experiments/train.py                      # small EDSR + MoA on the embedded photos
  python experiments/train.py --config experiments/configs/edsr_div2k.py \
      --config.dataset_root=/data/DIV2K --workdir workdirs/edsr_x2
  python experiments/train.py --config experiments/configs/edsr_div2k.py \
      --config.scale=4 --config.pretrain=workdirs/edsr_x2 --workdir workdirs/edsr_x4

`--config.FIELD=VALUE` overrides any field (listed below). Without `--workdir` the run
goes to `./workdirs/<config name>-<timestamp>` (printed at start). Rerunning with the same
`--workdir` resumes from its latest checkpoint; a resume may change the run's length,
cadence and workers, and anything else only with `--accept_config_changes`. An existing
folder that is not a work directory is refused.

Exit status: 0 done; 1 a bad config, data set, file or checkpoint, a failed write, or a
NaN loss (one `error:` line; `--verbose` adds the traceback); 2 a usage error; 130 or 143
stopped by Ctrl-C or SIGTERM after saving the step in flight.
"""

from __future__ import annotations

import argparse
import datetime
import pathlib
import shlex
import sys
from typing import Sequence

from cutblur_jax import xla_cpu  # pylint: disable=g-import-not-at-top,wrong-import-position

xla_cpu.enable_fast_path()  # before JAX starts: XLA reads XLA_FLAGS once

# pylint: disable=g-import-not-at-top,wrong-import-position
from cutblur_jax import cli, train
from cutblur_jax.training import config as config_lib
from cutblur_jax.training import logs
from cutblur_jax.paths import absolute, as_path, check_backend, is_url
from cutblur_jax.training import workdir as workdir_lib
# pylint: enable=g-import-not-at-top,wrong-import-position

_DEFAULT_CONFIG = pathlib.Path(__file__).resolve().parent / "configs" / "default.py"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  """The flags; ``config`` is the loaded config with its ``--config.FIELD`` overrides."""
  parser = cli.ArgumentParser(
    prog="train.py",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
    allow_abbrev=False,  # --conf would be argparse's --config, which config_flags never sees
    epilog="config fields (--config.FIELD=VALUE):\n\n" + config_lib.fields_help(),
  )
  # Declared for --help and argparse's checks; parse_config_flags consumes it and its fields.
  parser.add_argument(
    "--config",
    metavar="FILE[:ARG]",
    default=str(_DEFAULT_CONFIG),
    help="training config file, a get_config() module (default: experiments/configs/default.py)",
  )
  parser.add_argument(
    "--workdir",
    default=None,
    help="run directory (resumes if it holds a checkpoint); default: "
    "./workdirs/<config name>-<timestamp>",
  )
  parser.add_argument(
    "--accept_config_changes",
    action="store_true",
    help="let a resume change what the run means (the data set, lr, the "
    "augmentations, ...: any field but the run's length, cadence and "
    "workers); the change is recorded in metrics.jsonl. Without it such "
    "a resume is refused, naming the fields",
  )
  cli.add_verbose_flag(parser)
  config_flags = cli.parse_config_flags(
    parser, sys.argv[1:] if argv is None else argv, default=str(_DEFAULT_CONFIG)
  )
  args = parser.parse_args(config_flags.rest)
  args.config, args.config_filename = config_flags.config, config_flags.filename
  if args.workdir is None and (
    args.config.get("coordinator_address") or (args.config.get("num_processes") or 1) > 1
  ):
    parser.error("a multi-process run needs an explicit --workdir shared by every process")
  return args


def _default_workdir(config_filename: str) -> pathlib.Path:
  name = pathlib.Path(config_filename.split(":", 1)[0]).stem
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  return pathlib.Path("workdirs") / f"{name}-{stamp}"


def _summary(result: dict, workdir: pathlib.Path, config) -> str:
  """The block printed at the end: the best model, its gain, and the next commands."""
  lines = []
  if result.get("finished_before"):
    lines.append(f"The run in {workdir} was already finished at step {result['step']}.")
  else:
    lines.append(
      f"Done: {result['step']} steps in {result['wall_time_s']:.0f} s (loss {result['loss']:.4f})."
    )
  name = "bicubic" if "bicubic_psnr" in result else "input"
  base_psnr, base_ssim = result.get(f"{name}_psnr"), result.get(f"{name}_ssim")
  best = result.get("best_checkpoint")
  if best:
    lines.append(
      f"Best model: step {result['best_step']}, PSNR {result['best_psnr']:.2f} dB "
      f"({result['weights']} weights), in {best}"
    )
  if base_psnr is not None and result.get("psnr") is not None:
    lines.append(
      f"Last validation: PSNR {result['psnr']:.2f} dB, SSIM {result['ssim']:.4f}; "
      f"{name} {base_psnr:.2f} dB, {base_ssim:.4f} "
      f"(gain {result['psnr'] - base_psnr:+.2f} dB)"
    )
  run = shlex.quote(str(workdir))
  dataset = f"--dataset {shlex.quote(str(config['dataset']))}"
  if config["dataset_root"]:
    dataset += f" --dataset_root {shlex.quote(str(config['dataset_root']))}"
  lines += [
    "Next:",
    f"  python experiments/evaluate.py --checkpoint {run} {dataset}",
    f"  python experiments/infer.py --checkpoint {run} --input LR_IMAGES --output SR_DIR",
  ]
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  try:
    args = parse_args(argv)
  except (OSError, ValueError) as error:  # the --config file
    return cli.report(error)
  cli.quiet_library_logs(args.verbose)
  try:
    if args.workdir:
      check_backend(args.workdir, what="--workdir")
    workdir = as_path(args.workdir) if args.workdir else _default_workdir(args.config_filename)
  except ValueError as error:
    return cli.report(error)
  events = logs.tensorboard_available() and not is_url(workdir)  # no events on a bucket
  hint = f"TensorBoard: tensorboard --logdir {workdir}; " if events else ""
  print(f"Work directory: {absolute(workdir)}  ({hint}resume: --workdir {workdir})", flush=True)
  try:
    result = train.train_and_evaluate(
      args.config, workdir, accept_config_changes=args.accept_config_changes
    )
  except train.TrainingInterrupted as stop:
    print(f"Interrupted: {stop}", file=sys.stderr, flush=True)
    return stop.exit_status
  except KeyboardInterrupt:
    print(
      f"Interrupted; resume from the newest checkpoint with --workdir {workdir}.",
      file=sys.stderr,
      flush=True,
    )
    return 130
  except (ValueError, OSError, train.NonFiniteLossError, workdir_lib.WorkdirBusyError) as error:
    return cli.report(error, verbose=args.verbose)
  print(_summary(result, workdir, args.config), flush=True)
  return 0


if __name__ == "__main__":
  cli.run_program(main)
