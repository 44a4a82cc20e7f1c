"""Peak memory and start-up time of the training input against the number of images.

For each image count and each source, one fresh process builds the DIV2K folder data set of
the first ``N`` images of ``--dataset_root`` (``benchmarks/make_div2k.py`` writes one), a
``TrainPipeline`` over it (batch 16, LR patch 48, 2 reader threads) and reads batches:

* ``memory``: every pair decoded once into RAM at start (``data_source="memory"``);
* ``disk, cold``: ``data_source="disk"`` with an empty cache folder: pairs are decoded on
  first use and written to the cache (the first epoch of the first run on a host);
* ``disk, warm``: the same, once the cache holds every pair (every later epoch, resume, run
  and process on the host);
* ``files``: every sample decodes its PNG pair (``cache=False``).

It reports the process's peak RSS (``VmHWM``), its private memory at the end (``RssAnon``:
what the process itself holds) and its file-backed RSS (``RssFile``: mapped pages of the page
cache, shared by every process on the host and dropped under memory pressure), the time from
the imports to the first batch, and patches per second over ``--batches`` batches after it.

  python benchmarks/make_div2k.py --dir /tmp/div2k_synth --images 200
  python benchmarks/data_memory.py --dataset_root /tmp/div2k_synth --counts 1 50 200
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap

_PROBE = """
  import json, sys, time
  from cutblur_jax.data.folders import div2k_dataset
  from cutblur_jax.data.pipeline import TrainPipeline
  root, count, scale, source, cache_dir, batches = sys.argv[1:7]
  count, scale, batches = int(count), int(scale), int(batches)

  def status_mb(*keys):
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {key: int(fields[key].split()[0]) / 1024 for key in keys}

  imported = status_mb("VmRSS")["VmRSS"]
  start = time.perf_counter()
  data = div2k_dataset(root, split="train", scale=scale, div2k_range=f"1-{count}/1-1")
  with TrainPipeline(data, patch_size=48, batch_size=16, seed=0, num_workers=2, source=source,
                     cache_dir=cache_dir or None) as pipeline:
    next(pipeline)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
      next(pipeline)
    rate = batches * 16 / (time.perf_counter() - start)
  memory = status_mb("VmHWM", "RssAnon", "RssFile")
  print(json.dumps({"imports_mb": imported, "peak_mb": memory["VmHWM"],
                    "anon_mb": memory["RssAnon"], "file_mb": memory["RssFile"],
                    "first_batch_s": first, "patches_per_s": rate}))
"""


def probe(root: str, count: int, scale: int, source: str, cache_dir: str, batches: int) -> dict:
  out = subprocess.run(
    [sys.executable, "-c", textwrap.dedent(_PROBE), root, str(count), str(scale), source]
    + [cache_dir, str(batches)],
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
  parser.add_argument("--batches", type=int, default=100, help="batches timed after the first")
  parser.add_argument("--cold_batches", type=int, default=5, help="the same for a cold cache")
  parser.add_argument("--files_batches", type=int, default=3, help="the same for 'files'")
  args = parser.parse_args(argv)
  rows = []
  for count in args.counts:
    cache_dir = tempfile.mkdtemp(prefix="cutblur_cache_")
    try:
      for name, source, batches in (
        ("memory", "memory", args.batches),
        ("disk, cold", "disk", args.cold_batches),
        ("disk, warm", "disk", args.batches),
        ("files", "files", args.files_batches),
      ):
        if name == "disk, warm":  # every pair on disk first, as after one epoch
          probe(args.dataset_root, count, args.scale, "disk", cache_dir, count)
        result = probe(args.dataset_root, count, args.scale, source, cache_dir, batches)
        row = {"source": name, "images": count, **result}
        rows.append(row)
        print(json.dumps(row), flush=True)
    finally:
      shutil.rmtree(cache_dir, ignore_errors=True)
  print(f"\n{platform.processor() or platform.machine()}; x{args.scale}, batch 16, LR patch 48\n")
  print(
    "| source | images | peak RSS MB | private MB at end | file-backed MB at end "
    "| start to first batch s | patches/s |"
  )
  print("|---|---|---|---|---|---|---|")
  for r in rows:
    print(
      f"| {r['source']} | {r['images']} | {r['peak_mb']:.0f} | {r['anon_mb']:.0f} | "
      f"{r['file_mb']:.0f} | {r['first_batch_s']:.1f} | {r['patches_per_s']:,.0f} |"
    )
  return rows


if __name__ == "__main__":
  main()
