"""Throughput of MoA ``apply_augment`` beside a plain copy of the same batch.

Usage:
  python benchmarks/augment.py                 # 16 x 192 x 192 x 3 float32, MoA + per-op table
  python benchmarks/augment.py --no-per-op --batch 64 --size 96

Every function is jitted and warmed up (compiled and run) before timing. A
round runs the function on ``--calls`` precomputed keys back to back and waits
for the last result (``block_until_ready``), as a training loop would; the
reported time per batch is the median (and the best) over ``--rounds`` rounds,
each round on the same keys (so the same sequence of MoA branches); the rows
take turns within each round so that load from other processes hits them
alike. Rows:

* ``copy hr, lr``: ``(hr * 1, lr * 1)`` jitted, the memory-bandwidth floor for
  reading and writing the pair (XLA cannot skip it: outputs need new buffers).
* ``copy hr, lr + ones mask``: the floor for ``apply_augment``'s outputs,
  which add the ``[N, H, W, 1]`` mask.
* ``MoA apply_augment``: ``moa()``, the op drawn per call.
* one row per op: a one-op policy through ``apply_augment`` (``--per-op``).
* ``MoA per-sample``: ``moa()`` with ``per_sample=True`` (``--per-sample``).

Columns: the median wall time per batch, batches/s from it, and its ratio to
``copy hr, lr``; the best round's wall time and ratio; the median process CPU
time (all threads) and its ratio. On a shared machine the CPU-time ratio is
the steadiest. Speed is reported here and in the README, never asserted in
tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time
from typing import Callable, Sequence

from cutblur_jax import xla_cpu  # pylint: disable=wrong-import-position

xla_cpu.enable_fast_path()  # before JAX starts: XLA reads XLA_FLAGS once

import jax
import jax.numpy as jnp

from cutblur_jax import augment  # pylint: disable=g-import-not-at-top,wrong-import-position


def time_rows(
  rows: Sequence[tuple[str, Callable[[jax.Array], object]]], keys: Sequence[jax.Array], rounds: int
) -> dict[str, tuple[list[float], list[float]]]:
  """Wall and process-CPU seconds per call of every row, ``rounds`` times, interleaved.

  Rows take turns within each round, so a burst of load from other processes
  hits all of them alike. CPU time (all of this process's threads) is less
  sensitive than wall time to other processes competing for the cores.
  """
  for _, fn in rows:  # compile and warm up
    for key in keys[:3]:
      jax.block_until_ready(fn(key))
  times = {name: ([], []) for name, _ in rows}
  for _ in range(rounds):
    for name, fn in rows:
      calls = keys if "per-sample" not in name else keys[: max(7, len(keys) // 10)]
      wall, cpu = time.perf_counter(), time.process_time()
      out = None
      for key in calls:
        out = fn(key)
      jax.block_until_ready(out)
      times[name][0].append((time.perf_counter() - wall) / len(calls))
      times[name][1].append((time.process_time() - cpu) / len(calls))
  return times


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--size", type=int, default=192, help="HR patch side")
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  parser.add_argument("--calls", type=int, default=140, help="calls per round")
  parser.add_argument("--rounds", type=int, default=7)
  parser.add_argument("--per-op", action=argparse.BooleanOptionalAction, default=True)
  parser.add_argument("--per-sample", action=argparse.BooleanOptionalAction, default=True)
  args = parser.parse_args(argv)

  shape = (args.batch, args.size, args.size, 3)
  dtype = jnp.dtype(args.dtype)
  hr = (jax.random.uniform(jax.random.key(1), shape) * 255).astype(dtype)
  lr = (jax.random.uniform(jax.random.key(2), shape) * 255).astype(dtype)
  keys = list(jax.random.split(jax.random.key(0), args.calls))
  apply = jax.jit(augment.apply_augment, static_argnames="policy")
  copy = jax.jit(lambda hr, lr: (hr * 1, lr * 1))
  copy_mask = jax.jit(lambda hr, lr: (hr * 1, lr * 1, jnp.ones(hr.shape[:3] + (1,), hr.dtype)))

  rows = [
    ("copy hr, lr", lambda key: copy(hr, lr)),
    ("copy hr, lr + ones mask", lambda key: copy_mask(hr, lr)),
    ("MoA apply_augment", lambda key: apply(key, hr, lr, policy=augment.moa())),
  ]
  if args.per_op:
    moa = augment.moa()
    for name, alpha in zip(moa.augs, moa.alphas):
      policy = augment.Policy([name], [1.0], [alpha])
      rows.append((f"  {name}", lambda key, p=policy: apply(key, hr, lr, policy=p)))
  if args.per_sample:
    policy = dataclasses.replace(augment.moa(), per_sample=True)
    rows.append(("MoA per-sample", lambda key: apply(key, hr, lr, policy=policy)))

  load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
  print(
    f"# {args.batch}x{args.size}x{args.size}x3 {args.dtype}, jax {jax.__version__}, "
    f"{jax.devices()[0].device_kind} ({platform.processor() or platform.machine()}, "
    f"{os.cpu_count()} CPUs, load {load:.1f}), {args.calls} calls x {args.rounds} rounds"
  )
  times = time_rows(rows, keys, args.rounds)
  print(
    f"| {'function':26s} | {'ms/batch':>8s} | {'batches/s':>9s} | {'x copy':>6s} "
    f"| {'best ms':>7s} | {'x copy':>6s} | {'CPU ms':>6s} | {'x copy':>6s} |"
  )
  print(
    f"|{'-' * 28}|{'-' * 9}:|{'-' * 10}:|{'-' * 7}:|{'-' * 8}:|{'-' * 7}:|{'-' * 7}:|{'-' * 7}:|"
  )
  wall0, cpu0 = times[rows[0][0]]
  base = statistics.median(wall0), min(wall0), statistics.median(cpu0)
  for name, _ in rows:
    wall, cpu = times[name]
    median, best, cpu_median = statistics.median(wall), min(wall), statistics.median(cpu)
    print(
      f"| {name:26s} | {median * 1e3:8.3f} | {1 / median:9.1f} | {median / base[0]:6.2f} "
      f"| {best * 1e3:7.3f} | {best / base[1]:6.2f} | {cpu_median * 1e3:6.3f} "
      f"| {cpu_median / base[2]:6.2f} |"
    )


if __name__ == "__main__":
  main()
