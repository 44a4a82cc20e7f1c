"""Evaluates a cutblur-jax checkpoint: PSNR/SSIM beside bicubic, and the HR-input test.

The checkpoint (a ``save_model`` directory, a CheckpointManager root or a training
workdir) records its network and scale. The images come from one of:

* ``--dataset NAME``: a data set name of ``cutblur_jax.data.registry`` (``embedded``,
  ``Set5_SR``, ``DIV2K_SR``, ``RealSR``, ``tfds:NAME``, ...; folder sets need
  ``--dataset_root``). Metrics follow the official protocol of that name
  (its ``EvalProtocol``: DIV2K crop 6 + scale on RGB, benchmarks crop scale on Y).
* ``--dataset PATH``: a folder in a benchmark layout (``HR/`` + ``X{s}/``,
  ``HR/`` + ``LR_bicubic/X{s}/``, ``GTmod12/`` + ``LRbicx{s}/``; LR synthesised
  when only ``HR/`` is there) or a folder of HR images.
* ``--hr PATH``: an HR image or a folder of them; LR is synthesised with MATLAB
  bicubic ``imresize`` at the checkpoint's scale (HR mod-cropped first).
Paths are evaluated as an SR benchmark: crop ``scale`` pixels, Y channel.

It prints one row per image and the mean: model PSNR/SSIM, bicubic PSNR/SSIM (MATLAB
``imresize`` of the LR image, rounded), and the HR-input PSNR (the network fed the
HR image itself; skip with ``--no_hr_input_test``). ``--json FILE`` writes the same
numbers as standard JSON (format in ``cutblur_jax.evaluation``; an infinite PSNR, for an
output identical to HR, is ``null``). Bad input exits with status 1 and a
one-line message.

Usage:
  python experiments/evaluate.py --checkpoint workdir --dataset embedded
  python experiments/evaluate.py --checkpoint ckpt/edsr_x4 --dataset Set5_SR \\
      --dataset_root /data/benchmark --json set5.json
  python experiments/evaluate.py --checkpoint ckpt/edsr_x4 --hr photos/
"""

from __future__ import annotations

import argparse
import collections.abc
import dataclasses
import functools
import pathlib
import sys
from typing import Any, Sequence

from cutblur_jax.paths import absolute, as_path
from cutblur_jax import xla_cpu  # pylint: disable=g-import-not-at-top,wrong-import-position

xla_cpu.enable_fast_path()  # before JAX starts: XLA reads XLA_FLAGS once

import jax.numpy as jnp

from cutblur_jax import cli, evaluation, outputs
from cutblur_jax.data.spec import EvalProtocol, parse_dataset
from cutblur_jax.data.types import input_scale_of


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  parser = cli.ArgumentParser(description=__doc__.split("\n")[0], epilog=outputs.RULE)
  parser.add_argument(
    "--checkpoint",
    required=True,
    help="model checkpoint, CheckpointManager root or training workdir",
  )
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument(
    "--dataset",
    help="data set name (embedded, Set5_SR, DIV2K_SR, ...) or a "
    "folder (benchmark layout, or HR images)",
  )
  source.add_argument("--hr", help="HR image or folder of HR images; LR made with imresize")
  parser.add_argument("--dataset_root", default="", help="root folder for named folder data sets")
  parser.add_argument(
    "--split",
    default="validation",
    choices=("train", "validation", "test"),
    help="split of a named data set (default: validation)",
  )
  parser.add_argument("--div2k_range", default=None, help="DIV2K train/validation ranges")
  parser.add_argument("--camera", default=None, help="RealSR camera (all, Canon, Nikon)")
  parser.add_argument("--sigma", type=float, default=None, help="DN noise level")
  parser.add_argument("--quality", type=int, default=None, help="JPEG quality")
  parser.add_argument(
    "--synthesize_lr",
    action="store_true",
    help="make a missing LR folder of a named data set from HR (MATLAB "
    "bicubic imresize; the header then says so)",
  )
  parser.add_argument(
    "--crop_border",
    type=int,
    default=None,
    help="pixels cropped per side (default: the protocol of the data set)",
  )
  parser.add_argument(
    "--channels",
    choices=("y", "rgb"),
    default=None,
    help="measure the Y channel or RGB (default: the protocol)",
  )
  parser.add_argument(
    "--float_y",
    action="store_true",
    help="keep Y as float (BasicSR) instead of rounding it (official code)",
  )
  parser.add_argument(
    "--max_size",
    type=int,
    default=None,
    help="centre-crop each HR image to at most this size (quick look only)",
  )
  parser.add_argument(
    "--no_hr_input_test",
    action="store_true",
    help="skip the HR-input test (the network fed the HR image)",
  )
  parser.add_argument(
    "--tile",
    type=int,
    default=-1,
    help="tile core in LR pixels; 0: whole image; default: from the model",
  )
  cli.add_network_flags(parser)
  parser.add_argument("--json", default=None, help="write the report as JSON to this file")
  parser.add_argument(
    "--overwrite",
    action="store_true",
    help="replace an existing --json report or --save_images PNG (never an "
    "input, a checkpoint or a file of another kind)",
  )
  cli.add_verbose_flag(parser)
  parser.add_argument(
    "--save_images",
    default=None,
    metavar="DIR",
    help="write each super-resolved image as DIR/<name>.png (the official "
    "--save_result); a work directory is fine, an input folder is not",
  )
  return parser.parse_args(argv)


