r"""Trains a super-resolution model with CutBlur / MoA (a thin CLI over `cutblur_jax.train`).

Usage:

  python experiments/train.py                      # small EDSR + MoA on the embedded photos
  python experiments/train.py --config experiments/configs/edsr_div2k.py \
      --config.dataset_root=/data/DIV2K --workdir workdirs/edsr_x2
  python experiments/train.py --config experiments/configs/edsr_div2k.py \
      --config.scale=4 --config.pretrain=workdirs/edsr_x2 --workdir workdirs/edsr_x4

`--config.FIELD=VALUE` overrides any field (listed below). Without `--workdir` the run
goes to `./workdirs/<config name>-<timestamp>` (printed at start). Rerunning with the same
`--workdir` resumes from its latest checkpoint.

Exit status: 0 done; 1 a bad config, data set, file or checkpoint, a failed write, or a
NaN loss (one `error:` line; `--verbose` adds the traceback); 2 a usage error; 130 or 143
stopped by Ctrl-C or SIGTERM after saving the step in flight.
"""

from __future__ import annotations

import datetime
import pathlib
import re
import shlex
import sys
import traceback

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from cutblur_jax import xla_cpu  # pylint: disable=g-import-not-at-top,wrong-import-position

xla_cpu.enable_fast_path()  # before JAX starts: XLA reads XLA_FLAGS once

# pylint: disable-next=g-import-not-at-top,wrong-import-position
from cutblur_jax import train
from cutblur_jax.training import config as config_lib  # pylint: disable=wrong-import-position
from cutblur_jax.training import logs  # pylint: disable=wrong-import-position
from cutblur_jax.training import workdir as workdir_lib  # pylint: disable=wrong-import-position

__doc__ += "\nConfig fields:\n\n" + config_lib.fields_help() + "\n"

def _config_error(error: Exception) -> str:
  """One line for a ``--config.FIELD`` that config_flags could not apply."""
  text = str(error).strip().strip("'\"").replace("\\n", "\n").replace("\\'", "'")
  field = re.search(r"^'?([A-Za-z_][\w.]*)'?", text)
  hint = re.search(r'Did you mean "(\w+)"', text)
  name = field.group(1) if field else "?"
  if isinstance(error, (AttributeError, KeyError)):
    message = f"--config.{name}: unknown config field"
    return message + (f"; did you mean --config.{hint.group(1)}?" if hint else
                      "; python experiments/train.py --help lists them.")
  return f"--config: {' '.join(text.split())}"


_ROOT = pathlib.Path(__file__).resolve().parent.parent
_DEFAULT_CONFIG = _ROOT / "experiments" / "configs" / "default.py"
try:  # config_flags applies --config.FIELD overrides as it defines the flag
  _CONFIG = config_flags.DEFINE_config_file(
      "config", str(_DEFAULT_CONFIG),
      "Training config file (override fields with --config.FIELD=VALUE).",
      lock_config=True)
except (AttributeError, KeyError, TypeError, ValueError) as _error:
  if __name__ != "__main__":
    raise
  print(f"error: {_config_error(_error)}", file=sys.stderr, flush=True)
  sys.exit(2)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Run directory (resumes if it holds a checkpoint). Default: "
    "./workdirs/<config name>-<timestamp>.")
_VERBOSE = flags.DEFINE_bool("verbose", False, "Show the traceback of an error.")


def _default_workdir(config) -> pathlib.Path:
  if config.get("coordinator_address") or (config.get("num_processes") or 1) > 1:
    raise app.UsageError("Multi-process runs need an explicit --workdir shared by every process.")
  name = pathlib.Path(flags.FLAGS["config"].config_filename).stem
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  return pathlib.Path("workdirs") / f"{name}-{stamp}"


def _summary(result: dict, workdir: pathlib.Path) -> str:
  """The block printed at the end: the best model, its gain, and the next commands."""
  lines = []
  if result.get("finished_before"):
    lines.append(f"The run in {workdir} was already finished at step {result['step']}.")
  else:
    lines.append(f"Done: {result['step']} steps in {result['wall_time_s']:.0f} s "
                 f"(loss {result['loss']:.4f}).")
  name = "bicubic" if "bicubic_psnr" in result else "input"
  base_psnr, base_ssim = result.get(f"{name}_psnr"), result.get(f"{name}_ssim")
  best = result.get("best_checkpoint")
  if best:
    lines.append(f"Best model: step {result['best_step']}, PSNR {result['best_psnr']:.2f} dB "
                 f"({result['weights']} weights), in {best}")
  if base_psnr is not None and result.get("psnr") is not None:
    lines.append(f"Last validation: PSNR {result['psnr']:.2f} dB, SSIM {result['ssim']:.4f}; "
                 f"{name} {base_psnr:.2f} dB, {base_ssim:.4f} "
                 f"(gain {result['psnr'] - base_psnr:+.2f} dB)")
  run = shlex.quote(str(workdir))
  lines += ["Next:",
            f"  python experiments/evaluate.py --checkpoint {run} --dataset embedded",
            f"  python experiments/infer.py --checkpoint {run} --input LR_IMAGES --output SR_DIR"]
  return "\n".join(lines)


def _fail(message: str, error: BaseException | None = None) -> int:
  if error is not None and _VERBOSE.value:
    traceback.print_exception(error)
  print(f"error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
  return 1


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's parsing, with one ``error:`` line (exit status 2) for a bad flag or field."""
  try:
    rest = flags.FLAGS(argv)
  except (AttributeError, KeyError, TypeError, ValueError) as error:  # --config.FIELD
    print(f"error: {_config_error(error)}", file=sys.stderr, flush=True)
    sys.exit(2)
  except flags.Error as error:
    print(f"error: {' '.join(str(error).split())}", file=sys.stderr, flush=True)
    sys.exit(2)
  if len(rest) > 1:
    print(f"error: unexpected arguments: {' '.join(rest[1:])}", file=sys.stderr, flush=True)
    sys.exit(2)
  return rest


def main(argv) -> int:
  del argv  # checked by _parse_flags
  if not flags.FLAGS["verbosity"].present:
    absl_logging.set_verbosity(absl_logging.WARNING)  # orbax logs every save at INFO
  try:
    config = _CONFIG.value
  except (AttributeError, KeyError, ValueError, TypeError) as error:
    return _fail(_config_error(error), error)
  workdir = pathlib.Path(_WORKDIR.value) if _WORKDIR.value else _default_workdir(config)
  hint = f"TensorBoard: tensorboard --logdir {workdir}; " if logs.tensorboard_available() else ""
  print(f"Work directory: {workdir.absolute()}  ({hint}resume: --workdir {workdir})", flush=True)
  try:
    result = train.train_and_evaluate(config, workdir)
  except train.TrainingInterrupted as stop:
    print(f"Interrupted: {stop}", file=sys.stderr, flush=True)
    return stop.exit_status
  except KeyboardInterrupt:
    print(f"Interrupted; resume from the newest checkpoint with --workdir {workdir}.",
          file=sys.stderr, flush=True)
    return 130
  except train.NonFiniteLossError as error:
    return _fail(error, error)
  except (ValueError, workdir_lib.WorkdirBusyError) as error:
    return _fail(error, error)
  except OSError as error:  # a write or read failure: the path and the cause
    if error.filename and not isinstance(error, (logs.LogWriteError,)):
      return _fail(f"{error.filename}: {error.strerror or error}", error)
    return _fail(error, error)
  print(_summary(result, workdir), flush=True)
  return 0


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
