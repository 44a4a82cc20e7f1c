"""Super-resolves an image or a folder of images with a cutblur-jax model checkpoint.

The checkpoint (from ``convert_torch.py`` or training; a workdir works too) records its
network, so no model flags are needed. Each LR image is read as RGB (grayscale and RGBA
converted), upsampled by nearest neighbour and run through the network in overlapping,
size-bucketed tiles (``cutblur_jax.inference.super_resolve``); the result is written as
PNG under the input's name (stem + ``.png``) in ``--output``. A folder's PNG, JPEG, BMP and
TIFF files are read; every other entry is named on stderr as skipped, with the reason. An
image that cannot be read is reported by name and skipped; the exit status is then 1. An
output never replaces an input file.

Usage:
  python experiments/infer.py --checkpoint checkpoints/edsr_x4 --input lr/ --output sr/
  python experiments/infer.py --checkpoint workdir --input photo.jpg --output sr/ --tile 128
  # A network trained on same-size pairs (RealSR v1), or the HR-input test:
  python experiments/infer.py --checkpoint workdir --input lr/ --output sr/ --input_is_hr_size
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Sequence

from cutblur_jax.paths import absolute, as_path
from cutblur_jax import xla_cpu  # pylint: disable=g-import-not-at-top,wrong-import-position

xla_cpu.enable_fast_path()  # before JAX starts: XLA reads XLA_FLAGS once

import jax.numpy as jnp
from tqdm import tqdm

from cutblur_jax import checkpoint, cli, inference, outputs
from cutblur_jax.data.image_folders import IMAGE_EXTENSIONS
from cutblur_jax.data.io import read_image, write_image


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  parser = cli.ArgumentParser(description=__doc__.split("\n")[0], epilog=outputs.RULE)
  parser.add_argument(
    "--checkpoint",
    required=True,
    help="model checkpoint, CheckpointManager root or training workdir",
  )
  parser.add_argument("--input", required=True, help="an image file or a folder of images")
  parser.add_argument("--output", required=True, help="folder for the SR PNGs")
  parser.add_argument(
    "--input_is_hr_size",
    action="store_true",
    help="the inputs already have the output size (same-size pairs such "
    "as RealSR v1, or HR images): no upsampling",
  )
  parser.add_argument(
    "--tile",
    type=int,
    default=-1,
    help="tile core in LR pixels; 0: whole image; default: from the model",
  )
  parser.add_argument(
    "--overlap",
    type=int,
    default=None,
    help="LR pixels of context per tile side (default: receptive radius)",
  )
  parser.add_argument(
    "--bucket",
    type=int,
    default=inference.DEFAULT_BUCKET,
    help="pad sides to multiples of this (LR pixels) to share compilations",
  )
  cli.add_network_flags(parser)
  parser.add_argument(
    "--overwrite",
    action="store_true",
    help="replace PNGs already in --output (never an input image, nor a file that is not a PNG)",
  )
  cli.add_verbose_flag(parser)
  args = parser.parse_args(argv)
  if args.tile < -1:
    parser.error(f"--tile must be positive, 0 (whole image) or -1 (default), got {args.tile}")
  if args.overlap is not None and args.overlap < 0:
    parser.error(f"--overlap must be >= 0, got {args.overlap}")
  if args.bucket < 1:
    parser.error(f"--bucket must be positive, got {args.bucket}")
  return args


def input_paths(path: pathlib.Path) -> tuple[list[pathlib.Path], list[str]]:
  """The image files to process (``path`` itself, or the images in the folder, sorted), and
  one note for each entry of the folder that is skipped, saying why."""
  if path.is_dir():
    paths, skipped = [], []
    for entry in sorted(path.iterdir()):
      if entry.is_dir():
        skipped.append(f"{entry.name}/ (a folder; sub-folders are not read)")
      elif entry.suffix.lower() not in IMAGE_EXTENSIONS:
        skipped.append(f"{entry.name} (not {', '.join(IMAGE_EXTENSIONS)})")
      else:
        paths.append(entry)
    if not paths:
      raise ValueError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) in {str(path)!r}.")
    return paths, skipped
  if not path.is_file():
    raise ValueError(f"Input {str(path)!r} does not exist.")
  return [path], []


def output_paths(
  inputs: list[pathlib.Path], output: pathlib.Path, *, overwrite: bool = False
) -> list[pathlib.Path]:
  """``output/<stem>.png`` for each input; refuses clashes, an input, and (without
  ``overwrite``, or when it is not a PNG) a file already there."""
  targets = [output / (p.stem + ".png") for p in inputs]
  if len(set(targets)) != len(targets):
    raise ValueError("Several inputs map to the same output name (e.g. a.png and a.jpg).")
  sources = {absolute(p) for p in inputs}
  for target in targets:
    if absolute(target) in sources:
      raise ValueError(
        f"The output {str(target)!r} would replace an input image; choose another --output folder."
      )
  existing = [t for t in targets if t.exists()]
  if existing and not overwrite:
    raise ValueError(
      f"--output {str(output)!r} already holds {existing[0].name}"
      f"{f' and {len(existing) - 1} more' if len(existing) > 1 else ''}; pass "
      "--overwrite to replace them."
    )
  for target in existing:
    outputs.check_replace(target, flag="--output", overwrite=overwrite, recognise=outputs.is_png)
  return targets


def check_sizes(paths: list[pathlib.Path], args: argparse.Namespace, scale: int) -> None:
  """Refuses an ``--overlap`` or ``--bucket`` larger than every image (a canvas of nothing).

  Reads only the image headers. Such a value cannot help any image, and would pad each one
  to a canvas of that size (gigabytes for a value in the thousands).
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top

  cell = scale if args.input_is_hr_size else 1
  sides = []
  for path in paths:
    try:
      with Image.open(path) as image:
        sides.append(max(image.size) // cell)
    except (OSError, ValueError):
      continue  # reported by name when it is read
  largest = max(sides, default=0)
  if not largest:
    return
  for flag, value in (("--overlap", args.overlap), ("--bucket", args.bucket)):
    if value is not None and value > max(largest, inference.DEFAULT_BUCKET):
      raise ValueError(
        f"{flag} {value} is larger than the largest input ({largest} LR pixels "
        f"a side): it cannot help and would pad every image to that size; use at "
        f"most {max(largest, inference.DEFAULT_BUCKET)}."
      )


def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(argv)
  cli.quiet_library_logs(args.verbose)
  try:
    outputs.check_output(
      args.output,
      flag="--output",
      overwrite=args.overwrite,
      kind="folder",
      inputs={"--checkpoint": args.checkpoint, "--input": args.input},
    )
    paths, skipped = input_paths(as_path(args.input))
    for note in skipped:
      print(f"skipped {note}", file=sys.stderr, flush=True)
    targets = output_paths(paths, as_path(args.output), overwrite=args.overwrite)
    params, arch = checkpoint.load_model(args.checkpoint, use_ema=not args.raw_weights)
    check_sizes(paths, args, int(arch["scale"]))
    print(f"Checkpoint: {checkpoint.describe(args.checkpoint)}", flush=True)
    as_path(args.output).mkdir(parents=True, exist_ok=True)
  except cli.EXPECTED_ERRORS as error:
    return cli.report(error, verbose=args.verbose)
  failed = 0
  bar = tqdm(paths, desc=f"{arch['model']} x{arch['scale']}", unit="image", leave=False)
  for path, target in zip(bar, targets):
    try:
      image = read_image(path)
    except ValueError as error:  # Names the file.
      tqdm.write(f"error: {error} Skipped.", file=sys.stderr)
      failed += 1
      continue
    sr = inference.super_resolve(
      params,
      arch,
      image,
      input_is_hr_size=args.input_is_hr_size,
      tile=args.tile or None,
      overlap=args.overlap,
      bucket=args.bucket,
      dtype=jnp.dtype(args.dtype),
    )
    try:
      write_image(target, sr)
    except OSError as error:  # a full or read-only disk: stop, naming the file
      bar.close()
      return cli.report(error, verbose=args.verbose)
    tqdm.write(f"wrote {target}")
  if failed:
    print(f"error: {failed} of {len(paths)} images could not be read.", file=sys.stderr)
  return 1 if failed else 0


if __name__ == "__main__":
  cli.run_program(main)
