r"""The paper's HR-input test at small scale: EDSR with and without MoA, over several seeds.

For every seed, the same network is trained on the same data (same
initialisation, same patches: the seed fixes both) once per *setting*, and only
the augmentation differs:

* ``none``: no augmentation beyond flips and rotations (the paper's baseline);
* ``moa``: the paper's mixture of augmentations (``augment.moa``), CutBlur included;
* ``cutblur`` (optional): CutBlur alone, every batch (``alpha`` 0.7).

Each trained model (its final parameters, ``checkpoints/latest``; not the
best-by-validation checkpoint, which would select on the test images) is then
measured on the held-out embedded photos (``chelsea``, ``stereo_motorcycle``)
with ``cutblur_jax.evaluation.evaluate_model``:

* PSNR/SSIM of the super-resolved LR image against HR (crop ``scale``, Y
  channel, as SR benchmarks), beside MATLAB-bicubic upsampling;
* the **HR-input PSNR**: the network is fed the HR image itself where it
  normally gets the nearest-upsampled LR image, and PSNR(output, HR input) is
  measured. A model that learned *where* to super-resolve leaves an HR image
  nearly unchanged (high PSNR); the paper shows (qualitatively) models trained
  without CutBlur over-sharpening it.

It prints a table (mean and sample standard deviation over seeds per setting,
and the per-seed paired difference to ``none``) and writes a JSON report::

  {"command": str, "config": {...overrides...}, "scale": int, "num_train_steps": int,
   "seeds": [int], "settings": [str], "protocol": {"crop_border", "y_only"},
   "bicubic": {"psnr", "ssim"},
   "runs": [{"setting", "seed", "workdir", "psnr", "ssim", "hr_input_psnr",
             "train_wall_time_s", "steps", "validation_curve": [[step, psnr], ...],
             "images": [{"name", "psnr", "ssim", "hr_input_psnr", ...}]}],
   "summary": {setting: {metric: {"mean", "std", "min", "max", "n"}}},
   "paired_difference": {setting: {metric: {"mean", "std", "n"}}},   # setting - none
   "wall_time_s": float}

(``std`` is ``null`` for a single seed; ``train_wall_time_s`` is this invocation's
``train_and_evaluate`` time, so a run finished earlier shows only its re-validation.)
Every run lives in ``WORKDIR/<setting>-seed<seed>``; rerunning the same command resumes
unfinished runs and only re-measures finished ones.

Usage:

  # the README's table (3 seeds x 2 settings, about 50 min on a busy 2-core CPU)
  python experiments/reproduce_hr_input.py --seeds 0 1 2 --num_train_steps 3000 --decay 2 \
      --workdir workdirs/hr_input --output workdirs/hr_input/report.json
  # CutBlur alone as a third setting
  python experiments/reproduce_hr_input.py --settings none moa cutblur --num_train_steps 3000 \
      --decay 2 --workdir workdirs/hr_input
  python experiments/reproduce_hr_input.py --seeds 0 --num_train_steps 20 \
      --set num_blocks=1 --set num_channels=8 --workdir /tmp/hr_input   # a smoke test
"""

from __future__ import annotations

import argparse
import ast
import datetime
import importlib.util
import pathlib
import shlex
import sys
import time
from typing import Any, Mapping, Sequence

import numpy as np

_ROOT = pathlib.Path(__file__).resolve().parent.parent

# pylint: disable=g-import-not-at-top,wrong-import-position
from cutblur_jax import xla_cpu  # pylint: disable=g-import-not-at-top,wrong-import-position

xla_cpu.enable_fast_path()  # before JAX starts: XLA reads XLA_FLAGS once

from cutblur_jax import checkpoint, evaluation, metrics, train
from cutblur_jax.data.embedded import embedded_dataset
from cutblur_jax.data.io import write_json
from cutblur_jax.training.logs import read_metrics
# pylint: enable=g-import-not-at-top,wrong-import-position

