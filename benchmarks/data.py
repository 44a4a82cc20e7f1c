"""Input pipeline throughput by source and worker count, beside the step it feeds.

Reads a DIV2K-layout folder (``--dataset_root``: ``benchmarks/make_div2k.py``'s synthetic 2K
photos, or real DIV2K), or writes ``--images`` synthetic ones to a temporary folder, then for
each scale measures, on whatever JAX finds (CPU here):

* load: decoding every HR and LR image into memory (the ``memory`` source's start-up);
* pipeline: patches per second (batch 16, LR patch 48) after a warm-up, for
  - ``memory`` with 0 and each ``--workers`` count of reader threads,
  - ``disk`` (``DecodedCache``, warm: every pair decoded once before) with the same threads,
  - ``disk`` with each ``--processes`` count of grain worker processes (one thread each),
  - ``files`` (every sample decodes its PNG pair);
* per-batch cost: the milliseconds one batch takes in one thread (the 0-thread rows), from
  which the batches per second one host can build with all its cores follow;
* step: patches per second of a jitted L1 + Adam step of EDSR-baseline
  (``create_model(model_arch("EDSR", s, num_blocks=16, num_channels=64, res_scale=1.0))``) on
  a fixed device batch of 16, and the same step fed by the disk pipeline through
  ``prefetch_to_device`` (fixed and fed steps alternate; medians are reported).

Usage:
  python benchmarks/data.py                          # x4, 6 images written to /tmp
  python benchmarks/data.py --dataset_root /tmp/div2k_synth --images 200 --workers 1 2 4 \\
      --processes 1 2 4
  python benchmarks/data.py --skip_step               # pipeline only
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import tempfile
import time

from cutblur_jax import xla_cpu  # pylint: disable=wrong-import-position

xla_cpu.enable_fast_path()  # before JAX starts: XLA reads XLA_FLAGS once

import numpy as np

from cutblur_jax.data.folders import div2k_dataset
from cutblur_jax.data.pipeline import TrainPipeline
from cutblur_jax.data.prefetch import prefetch_to_device
from make_div2k import HEIGHT, WIDTH, write_div2k  # pylint: disable=wrong-import-order


def pipeline_rate(dataset, *, batches: int, batch_size: int, patch_size: int, **options) -> float:
  """Patches per second ``TrainPipeline(dataset, **options)`` delivers over ``batches``."""
  with TrainPipeline(
    dataset, patch_size=patch_size, batch_size=batch_size, seed=0, **options
  ) as pipeline:
    next(pipeline)  # Warm-up: thread or process start, first permutation.
    start = time.perf_counter()
    for _ in range(batches):
      next(pipeline)
    elapsed = time.perf_counter() - start
  return batches * batch_size / elapsed


def make_step(scale: int, patch_size: int):
  """A jitted EDSR-baseline L1 + Adam step and its initial state."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel

  from cutblur_jax.image import upsample_nearest  # pylint: disable=import-outside-toplevel
  from cutblur_jax.models import create_model, model_arch  # pylint: disable=import-outside-toplevel

  model = create_model(model_arch("EDSR", scale, num_blocks=16, num_channels=64, res_scale=1.0))
  hr_size = patch_size * scale
  params = model.init(jax.random.key(0), jnp.zeros((1, hr_size, hr_size, 3)))["params"]
  optimizer = optax.adam(1e-4)

  @jax.jit
  def step(params, opt_state, batch):
    hr = batch["hr"].astype(jnp.float32)
    inputs = upsample_nearest(batch["lr"].astype(jnp.float32), scale)

    def loss_fn(params):
      return jnp.mean(jnp.abs(model.apply({"params": params}, inputs) - hr))

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  return step, (params, optimizer.init(params))