class _Cropped(collections.abc.Sequence):
  """A lazy view of a data set with every pair centre-cropped (``--max_size``)."""

  def __init__(self, dataset, max_size: int, input_scale: int):
    self._dataset, self._max_size, self.input_scale = dataset, max_size, input_scale

  def __len__(self) -> int:
    return len(self._dataset)

  def __getitem__(self, index):
    return evaluation.center_crop_pair(self._dataset[index], self._max_size, self.input_scale)


def load_dataset(args: argparse.Namespace, scale: int) -> tuple[Any, EvalProtocol, str]:
  """(data set, its ``EvalProtocol``, description) from ``--dataset`` / ``--hr``.

  HR images and benchmark folders given by path are measured as an SR benchmark (crop
  ``scale``, Y); a named data set by its own description (a TFDS copy by the data it holds).
  """
  benchmark = EvalProtocol.of("SR", scale)
  if args.hr is not None:
    pairs = evaluation.hr_pairs(args.hr, scale)
    return pairs, benchmark, f"{args.hr} (LR: imresize x1/{scale})"
  value = args.dataset
  path = as_path(value)
  if path.is_dir():
    if scale == 1:
      raise ValueError(
        "Same-size (scale 1) models need a named data set, e.g. "
        "--dataset DIV2K_DN --dataset_root DIR."
      )
    if any((path / sub).is_dir() for sub in ("HR", "GTmod12")):
      from cutblur_jax.data import folders  # pylint: disable=g-import-not-at-top

      dataset = folders.benchmark_dataset(path, task="SR", scale=scale, synthesize_lr=True)
      synthesised = (
        f" (LR synthesised with imresize x1/{scale}: the folder has no x{scale} LR images)"
        if dataset.lr_paths is None
        else ""
      )
      return dataset, benchmark, f"{value} x{scale}{synthesised}"
    return evaluation.hr_pairs(path, scale), benchmark, f"{value} (LR: imresize x1/{scale})"
  try:
    name = parse_dataset(value)
  except ValueError:
    if path.exists():
      raise ValueError(f"--dataset {value!r} is a file; use --hr for single images.") from None
    raise ValueError(
      f"--dataset {value!r} is neither an existing folder nor a data set name "
      "(embedded, DIV2K_SR, Set5_SR, RealSR, tfds:NAME, ...)."
    ) from None
  from cutblur_jax.data import registry  # pylint: disable=g-import-not-at-top

  options = {"dataset": name, "dataset_root": args.dataset_root, "scale": scale}
  for key in ("div2k_range", "camera", "sigma", "quality"):
    if getattr(args, key) is not None:
      options[key] = getattr(args, key)
  spec = registry.data_spec(options, synthesize_lr=args.synthesize_lr)
  dataset = registry.create_dataset(spec, args.split)
  data_scale = getattr(dataset, "scale", scale)
  if data_scale not in (scale, 1):  # same-size data (DN, JPEG) goes in as it is
    raise ValueError(
      f"--dataset {value!r} has scale {data_scale} but the checkpoint's model has scale {scale}."
    )
  synthesised = " (LR synthesised from HR)" if getattr(dataset, "lr_paths", ()) is None else ""
  return dataset, spec.eval_protocol, f"{value} {args.split} x{scale}{synthesised}"