DEFAULT_CONFIG = _ROOT / "experiments" / "configs" / "default.py"
BASELINE = "none"
# The config fields each setting sets; everything else is shared.
SETTINGS: dict[str, dict[str, Any]] = {
    "none": {"use_moa": False, "augs": ("none",), "prob": (1.0,), "alpha": (1.0,),
             "mix_p": None},
    "moa": {"use_moa": True, "augs": None, "prob": None, "alpha": None, "mix_p": None},
    "cutblur": {"use_moa": False, "augs": ("cutblur",), "prob": (1.0,), "alpha": (0.7,),
                "mix_p": None},
}
METRICS = ("psnr", "ssim", "hr_input_psnr")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--config", default=str(DEFAULT_CONFIG),
                      help="training config file (default: experiments/configs/default.py, a "
                      "small EDSR on the embedded photos)")
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                      help="training seeds (initialisation and data order); default 0 1 2")
  parser.add_argument("--settings", nargs="+", default=["none", "moa"],
                      choices=sorted(SETTINGS), help="augmentation settings to compare "
                      "(default: none moa); 'none' is the baseline of the paired differences")
  parser.add_argument("--num_train_steps", type=int, default=None,
                      help="training steps per run (default: the config's)")
  parser.add_argument("--scale", type=int, default=2, help="SR factor (default 2)")
  parser.add_argument("--decay", default=None,
                      help="learning-rate milestones in thousands of steps, e.g. '2' "
                      "(default: the config's)")
  parser.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="FIELD=VALUE", help="override a config field (repeatable), e.g. "
                      "--set num_blocks=8 --set batch_size=8")
  parser.add_argument("--workdir", default=None,
                      help="folder for the runs (default ./workdirs/hr_input-<timestamp>); "
                      "rerunning with the same folder resumes")
  parser.add_argument("--output", default=None,
                      help="JSON report path (default WORKDIR/report.json)")
  parser.add_argument("--progress_bar", action=argparse.BooleanOptionalAction, default=None,
                      help="show the training progress bar (default: when stderr is a terminal)")
  args = parser.parse_args(argv)
  if any(seed < 0 for seed in args.seeds):
    parser.error(f"--seeds must be non-negative, got {args.seeds}.")
  if len(set(args.seeds)) != len(args.seeds):
    parser.error(f"--seeds must be distinct, got {args.seeds}.")
  if len(set(args.settings)) != len(args.settings):
    parser.error(f"--settings must be distinct, got {args.settings}.")
  if args.num_train_steps is not None and args.num_train_steps < 1:
    parser.error(f"--num_train_steps must be positive, got {args.num_train_steps}.")
  if args.scale < 2:
    parser.error(f"--scale must be 2 or more (an SR factor), got {args.scale}.")
  try:
    args.overrides = dict(_parse_override(item) for item in args.overrides)
  except ValueError as error:
    parser.error(str(error))
  for field in set(args.overrides) & ({"seed", "scale", "num_train_steps", "decay"}
                                      | set(SETTINGS["none"])):
    parser.error(f"--set {field}=... is set by the script; use its own flag or --settings.")
  return args


def _parse_override(item: str) -> tuple[str, Any]:
  field, sep, text = item.partition("=")
  if not sep or not field:
    raise ValueError(f"--set expects FIELD=VALUE, got {item!r}.")
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text  # a bare string, e.g. --set dtype=bfloat16
  return field.strip(), value


