r"""Train-step speed: JAX with MoA vs without augmentation vs the same network and loop in PyTorch.

EDSR-baseline (16 blocks x 64 channels) x4, batch 16, 48x48 LR patches (192x192 HR), the
reference's training setup for the small EDSR. Measured in one process, interleaved
round by round (MoA, no augmentation, PyTorch, MoA, ...) so that background load hits
all three alike; each number is the median over rounds.

* JAX: ``cutblur_jax.train.train_step`` (one jitted program: flips, nearest upsampling,
  the augmentation policy, EDSR, masked L1, Adam), state donated, batches already on
  the device.
* PyTorch (in a child process, so that its thread pool and XLA's do not fight over the
  cores): the network twin of ``tests/torch_twins.py`` (the official module layout) in
  ``solver.py``'s loop: nearest ``F.interpolate``, forward, ``L1Loss``, backward,
  ``Adam.step`` (no augmentation: the official augmentations run on the host in Python).
* Wall and CPU time (``time.process_time`` of the process running the step: all its
  threads) per step; on a shared machine the CPU time is the steadier of the two.
* FLOPs: XLA's cost analysis of the compiled step; achieved FLOP/s = FLOPs / step time;
  with ``--peak_tflops`` also the model FLOP utilisation.

  python benchmarks/train.py                     # all three, prints a Markdown table
  python benchmarks/train.py --rounds 5 --steps 3 --json /tmp/train_bench.json
  python benchmarks/train.py --no_torch --batch_size 64 --peak_tflops 989   # e.g. a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from cutblur_jax import augment, models, sharding, train  # pylint: disable=wrong-import-position


def _flops(compiled) -> float | None:
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  if not analysis:
    return None
  return float(analysis.get("flops", 0.0)) or None


def _jax_runner(arch, policy, batch, optimizer):
  mesh = sharding.create_mesh()
  state = train.create_train_state(jax.random.key(0), arch, policy=policy, optimizer=optimizer,
                                   mesh=mesh)
  batch = jax.device_put(batch, sharding.batch_sharding(mesh))
  key = jax.random.key(1)
  start = time.perf_counter()
  compiled = train.train_step.lower(state, batch, key).compile()
  compile_s = time.perf_counter() - start
  holder = {"state": state}

  def run(steps: int) -> tuple[float, float]:
    state = holder["state"]
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
      state, metrics = train.train_step(state, batch, key)
    jax.block_until_ready((state, metrics))
    holder["state"] = state
    return (time.perf_counter() - start) / steps, (time.process_time() - start_cpu) / steps

  run(1)  # the first call also loads the executable
  return run, compile_s, _flops(compiled)


def _torch_worker(connection, arch, batch_np, lr) -> None:
  """Runs the PyTorch loop in its own process, on command: XLA's and PyTorch's thread pools
  sharing the cores in one process slow each other down far beyond either's own speed."""
  import torch  # pylint: disable=import-outside-toplevel
  import torch.nn.functional as F  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, str(ROOT / "tests"))
  from torch_twins import build_twin  # pylint: disable=import-outside-toplevel

  torch.manual_seed(0)
  net = build_twin(arch)
  net.train()
  optim = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr,
                           betas=(0.9, 0.999), eps=1e-8)
  loss_fn = torch.nn.L1Loss()
  hr = torch.from_numpy(batch_np["hr"]).permute(0, 3, 1, 2).float().contiguous()
  lr_images = torch.from_numpy(batch_np["lr"]).permute(0, 3, 1, 2).float().contiguous()
  scale = hr.shape[2] // lr_images.shape[2]

  def run(steps: int) -> tuple[float, float]:
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
      inputs = F.interpolate(lr_images, scale_factor=scale, mode="nearest")
      loss = loss_fn(net(inputs), hr)
      optim.zero_grad()
      loss.backward()
      optim.step()
    loss.item()
    return (time.perf_counter() - start) / steps, (time.process_time() - start_cpu) / steps

  run(1)
  connection.send(("ready", torch.get_num_threads(), torch.__version__))
  while True:
    steps = connection.recv()
    if steps is None:
      return
    connection.send(run(steps))


