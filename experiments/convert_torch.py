"""Converts an official CutBlur PyTorch checkpoint into a cutblur-jax model checkpoint.

Reads the ``state_dict`` of the official ``model/{edsr,rcan,carn}.py`` network (torch is
needed: ``pip install torch``), checks every tensor against the architecture by name and
shape, and writes an orbax checkpoint (``cutblur_jax.checkpoint.save_model``) that records
the architecture, so later commands (``infer.py``, ``evaluate.py``) need no model flags.
Nothing is left at ``--output`` when anything fails.

Usage:
  python experiments/convert_torch.py --model EDSR --scale 4 \
      --checkpoint EDSR_x4.pt --output checkpoints/edsr_x4
  python experiments/convert_torch.py --model EDSR --scale 2 --num_blocks 16 \
      --num_channels 64 --res_scale 1.0 --checkpoint small.pt --output checkpoints/small
"""

from __future__ import annotations

import argparse
from typing import Sequence

from cutblur_jax import xla_cpu  # pylint: disable=g-import-not-at-top,wrong-import-position

xla_cpu.enable_fast_path()  # before JAX starts: XLA reads XLA_FLAGS once

from cutblur_jax import checkpoint, cli, convert, models, outputs

ARCH_FLAGS = {
  "num_blocks": int,
  "num_channels": int,
  "num_groups": int,
  "reduction": int,
  "res_scale": float,
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  parser = cli.ArgumentParser(description=__doc__.split("\n")[0], epilog=outputs.RULE)
  parser.add_argument("--model", required=True, help=f"one of {sorted(models.PRESETS)}")
  parser.add_argument("--scale", type=int, required=True)
  parser.add_argument("--checkpoint", required=True, help="the official .pt state_dict")
  parser.add_argument("--output", required=True, help="checkpoint directory to write")
  parser.add_argument(
    "--overwrite",
    action="store_true",
    help="replace an existing --output that this command converted (never "
    "another folder, an input or a work directory)",
  )
  cli.add_verbose_flag(parser)
  group = parser.add_argument_group(
    "architecture overrides (default: the preset's). The official files do not record "
    "res_scale, so a wrong --res_scale cannot be detected: it converts, and the network "
    "computes something else; take it from the official training command"
  )
  for flag, kind in ARCH_FLAGS.items():
    group.add_argument(f"--{flag}", type=kind)
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(argv)
  cli.quiet_library_logs(args.verbose)
  overrides = {k: getattr(args, k) for k in ARCH_FLAGS if getattr(args, k) is not None}
  try:
    outputs.check_output(
      args.output,
      flag="--output",
      overwrite=args.overwrite,
      inputs={"--checkpoint": args.checkpoint},
      kind="directory",
      recognise=outputs.is_converted_checkpoint,
    )
    arch = models.model_arch(args.model, args.scale, **overrides)
    state_dict = convert.load_torch_state_dict(args.checkpoint)
    params = convert.torch_to_flax(state_dict, arch)
    path = checkpoint.save_model(args.output, params, arch, overwrite=args.overwrite)
  except cli.EXPECTED_ERRORS as error:
    return cli.report(error, verbose=args.verbose)
  print(
    f"wrote {path}: {arch['model']} x{arch['scale']}, "
    f"{models.count_params(params):,} parameters ({arch})"
  )
  return 0


if __name__ == "__main__":
  cli.run_program(main)
