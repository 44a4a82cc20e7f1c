"""Writes a synthetic DIV2K-layout folder of 2K images, for measuring the input pipeline at scale.

``DIR/DIV2K_train_HR/0001.png`` ... (2040x1356, DIV2K's most common size) and
``DIR/DIV2K_train_LR_bicubic/X{s}/0001x{s}.png``: smooth structure plus noise, so that PNG
sizes and decode times are close to photographs' (about 6 MB and 0.1 s per HR file). Image
``i`` is a function of ``i`` alone, so a second call with a larger ``--images`` only adds the
missing files, and an interrupted call resumes (each file is written atomically).

  python benchmarks/make_div2k.py --dir /tmp/div2k_synth --images 200 --scales 2 4
  python benchmarks/data.py --dataset_root /tmp/div2k_synth --images 200
  python benchmarks/data_memory.py --dataset_root /tmp/div2k_synth --counts 1 50 200
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import pathlib
import time

import numpy as np

from cutblur_jax.data.io import write_image

HEIGHT, WIDTH = 1356, 2040  # DIV2K's most common HR size.


def write_one(root: pathlib.Path, index: int, scales: tuple[int, ...]) -> bool:
  """Writes image ``index`` (1-based) and its LR images unless all exist; whether it wrote."""
  hr_path = root / "DIV2K_train_HR" / f"{index:04d}.png"
  lr_paths = {s: root / "DIV2K_train_LR_bicubic" / f"X{s}" / f"{index:04d}x{s}.png" for s in scales}
  if hr_path.exists() and all(p.exists() for p in lr_paths.values()):
    return False
  rng = np.random.default_rng(index)
  yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
  base = (
    np.sin(xx / (40 + 7 * index))[..., None] * 60
    + np.cos(yy / (25 + 5 * index))[..., None] * 60
    + np.array([120, 110, 100])
  )
  hr = np.clip(base + rng.normal(0, 12, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)
  write_image(hr_path, hr, compress_level=1)
  for scale, path in lr_paths.items():
    lr = hr.reshape(HEIGHT // scale, scale, WIDTH // scale, scale, 3).mean((1, 3))
    write_image(path, np.round(lr).astype(np.uint8), compress_level=1)
  return True


def write_div2k(root: pathlib.Path, count: int, scales, *, processes: int = 1) -> int:
  """Writes images ``1..count`` that are missing; returns how many it wrote."""
  scales = tuple(int(s) for s in scales)
  if processes <= 1:
    return sum(write_one(root, i, scales) for i in range(1, count + 1))
  with concurrent.futures.ProcessPoolExecutor(processes) as pool:
    done = pool.map(write_one, [root] * count, range(1, count + 1), [scales] * count)
    return sum(done)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--dir", required=True, type=pathlib.Path)
  parser.add_argument("--images", type=int, default=200)
  parser.add_argument("--scales", type=int, nargs="+", default=[4])
  parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
  args = parser.parse_args(argv)
  start = time.perf_counter()
  wrote = write_div2k(args.dir, args.images, args.scales, processes=args.processes)
  print(
    f"{args.dir}: wrote {wrote} of {args.images} images {WIDTH}x{HEIGHT} (+LR x{args.scales}) "
    f"in {time.perf_counter() - start:.1f} s"
  )


if __name__ == "__main__":
  main()
