"""Input pipeline throughput beside what one EDSR-baseline train step consumes.

Writes DIV2K-sized (2040x1356) PNGs in the DIV2K layout to a temporary folder,
then for each scale measures

* the one-off load: decoding every HR and LR image into the uint8 cache;
* the pipeline: random aligned patches per second (batch 16, LR patch 48) with
  0 and ``--workers`` threads, after a warm-up batch;
* the step: patches per second of a jitted L1 + Adam step of
  ``ModelConfig.preset("EDSR-baseline", scale)`` on batch 16 (the trainer's
  step when ``cutblur_jax.train`` provides one);

and prints the ratio pipeline / step (goal: at least 3).

Usage:
  python benchmarks/data.py                      # x2 and x4, 8 images
  python benchmarks/data.py --scales 4 --images 4 --steps 2   # quick check
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

import numpy as np
from PIL import Image

from cutblur_jax.data.folders import div2k_dataset
from cutblur_jax.data.pipeline import TrainPipeline, load_pairs

HEIGHT, WIDTH = 1356, 2040  # DIV2K's most common HR size.


def write_div2k(root: pathlib.Path, count: int, scales: list[int]) -> None:
  """Writes ``count`` textured HR images and their LR (block mean) in the DIV2K layout."""
  rng = np.random.default_rng(0)
  (root / "DIV2K_train_HR").mkdir(parents=True)
  yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
  for i in range(1, count + 1):
    # Smooth structure plus noise: PNG sizes and decode times close to photos'.
    base = (np.sin(xx / (40 + 7 * i))[..., None] * 60 + np.cos(yy / (25 + 5 * i))[..., None] * 60
            + np.array([120, 110, 100]))
    hr = np.clip(base + rng.normal(0, 12, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(hr).save(root / "DIV2K_train_HR" / f"{i:04d}.png", compress_level=6)
    for scale in scales:
      folder = root / "DIV2K_train_LR_bicubic" / f"X{scale}"
      folder.mkdir(parents=True, exist_ok=True)
      lr = hr.reshape(HEIGHT // scale, scale, WIDTH // scale, scale, 3).mean((1, 3))
      Image.fromarray(lr.round().astype(np.uint8)).save(folder / f"{i:04d}x{scale}.png")


def pipeline_rate(dataset, *, scale: int, workers: int, batches: int, batch_size: int,
                  patch_size: int, pairs) -> float:
  """Patches per second delivered by ``TrainPipeline`` over ``batches`` batches."""
  class Cached(list):
    pass

  cached = Cached(pairs)
  cached.scale = scale
  with TrainPipeline(cached, patch_size=patch_size, batch_size=batch_size, seed=0,
                     num_workers=workers, prefetch=max(2, workers)) as pipeline:
    next(pipeline)  # Warm-up: thread start, first permutation.
    start = time.perf_counter()
    for _ in range(batches):
      next(pipeline)
    elapsed = time.perf_counter() - start
  return batches * batch_size / elapsed


def step_rate(scale: int, *, steps: int, batch_size: int, patch_size: int) -> tuple[float, str]:
  """Patches per second of a jitted EDSR-baseline L1 + Adam step (CPU/GPU/TPU as JAX finds)."""
  import jax
  import jax.numpy as jnp
  import optax
  from cutblur_jax.image import upsample_nearest
  from cutblur_jax.models import ModelConfig, init_params

  config = ModelConfig.preset("EDSR-baseline", scale)
  model = config.build()
  params = init_params(config, jax.random.key(0), image_size=patch_size * scale)
  optimizer = optax.adam(1e-4)
  opt_state = optimizer.init(params)

  @jax.jit
  def step(params, opt_state, hr, lr):
    def loss_fn(params):
      inputs = upsample_nearest(lr.astype(jnp.float32), scale)
      return jnp.mean(jnp.abs(model.apply({"params": params}, inputs) - hr.astype(jnp.float32)))
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  rng = np.random.default_rng(0)
  hr_size = patch_size * scale
  hr = jnp.asarray(rng.integers(0, 256, (batch_size, hr_size, hr_size, 3), dtype=np.uint8))
  lr = jnp.asarray(rng.integers(0, 256, (batch_size, patch_size, patch_size, 3), dtype=np.uint8))
  params, opt_state, loss = step(params, opt_state, hr, lr)  # Compile.
  loss.block_until_ready()
  start = time.perf_counter()
  for _ in range(steps):
    params, opt_state, loss = step(params, opt_state, hr, lr)
  loss.block_until_ready()
  elapsed = time.perf_counter() - start
  return steps * batch_size / elapsed, jax.devices()[0].device_kind


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--images", type=int, default=8)
  parser.add_argument("--scales", type=int, nargs="+", default=[2, 4])
  parser.add_argument("--batches", type=int, default=200)
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--patch_size", type=int, default=48)
  parser.add_argument("--skip_step", action="store_true", help="only measure the pipeline")
  args = parser.parse_args()

  with tempfile.TemporaryDirectory() as tmp:
    root = pathlib.Path(tmp)
    start = time.perf_counter()
    write_div2k(root, args.images, args.scales)
    print(f"wrote {args.images} HR images {WIDTH}x{HEIGHT} (+LR x{args.scales}) "
          f"in {time.perf_counter() - start:.1f} s")
    rows = []
    for scale in args.scales:
      dataset = div2k_dataset(root, split="train", scale=scale,
                              div2k_range=f"1-{args.images}/1-1")
      start = time.perf_counter()
      pairs = load_pairs(dataset, num_workers=args.workers)
      load_s = time.perf_counter() - start
      rates = {w: pipeline_rate(dataset, scale=scale, workers=w, batches=args.batches,
                                batch_size=args.batch_size, patch_size=args.patch_size, pairs=pairs)
               for w in sorted({0, args.workers})}
      step, device = (float("nan"), "-") if args.skip_step else step_rate(
          scale, steps=args.steps, batch_size=args.batch_size, patch_size=args.patch_size)
      rows.append((scale, load_s / args.images, rates, step, device))

  print()
  print("| scale | decode+cache per image | pipeline patches/s (threads: rate) | "
        "EDSR-baseline step patches/s | pipeline / step |")
  print("|---|---|---|---|---|")
  for scale, load_per_image, rates, step, device in rows:
    best = max(rates.values())
    rate_text = ", ".join(f"{w}: {r:,.0f}" for w, r in rates.items())
    print(f"| x{scale} | {load_per_image * 1000:.0f} ms | {rate_text} | {step:,.1f} ({device}) | "
          f"{best / step:,.0f}x |")


if __name__ == "__main__":
  main()
