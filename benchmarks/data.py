"""Input pipeline throughput beside what one EDSR-baseline train step consumes.

Writes DIV2K-sized (2040x1356) PNGs in the DIV2K layout to a temporary folder,
then for each scale measures, on whatever JAX finds (CPU here):

* load: decoding every HR and LR image into the pipeline's uint8 cache;
* pipeline: random aligned patches per second (batch 16, LR patch 48) with 0, 1
  and ``--workers`` threads, after a warm-up batch, and without the cache
  (``cache=False``: every sample decodes its PNG pair);
* step: patches per second of a jitted L1 + Adam forward/backward step of
  EDSR-baseline (``create_model(model_arch("EDSR", s, num_blocks=16,
  num_channels=64, res_scale=1.0))``) on a fixed device batch of 16;
* fed step: the same step fed by the pipeline through ``prefetch_to_device``,
  which shows whether the pipeline stalls the step when both share the machine
  (fixed and fed steps alternate; medians are reported);

and prints a Markdown table with the ratio pipeline / step (goal: at least 3).

Usage:
  python benchmarks/data.py                          # x4, 6 images
  python benchmarks/data.py --scales 2 4 --steps 5
  python benchmarks/data.py --skip_step               # pipeline only
  python benchmarks/data.py --dataset_root /data/DIV2K --images 100   # any DIV2K-layout folder
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

from cutblur_jax import xla_cpu  # pylint: disable=wrong-import-position

xla_cpu.enable_fast_path()  # before JAX starts: XLA reads XLA_FLAGS once

import numpy as np

from cutblur_jax.data.folders import div2k_dataset
from cutblur_jax.data.pipeline import TrainPipeline
from cutblur_jax.data.prefetch import load_pairs, prefetch_to_device
from make_div2k import HEIGHT, WIDTH, write_div2k  # pylint: disable=wrong-import-order


class _Cached(list):
  """Decoded pairs with the data set's ``scale``, so each rate run skips decoding."""

  def __init__(self, pairs, scale):
    super().__init__(pairs)
    self.scale = scale


def pipeline_rate(
  dataset, *, workers: int, batches: int, batch_size: int, patch_size: int, cache: bool = True
) -> float:
  """Patches per second ``TrainPipeline`` delivers over ``batches`` batches."""
  with TrainPipeline(
    dataset,
    patch_size=patch_size,
    batch_size=batch_size,
    seed=0,
    num_workers=workers,
    prefetch=max(2, workers),
    cache=cache,
  ) as pipeline:
    next(pipeline)  # Warm-up: thread start, first permutation.
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
  scale: int, dataset, *, steps: int, batch_size: int, patch_size: int, workers: int
) -> tuple[float, float, str]:
  """(patches/s on a fixed batch, patches/s fed by the pipeline, device kind)."""
  import jax  # pylint: disable=import-outside-toplevel

  step, (params, opt_state) = make_step(scale, patch_size)
  # Auto axes: jax.make_mesh defaults to Explicit ones, under which the models'
  # space-to-depth reshape of a batch-sharded input needs an out_sharding.
  mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  with TrainPipeline(
    dataset,
    patch_size=patch_size,
    batch_size=batch_size,
    seed=0,
    num_workers=workers,
    prefetch=max(2, workers),
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
  parser.add_argument("--scales", type=int, nargs="+", default=[4])
  parser.add_argument("--batches", type=int, default=300)
  parser.add_argument("--uncached_batches", type=int, default=3)
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--patch_size", type=int, default=48)
  parser.add_argument("--skip_step", action="store_true", help="only measure the pipeline")
  args = parser.parse_args()

  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    root = args.dataset_root or pathlib.Path(tmp)
    if args.dataset_root is None:
      start = time.perf_counter()
      write_div2k(root, args.images, args.scales)
      print(
        f"wrote {args.images} HR images {WIDTH}x{HEIGHT} (+LR x{args.scales}) "
        f"in {time.perf_counter() - start:.1f} s"
      )
    for scale in args.scales:
      dataset = div2k_dataset(root, split="train", scale=scale, div2k_range=f"1-{args.images}/1-1")
      start = time.perf_counter()
      pairs = _Cached(load_pairs(dataset, num_workers=args.workers), scale)
      load_s = time.perf_counter() - start
      rates = {
        w: pipeline_rate(
          pairs,
          workers=w,
          batches=args.batches,
          batch_size=args.batch_size,
          patch_size=args.patch_size,
        )
        for w in sorted({0, 1, args.workers})
      }
      uncached = pipeline_rate(
        dataset,
        workers=args.workers,
        batches=args.uncached_batches,
        batch_size=args.batch_size,
        patch_size=args.patch_size,
        cache=False,
      )
      print(f"x{scale}: load {load_s:.2f} s, pipeline {rates}, uncached {uncached:.1f}")
      if args.skip_step:
        fixed, fed, device = float("nan"), float("nan"), "-"
      else:
        fixed, fed, device = step_rates(
          scale,
          pairs,
          steps=args.steps,
          batch_size=args.batch_size,
          patch_size=args.patch_size,
          workers=args.workers,
        )
        print(f"x{scale}: step {fixed:.2f} patches/s, fed {fed:.2f} patches/s ({device})")
      rows.append((scale, load_s / args.images, rates, uncached, fixed, fed, device))

  print()
  print(
    f"batch {args.batch_size}, LR patch {args.patch_size}, {args.images} images {WIDTH}x{HEIGHT}"
  )
  print()
  print(
    "| scale | decode into cache, per image | pipeline patches/s by threads (cached) | "
    "uncached | EDSR-baseline step patches/s (device) | step fed by pipeline | "
    "pipeline / step |"
  )
  print("|---|---|---|---|---|---|---|")
  for scale, per_image, rates, uncached, fixed, fed, device in rows:
    best = max(rates.values())
    rate_text = ", ".join(f"{w}: {r:,.0f}" for w, r in rates.items())
    print(
      f"| x{scale} | {per_image * 1000:.0f} ms | {rate_text} | {uncached:,.1f} | "
      f"{fixed:,.2f} ({device}) | {fed:,.2f} | {best / fixed:,.0f}x |"
    )


if __name__ == "__main__":
  main()