def load_config(path: str | pathlib.Path):
  """``get_config()`` of a config file."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise ValueError(f"Config file {str(path)!r} does not exist.")
  spec = importlib.util.spec_from_file_location(f"config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ValueError(f"Config file {str(path)!r} has no get_config().")
  return module.get_config()


def run_config(base: Any, setting: str, seed: int, *, scale: int, num_train_steps: int | None,
               decay: str | None, overrides: Mapping[str, Any], progress_bar: bool):
  """The config of one run: ``base`` with the shared overrides, the seed and the setting."""
  config = base.copy_and_resolve_references()
  config.unlock()
  for field, value in overrides.items():
    if field not in config:
      raise ValueError(f"--set {field}: the config has no field {field!r}.")
    config[field] = tuple(value) if isinstance(value, list) else value
  config.seed = int(seed)
  config.scale = int(scale)
  if num_train_steps is not None:
    config.num_train_steps = int(num_train_steps)
  if decay is not None:
    config.decay = str(decay)
  for field, value in SETTINGS[setting].items():
    config[field] = value
  config.progress_bar = bool(progress_bar)
  return config


def _validation_curve(workdir: pathlib.Path) -> list[list[float]]:
  """``[[step, psnr], ...]`` of the run's periodic validations (metrics.jsonl)."""
  curve = {}
  for record in read_metrics(workdir):
    if record.get("split") == "eval" and "psnr" in record:
      curve[int(record["step"])] = float(record["psnr"])
  return [[step, curve[step]] for step in sorted(curve)]


def train_and_measure(config: Any, workdir: pathlib.Path, dataset: Sequence[Any],
                      protocol: Mapping[str, Any]) -> dict[str, Any]:
  """Trains one run (or resumes/finishes it) and measures its final parameters."""
  result = train.train_and_evaluate(config, workdir)
  params, arch = checkpoint.load_model(workdir / "checkpoints" / "latest")
  report = evaluation.evaluate_model(params, arch, dataset, hr_input_test=True, **protocol)
  return {"workdir": str(workdir), "steps": int(result["step"]),
          "train_wall_time_s": float(result["wall_time_s"]),
          **{key: float(report["mean"][key]) for key in METRICS},
          "bicubic_psnr": float(report["mean"]["bicubic_psnr"]),
          "bicubic_ssim": float(report["mean"]["bicubic_ssim"]),
          "validation_curve": _validation_curve(workdir),
          "images": report["images"]}


def _stats(values: Sequence[float]) -> dict[str, Any]:
  values = np.asarray(values, np.float64)
  return {"mean": float(values.mean()),
          "std": float(values.std(ddof=1)) if len(values) > 1 else None,
          "min": float(values.min()), "max": float(values.max()), "n": int(len(values))}


def summarize(runs: Sequence[Mapping[str, Any]], settings: Sequence[str]) -> tuple[dict, dict]:
  """Per-setting statistics over seeds, and per-seed paired differences to ``none``."""
  summary = {}
  for setting in settings:
    rows = [run for run in runs if run["setting"] == setting]
    summary[setting] = {key: _stats([run[key] for run in rows]) for key in METRICS}
  paired = {}
  if BASELINE in settings:
    base = {run["seed"]: run for run in runs if run["setting"] == BASELINE}
    for setting in settings:
      if setting == BASELINE:
        continue
      rows = [run for run in runs if run["setting"] == setting and run["seed"] in base]
      paired[setting] = {}
      for key in METRICS:
        stats = _stats([run[key] - base[run["seed"]][key] for run in rows])
        paired[setting][key] = {name: stats[name] for name in ("mean", "std", "n")}
  return summary, paired


def _cell(stats: Mapping[str, Any], digits: int) -> str:
  text = f"{stats['mean']:.{digits}f}"
  if stats.get("std") is not None:
    text += f" ± {stats['std']:.{digits}f}"
  return text