def _inputs(args: argparse.Namespace) -> dict[str, str | None]:
  return {
    "--checkpoint": args.checkpoint,
    "--dataset": args.dataset,
    "--hr": args.hr,
    "--dataset_root": args.dataset_root or None,
  }


def _save_image(folder: pathlib.Path, overwrite: bool, name: str, image) -> None:
  from cutblur_jax.data.io import write_image  # pylint: disable=g-import-not-at-top

  target = folder / f"{pathlib.Path(name).name}.png"
  outputs.check_replace(target, flag="--save_images", overwrite=overwrite, recognise=outputs.is_png)
  write_image(target, image)


def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(argv)
  cli.quiet_library_logs(args.verbose)
  try:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top

    from cutblur_jax import checkpoint  # pylint: disable=g-import-not-at-top

    if args.max_size is not None and args.max_size < 1:
      raise ValueError(f"--max_size must be positive, got {args.max_size}.")
    if args.json is not None:  # Fail before the evaluation, not after it.
      json_parent = absolute(args.json).parent
      if not json_parent.is_dir():
        raise ValueError(f"--json {args.json!r}: folder {str(json_parent)!r} does not exist.")
      outputs.check_output(
        args.json,
        flag="--json",
        inputs=_inputs(args),
        overwrite=args.overwrite,
        recognise=outputs.is_json_report,
      )
    save_images = None
    if args.save_images is not None:
      save_images = outputs.check_output(
        args.save_images,
        flag="--save_images",
        inputs=_inputs(args),
        overwrite=args.overwrite,
        kind="folder",
      )
    params, arch = checkpoint.load_model(args.checkpoint, use_ema=not args.raw_weights)
    print(f"Checkpoint: {checkpoint.describe(args.checkpoint)}", flush=True)
    scale = int(arch["scale"])
    dataset, protocol, description = load_dataset(args, scale)
    if args.max_size is not None:
      dataset = _Cropped(dataset, args.max_size, input_scale_of(dataset))
    overrides = {"crop_border": args.crop_border, "round_y": not args.float_y}
    if args.channels is not None:
      overrides["y_only"] = args.channels == "y"
    protocol = dataclasses.replace(
      protocol, **{key: value for key, value in overrides.items() if value is not None}
    )
    report = evaluation.evaluate_model(
      params,
      arch,
      dataset,
      protocol=protocol,
      hr_input_test=not args.no_hr_input_test,
      tile=args.tile or None,
      dtype=jnp.dtype(args.dtype),
      progress=lambda it: tqdm(it, desc="evaluate", unit="image", file=sys.stderr, leave=False),
      on_output=None
      if save_images is None
      else functools.partial(_save_image, save_images, args.overwrite),
    )
    report["checkpoint"] = str(args.checkpoint)
    report["arch"] = dict(arch)
    report["dataset"] = description
    channels = ("Y (float)" if args.float_y else "Y") if report["y_only"] else "RGB"
    print(
      f"{arch['model']} x{scale} on {description}: {len(report['images'])} images, "
      f"crop {report['crop_border']}, {channels}"
    )
    print(evaluation.format_report(report))
    if args.json is not None:
      evaluation.write_report(report, args.json)
    if save_images is not None:
      print(f"Wrote {len(report['images'])} images to {save_images}")
  except cli.EXPECTED_ERRORS as error:
    return cli.report(error, verbose=args.verbose)
  return 0


if __name__ == "__main__":
  cli.run_program(main)
