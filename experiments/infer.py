"""Super-resolves an image or a folder of images with a cutblur-jax model checkpoint.

The checkpoint (from ``convert_torch.py`` or training; a workdir works too) records its
network, so no model flags are needed. Each LR image is read as RGB (grayscale and RGBA
converted), upsampled by nearest neighbour and run through the network in overlapping,
size-bucketed tiles (``cutblur_jax.inference.super_resolve``); the result is written as
PNG under the input's name (stem + ``.png``) in ``--output``.

Usage:
  python experiments/infer.py --checkpoint checkpoints/edsr_x4 --input lr/ --output sr/
  python experiments/infer.py --checkpoint workdir --input photo.jpg --output sr/ --tile 128
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Sequence

import jax.numpy as jnp
from tqdm import tqdm

from cutblur_jax import checkpoint, inference
from cutblur_jax.data.io import read_image, write_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--checkpoint", required=True,
                      help="model checkpoint, CheckpointManager root or training workdir")
  parser.add_argument("--input", required=True, help="an image file or a folder of images")
  parser.add_argument("--output", required=True, help="folder for the SR PNGs")
  parser.add_argument("--tile", type=int, default=-1,
                      help="tile core in LR pixels; 0: whole image; default: from the model")
  parser.add_argument("--overlap", type=int, default=None,
                      help="LR pixels of context per tile side (default: receptive radius)")
  parser.add_argument("--bucket", type=int, default=inference.DEFAULT_BUCKET,
                      help="pad sides to multiples of this (LR pixels) to share compilations")
  parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                      help="computation dtype (bfloat16: faster on GPU/TPU, not exact)")
  return parser.parse_args(argv)


def input_paths(path: pathlib.Path) -> list[pathlib.Path]:
  """The image files to process: ``path`` itself, or the images in the folder, sorted."""
  if path.is_dir():
    paths = sorted(p for p in path.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
      raise ValueError(f"No PNG or JPEG images in {str(path)!r}.")
    return paths
  if not path.is_file():
    raise ValueError(f"Input {str(path)!r} does not exist.")
  return [path]


def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(argv)
  try:
    paths = input_paths(pathlib.Path(args.input))
    params, arch = checkpoint.load_model(args.checkpoint)
  except ValueError as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  output = pathlib.Path(args.output)
  output.mkdir(parents=True, exist_ok=True)
  names = [p.stem + ".png" for p in paths]
  if len(set(names)) != len(names):
    print("error: several inputs map to the same output name (e.g. a.png and a.jpg).",
          file=sys.stderr)
    return 1
  for path, name in zip(tqdm(paths, desc=f"{arch['model']} x{arch['scale']}", unit="image"),
                        names):
    try:
      lr = read_image(path)
      sr = inference.super_resolve(params, arch, lr, tile=args.tile or None,
                                   overlap=args.overlap, bucket=args.bucket,
                                   dtype=jnp.dtype(args.dtype))
    except ValueError as error:
      print(f"error: {error}", file=sys.stderr)
      return 1
    write_image(output / name, sr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