def step_rates(
  scale: int, dataset, *, steps: int, batch_size: int, patch_size: int, **options
) -> tuple[float, float, str]:
  """(patches/s on a fixed batch, patches/s fed by the pipeline, device kind)."""
  import jax  # pylint: disable=import-outside-toplevel

  step, (params, opt_state) = make_step(scale, patch_size)
  # Auto axes: jax.make_mesh defaults to Explicit ones, under which the models'
  # space-to-depth reshape of a batch-sharded input needs an out_sharding.
  mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  with TrainPipeline(
    dataset, patch_size=patch_size, batch_size=batch_size, seed=0, **options
  ) as pipeline:
    batches = prefetch_to_device(pipeline, sharding, size=2)
    fixed = next(batches)
    params, opt_state, loss = step(params, opt_state, fixed)  # Compile.
    loss.block_until_ready()

    # Fixed and fed steps alternate, each timed to completion, and the medians are
    # compared: other processes sharing the machine then slow both alike.
    fixed_times, fed_times = [], []
    for _ in range(steps):
      for times, batch in ((fixed_times, fixed), (fed_times, None)):
        start = time.perf_counter()
        batch = next(batches) if batch is None else batch
        params, opt_state, loss = step(params, opt_state, batch)
        loss.block_until_ready()
        times.append(time.perf_counter() - start)
    fixed_rate = batch_size / float(np.median(fixed_times))
    fed_rate = batch_size / float(np.median(fed_times))
  return fixed_rate, fed_rate, jax.devices()[0].device_kind


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--images", type=int, default=6, help="the first N images are used")
  parser.add_argument(
    "--dataset_root",
    type=pathlib.Path,
    default=None,
    help="a DIV2K-layout folder to read (e.g. benchmarks/make_div2k.py's, or real DIV2K) "
    "instead of writing --images synthetic ones to a temporary folder",
  )
  parser.add_argument("--cache_dir", type=pathlib.Path, default=None, help="the disk cache")
  parser.add_argument("--scales", type=int, nargs="+", default=[4])
  parser.add_argument("--batches", type=int, default=300)
  parser.add_argument("--uncached_batches", type=int, default=3)
  parser.add_argument("--workers", type=int, nargs="+", default=[2], help="thread counts")
  parser.add_argument("--processes", type=int, nargs="+", default=[], help="worker processes")
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--patch_size", type=int, default=48)
  parser.add_argument("--accelerators", type=int, default=8, help="for the feeding estimate")
  parser.add_argument("--skip_step", action="store_true", help="only measure the pipeline")
  args = parser.parse_args()
  sizes = dict(batch_size=args.batch_size, patch_size=args.patch_size)

  with tempfile.TemporaryDirectory() as tmp:
    root = args.dataset_root or pathlib.Path(tmp) / "data"
    cache_dir = args.cache_dir or pathlib.Path(tmp) / "cache"
    if args.dataset_root is None:
      start = time.perf_counter()
      write_div2k(root, args.images, args.scales)
      print(f"wrote {args.images} HR images {WIDTH}x{HEIGHT} (+LR x{args.scales})", flush=True)
    for scale in args.scales:
      dataset = div2k_dataset(root, split="train", scale=scale, div2k_range=f"1-{args.images}/1-1")
      disk = dict(source="disk", cache_dir=cache_dir)
      start = time.perf_counter()
      TrainPipeline(dataset, source="memory", num_workers=2, **sizes)
      load_s = time.perf_counter() - start
      start = time.perf_counter()
      cache = TrainPipeline(dataset, num_workers=2, **disk, **sizes)._source._pairs
      for index in range(len(dataset)):  # warm: every pair decoded once, as after one epoch
        cache[index]
      fill_s = time.perf_counter() - start
      print(f"x{scale}: decode into memory {load_s:.1f} s, fill the disk cache {fill_s:.1f} s")
      rows = []
      for source, options in (("memory", dict(source="memory")), ("disk", disk)):
        if source == "memory":
          memory_set = [dataset[i] for i in range(len(dataset))]  # decoded once for every row
          memory_set = _Decoded(memory_set, scale)
        data = memory_set if source == "memory" else dataset
        for threads in sorted({0, *args.workers}):
          rate = pipeline_rate(
            data,
            batches=args.batches,
            num_workers=threads,
            prefetch=max(2, threads),
            **options,
            **sizes,
          )
          rows.append((source, f"{threads} threads", rate))
          print(rows[-1], flush=True)
      for processes in args.processes:
        rate = pipeline_rate(
          dataset, batches=args.batches, num_workers=1, worker_processes=processes, **disk, **sizes
        )
        rows.append(("disk", f"{processes} processes x 1 thread", rate))
        print(rows[-1], flush=True)
      # In the calling thread: with threads, the warm-up batch would leave the next ones built.
      files = pipeline_rate(
        dataset, batches=args.uncached_batches, num_workers=0, source="files", **sizes
      )
      rows.append(("files", "0 threads", files))
      # One batch's cost in one core: the rows built in the calling thread (0 threads).
      costs = {
        source: 1000 * args.batch_size / rate
        for source, readers, rate in rows
        if readers == "0 threads"
      }
      if args.skip_step:
        fixed, fed, device = float("nan"), float("nan"), "-"
      else:
        fixed, fed, device = step_rates(
          scale, dataset, steps=args.steps, num_workers=2, prefetch=2, **disk, **sizes
        )
        print(f"x{scale}: step {fixed:.2f} patches/s, fed {fed:.2f} patches/s ({device})")
      _report(args, scale, rows, costs, fixed, fed, device)


class _Decoded(list):
  """Decoded pairs with the data set's ``scale``, so each memory row skips decoding."""

  def __init__(self, pairs, scale):
    super().__init__(pairs)
    self.scale = scale


def _report(args, scale, rows, costs, fixed, fed, device) -> None:
  cores = os.cpu_count() or 1
  print(
    f"\n{platform.processor() or platform.machine()}, {cores} cores; x{scale}, batch "
    f"{args.batch_size}, LR patch {args.patch_size}, {args.images} images {WIDTH}x{HEIGHT}\n"
  )
  print("| source | readers | patches/s | batches/s |")
  print("|---|---|---|---|")
  for source, readers, rate in rows:
    print(f"| {source} | {readers} | {rate:,.0f} | {rate / args.batch_size:,.1f} |")
  print()
  for source, ms in costs.items():
    per_core = 1000 / ms
    print(
      f"{source}: {ms:.2f} ms per batch in one thread: {per_core:,.0f} batches/s per core, "
      f"at most {per_core * cores:,.0f} on all {cores} cores"
    )
  if not np.isnan(fixed):
    step_batches = fixed / args.batch_size
    print(
      f"EDSR-baseline x{scale} step on {device}: {fixed:.2f} patches/s ({step_batches:.3f} "
      f"batches/s); fed by the disk pipeline: {fed:.2f} patches/s"
    )
    print(
      f"{args.accelerators} such devices need {args.accelerators * step_batches:,.2f} batches/s"
    )


if __name__ == "__main__":
  main()