def _torch_runner(arch, batch_np, lr):
  import multiprocessing  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel,unused-import  # ImportError if absent

  context = multiprocessing.get_context("spawn")
  parent, child = context.Pipe()
  process = context.Process(target=_torch_worker, args=(child, dict(arch), batch_np, lr),
                            daemon=True)
  process.start()
  _, threads, version = parent.recv()

  def run(steps: int) -> tuple[float, float]:
    parent.send(steps)
    return parent.recv()

  def close() -> None:
    parent.send(None)
    process.join(timeout=30)

  return run, close, f"{version}, {threads} threads, own process"


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--model", default="EDSR-baseline")
  parser.add_argument("--scale", type=int, default=4)
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--patch_size", type=int, default=48, help="LR patch side")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--steps", type=int, default=2, help="timed steps per round")
  parser.add_argument("--no_torch", action="store_true")
  parser.add_argument("--peak_tflops", type=float, default=None,
                      help="the device's peak TFLOP/s, for model FLOP utilisation")
  parser.add_argument("--json", default=None, help="also write the results here")
  args = parser.parse_args(argv)

  arch = models.model_arch(args.model, args.scale)
  rng = np.random.default_rng(0)
  lr_side, hr_side = args.patch_size, args.patch_size * args.scale
  batch = {"hr": rng.integers(0, 256, (args.batch_size, hr_side, hr_side, 3), dtype=np.uint8),
           "lr": rng.integers(0, 256, (args.batch_size, lr_side, lr_side, 3), dtype=np.uint8)}
  optimizer = train.OptimizerConfig()
  none = augment.Policy(("none",), (1.0,), (1.0,))
  runners = {}
  info = {}
  for name, policy in (("jax_moa", augment.moa()), ("jax_none", none)):
    run, compile_s, flops = _jax_runner(arch, policy, batch, optimizer)
    runners[name] = run
    info[name] = {"compile_s": compile_s, "flops": flops}
  torch_threads, close_torch = None, None
  if not args.no_torch:
    try:
      runners["torch_none"], close_torch, torch_threads = _torch_runner(
          arch, batch, optimizer.learning_rate)
    except ImportError as error:
      print(f"PyTorch row skipped: {error}", file=sys.stderr)

  times = {name: [] for name in runners}
  for _ in range(args.rounds):
    for name, run in runners.items():
      times[name].append(run(args.steps))
  if close_torch is not None:
    close_torch()
  results = {}
  for name, samples in times.items():
    step_s = statistics.median(wall for wall, _ in samples)
    cpu_s = statistics.median(cpu for _, cpu in samples)
    row = {"step_s": step_s, "cpu_s": cpu_s, "images_per_s": args.batch_size / step_s,
           "samples_s": [wall for wall, _ in samples], "samples_cpu_s": [cpu for _, cpu in samples]}
    flops = info.get(name, {}).get("flops") or info["jax_none"]["flops"]
    if flops:
      row["flops"] = flops
      row["tflops_per_s"] = flops / step_s / 1e12
      if args.peak_tflops:
        row["mfu"] = row["tflops_per_s"] / args.peak_tflops
    row.update({k: v for k, v in info.get(name, {}).items() if k == "compile_s"})
    results[name] = row

  device = jax.devices()[0]
  header = {
      "device": f"{jax.device_count()} x {device.device_kind} ({device.platform})",
      "host": f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs",
      "jax": jax.__version__, "torch": torch_threads,
      "setup": f"{args.model} x{args.scale}, batch {args.batch_size}, LR {lr_side}x{lr_side} "
               f"(HR {hr_side}x{hr_side}), median of {args.rounds} rounds x {args.steps} steps",
  }
  print(f"\n{header['setup']}; {header['device']}; {header['host']}; jax {header['jax']}"
        + (f"; torch {torch_threads}" if torch_threads else ""))
  print("\n| step | wall s/step | images/s | wall vs JAX no-aug | CPU s/step | CPU vs JAX no-aug "
        "| XLA GFLOP/step | achieved GFLOP/s |")
  print("|---|---|---|---|---|---|---|---|")
  labels = {"jax_moa": "JAX, MoA (all 7 augmentations)", "jax_none": "JAX, no augmentation",
            "torch_none": "PyTorch, no augmentation (same network and loop)"}
  base, base_cpu = results["jax_none"]["step_s"], results["jax_none"]["cpu_s"]
  for name, row in results.items():
    gflop = f"{row['flops'] / 1e9:.1f}" if row.get("flops") else "n/a"
    achieved = f"{row['tflops_per_s'] * 1e3:.1f}" if row.get("tflops_per_s") else "n/a"
    if row.get("mfu") is not None:
      achieved += f" (MFU {100 * row['mfu']:.1f}%)"
    if name == "torch_none":
      gflop += " (XLA's count)"
    print(f"| {labels[name]} | {row['step_s']:.3f} | {row['images_per_s']:.2f} | "
          f"{row['step_s'] / base:.3f}x | {row['cpu_s']:.3f} | {row['cpu_s'] / base_cpu:.3f}x | "
          f"{gflop} | {achieved} |")
  moa_overhead = results["jax_moa"]["step_s"] / base - 1
  moa_cpu_overhead = results["jax_moa"]["cpu_s"] / base_cpu - 1
  print(f"\nMoA overhead: {100 * moa_overhead:+.1f}% wall, {100 * moa_cpu_overhead:+.1f}% CPU time "
        "of the no-augmentation step.")
  if "torch_none" in results:
    print(f"PyTorch / JAX (no augmentation): {results['torch_none']['step_s'] / base:.2f}x wall, "
          f"{results['torch_none']['cpu_s'] / base_cpu:.2f}x CPU time.")
  print(f"Compile: MoA step {info['jax_moa']['compile_s']:.1f} s, no-aug step "
        f"{info['jax_none']['compile_s']:.1f} s.")
  output = {"header": header, "results": results, "moa_overhead": moa_overhead,
            "moa_cpu_overhead": moa_cpu_overhead}
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(output, indent=2))
  return output


if __name__ == "__main__":
  main()
