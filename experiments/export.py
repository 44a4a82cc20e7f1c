"""Exports a cutblur-jax checkpoint as StableHLO (``jax.export``) or ONNX, and checks the file.

The exported function takes LR images ``float32 [N, h, w, 3]`` on [0, 255] and returns
``float32 [N, h*s, w*s, 3]`` on [0, 255] (nearest upsampling inside, output clipped); a
same-size network (scale 1, or ``--input_is_hr_size``) takes and returns ``[N, H, W, 3]``
with ``H`` and ``W`` multiples of its scale. Batch, height and width are symbolic unless
``--shape N H W`` fixes them. After writing, the file is loaded and run (StableHLO in JAX,
ONNX in ONNX Runtime) on a random image and compared with the network in JAX; the largest
difference is printed.

ONNX needs the export extra: ``pip install -e ".[export]"`` (jax2onnx, onnx, onnxruntime).

Usage:
  python experiments/export.py --checkpoint workdirs/run --format stablehlo --output edsr.shlo
  python experiments/export.py --checkpoint workdirs/run --format onnx --output edsr.onnx
  python experiments/export.py --checkpoint ckpt --format onnx --output x.onnx --shape 1 64 64
"""

from __future__ import annotations

import argparse
import functools
import pathlib
from typing import Sequence

from cutblur_jax import xla_cpu  # pylint: disable=g-import-not-at-top,wrong-import-position

xla_cpu.enable_fast_path()  # before JAX starts: XLA reads XLA_FLAGS once

import numpy as np  # pylint: disable=wrong-import-position


from cutblur_jax import cli, outputs  # pylint: disable=g-import-not-at-top,wrong-import-position


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = cli.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=outputs.RULE)
  parser.add_argument(
    "--checkpoint",
    required=True,
    help="a model checkpoint, CheckpointManager root or training workdir",
  )
  parser.add_argument("--format", required=True, choices=("stablehlo", "onnx"))
  parser.add_argument(
    "--output",
    required=True,
    help="the file to write (its run folder is fine, e.g. RUN/model.onnx)",
  )
  parser.add_argument(
    "--input_is_hr_size",
    action="store_true",
    help="the network takes HR-sized images (same-size pairs): no upsampling",
  )
  parser.add_argument(
    "--shape",
    type=int,
    nargs=3,
    metavar=("N", "H", "W"),
    default=None,
    help="a fixed input shape (ONNX only; default: symbolic)",
  )
  parser.add_argument(
    "--raw_weights",
    action="store_true",
    help="export the raw weights of a checkpoint trained with EMA",
  )
  parser.add_argument(
    "--overwrite",
    action="store_true",
    help="replace an existing --output export of the same --format",
  )
  parser.add_argument("--no_check", action="store_true", help="do not run the written file")
  cli.add_verbose_flag(parser)
  return parser.parse_args(argv)


def _check_output(args: argparse.Namespace) -> pathlib.Path:
  from cutblur_jax import export  # pylint: disable=g-import-not-at-top

  return outputs.check_output(
    args.output,
    flag="--output",
    overwrite=args.overwrite,
    inputs={"--checkpoint": args.checkpoint},
    recognise=functools.partial(export.is_export, args.format),
  )


def _check_file(args, output, params, arch) -> float:
  """Runs the written file on a random image; the largest difference from JAX."""
  from cutblur_jax import export  # pylint: disable=g-import-not-at-top

  scale = int(arch["scale"])
  same_size = scale == 1 or args.input_is_hr_size
  n, h, w = (
    args.shape if args.shape else (1, 5 * scale if same_size else 5, 7 * scale if same_size else 7)
  )
  images = np.random.default_rng(0).uniform(0, 255, (n, h, w, 3)).astype(np.float32)
  expected = np.asarray(
    export.network_function(params, arch, input_is_hr_size=args.input_is_hr_size)(images)
  )
  if args.format == "stablehlo":
    got = export.load(output)(images)
  else:
    import onnxruntime  # pylint: disable=g-import-not-at-top

    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: images})[0]
  if got.shape != expected.shape:
    raise ValueError(
      f"The written {args.format} file returns shape {got.shape} for input "
      f"{images.shape}; expected {expected.shape}."
    )
  return float(np.max(np.abs(got - expected)))


def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(argv)
  cli.quiet_library_logs(args.verbose)
  try:
    from cutblur_jax import checkpoint, export  # pylint: disable=g-import-not-at-top

    output = _check_output(args)
    if args.shape is not None and args.format == "stablehlo":
      raise ValueError("--shape is for ONNX; StableHLO exports are symbolic in N, H and W.")
    params, arch = checkpoint.load_model(args.checkpoint, use_ema=not args.raw_weights)
    shape = None if args.shape is None else tuple(args.shape)
    spec = export.input_spec(arch, input_is_hr_size=args.input_is_hr_size, shape=shape)
    if args.format == "stablehlo":
      artifact = export.export_stablehlo(params, arch, input_is_hr_size=args.input_is_hr_size)
    else:
      artifact = export.export_onnx(
        params, arch, input_is_hr_size=args.input_is_hr_size, shape=shape
      )
    export.save(artifact, output, overwrite=args.overwrite)
    dims = ", ".join(str(d) for d in spec.shape)
    print(
      f"Wrote {output} ({args.format}, {arch['model']} x{arch['scale']}, input float32 "
      f"[{dims}] on [0, 255])"
    )
    if not args.no_check:
      difference = _check_file(args, output, params, arch)
      print(
        f"Checked: the file's output is within {difference:.2g} of the network in JAX "
        "(on [0, 255])."
      )
  except cli.EXPECTED_ERRORS as error:
    return cli.report(error, verbose=args.verbose)
  return 0


if __name__ == "__main__":
  cli.run_program(main)