def format_table(report: Mapping[str, Any]) -> str:
  """The report's summary as a Markdown table (mean ± sample std over seeds)."""
  columns = (("psnr", "PSNR (dB)", 2), ("ssim", "SSIM", 4),
             ("hr_input_psnr", "HR-input PSNR (dB)", 2))
  lines = ["| setting | seeds | " + " | ".join(title for _, title, _ in columns) + " |",
           "|---|---|" + "---|" * len(columns)]
  for setting, stats in report["summary"].items():
    lines.append(f"| {setting} | {stats['psnr']['n']} | "
                 + " | ".join(_cell(stats[key], digits) for key, _, digits in columns) + " |")
  bicubic = report["bicubic"]
  lines.append(f"| bicubic | - | {bicubic['psnr']:.2f} | {bicubic['ssim']:.4f} | - |")
  for setting, stats in report["paired_difference"].items():
    lines.append(f"| {setting} - {BASELINE} (paired) | {stats['psnr']['n']} | "
                 + " | ".join(("+" if stats[key]["mean"] >= 0 else "") + _cell(stats[key], digits)
                              for key, _, digits in columns) + " |")
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
  args = parse_args(argv)
  start = time.perf_counter()
  workdir = pathlib.Path(args.workdir or pathlib.Path("workdirs") / (
      "hr_input-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))).absolute()
  output = pathlib.Path(args.output) if args.output else workdir / "report.json"
  progress_bar = sys.stderr.isatty() if args.progress_bar is None else args.progress_bar
  base = load_config(args.config)
  # Fail on a bad override or config before anything trains.
  configs = {(setting, seed): run_config(base, setting, seed, scale=args.scale,
                                         num_train_steps=args.num_train_steps, decay=args.decay,
                                         overrides=args.overrides, progress_bar=progress_bar)
             for seed in args.seeds for setting in args.settings}
  resolved = {key: train.resolve_config(config) for key, config in configs.items()}
  first = next(iter(resolved.values()))
  if first.dataset != "embedded":
    raise ValueError(f"The HR-input comparison evaluates on the embedded validation photos; the "
                     f"config trains on {first.dataset!r}. Use an embedded-data config.")

  dataset = embedded_dataset("validation", scale=args.scale)
  protocol = metrics.eval_protocol("embedded", args.scale)
  print(f"Work directory: {workdir.absolute()}  ({len(configs)} runs: settings "
        f"{' '.join(args.settings)} x seeds {' '.join(map(str, args.seeds))}, "
        f"{first.num_train_steps} steps each; validation {', '.join(dataset.names)})", flush=True)
  runs = []
  for seed in args.seeds:
    for setting in args.settings:
      run_dir = workdir / f"{setting}-seed{seed}"
      print(f"[{setting} seed {seed}] training in {run_dir}", flush=True)
      run = {"setting": setting, "seed": seed,
             **train_and_measure(configs[setting, seed], run_dir, dataset, protocol)}
      runs.append(run)
      print(f"[{setting} seed {seed}] PSNR {run['psnr']:.2f} dB (bicubic "
            f"{run['bicubic_psnr']:.2f}), HR-input PSNR {run['hr_input_psnr']:.2f} dB, "
            f"train_and_evaluate {run['train_wall_time_s']:.0f} s", flush=True)

  summary, paired = summarize(runs, args.settings)
  overrides = {field: (list(value) if isinstance(value, tuple) else value)
               for field, value in args.overrides.items()}
  report = {
      "command": " ".join(shlex.quote(a) for a in
                          ["python", "experiments/reproduce_hr_input.py",
                           *(sys.argv[1:] if argv is None else argv)]),
      "config": {"file": str(args.config), "overrides": overrides, "model": first.model,
                 "num_blocks": first.num_blocks, "num_channels": first.num_channels,
                 "batch_size": first.batch_size, "patch_size": first.patch_size,
                 "lr": first.lr, "decay": first.decay},
      "scale": args.scale, "num_train_steps": int(first.num_train_steps),
      "seeds": list(args.seeds), "settings": list(args.settings), "protocol": dict(protocol),
      "validation_images": list(dataset.names),
      "bicubic": {"psnr": runs[0]["bicubic_psnr"], "ssim": runs[0]["bicubic_ssim"]},
      "runs": runs, "summary": summary, "paired_difference": paired,
      "wall_time_s": time.perf_counter() - start,
  }
  write_json(output, report)
  print("\n" + format_table(report), flush=True)
  print(f"\nReport: {output} ({report['wall_time_s'] / 60:.1f} min)", flush=True)
  return report


if __name__ == "__main__":
  try:
    main()
  except (ValueError, train.NonFiniteLossError) as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(1)
