"""Peak memory and start-up time of the training input against the number of images.

For each image count and each source, one fresh process builds the DIV2K folder data set of
the first ``N`` images of ``--dataset_root`` (``benchmarks/make_div2k.py`` writes one), a
``TrainPipeline`` over it (batch 16, LR patch 48, 2 reader threads) and reads batches:

* ``in-memory``: ``cache=True``, the default: every pair decoded once into RAM at start;
* ``from disk``: ``cache=False``: every sample decodes its PNG pair.

It reports the process's peak RSS (``ru_maxrss``), the RSS after the imports, the time from
the imports to the first batch, and patches per second once warm.

  python benchmarks/make_div2k.py --dir /tmp/div2k_synth --images 200
  python benchmarks/data_memory.py --dataset_root /tmp/div2k_synth --counts 1 50 200
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import textwrap

_PROBE = """
  import json, resource, sys, time
  from cutblur_jax.data.folders import div2k_dataset
  from cutblur_jax.data.pipeline import TrainPipeline
  root, count, scale, cache, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5])
  rss_mb = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  imported = rss_mb()
  start = time.perf_counter()
  data = div2k_dataset(root, split="train", scale=scale, div2k_range=f"1-{count}/1-1")
  with TrainPipeline(data, patch_size=48, batch_size=16, seed=0, num_workers=2, cache=cache) as pipeline:
    next(pipeline)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
      next(pipeline)
    rate = batches * 16 / (time.perf_counter() - start)
  print(json.dumps({"imports_mb": imported, "peak_mb": rss_mb(), "first_batch_s": first, "patches_per_s": rate}))
"""


def probe(root: str, count: int, scale: int, cache: bool, batches: int) -> dict:
  out = subprocess.run(
    [
      sys.executable,
      "-c",
      textwrap.dedent(_PROBE),
      root,
      str(count),
      str(scale),
      "01"[cache],
      str(batches),
    ],
    capture_output=True,
    text=True,
    check=True,
  ).stdout
  return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> list[dict]:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--dataset_root", required=True)
  parser.add_argument("--counts", type=int, nargs="+", default=[1, 50, 200])
  parser.add_argument("--scale", type=int, default=4)
  parser.add_argument("--cached_batches", type=int, default=100)
  parser.add_argument("--uncached_batches", type=int, default=3)
  args = parser.parse_args(argv)
  rows = []
  for count in args.counts:
    for name, cache, batches in (
      ("in-memory", True, args.cached_batches),
      ("from disk", False, args.uncached_batches),
    ):
      row = {
        "source": name,
        "images": count,
        **probe(args.dataset_root, count, args.scale, cache, batches),
      }
      rows.append(row)
      print(json.dumps(row), flush=True)
  print(
    f"\n{platform.processor() or platform.machine()}; x{args.scale}, batch 16, LR patch 48, 2 threads\n"
  )
  print(
    "| source | images | peak RSS MB | RSS after imports MB | start to first batch s | patches/s warm |"
  )
  print("|---|---|---|---|---|---|")
  for r in rows:
    print(
      f"| {r['source']} | {r['images']} | {r['peak_mb']:.0f} | {r['imports_mb']:.0f} | "
      f"{r['first_batch_s']:.1f} | {r['patches_per_s']:.0f} |"
    )
  return rows


if __name__ == "__main__":
  main()
