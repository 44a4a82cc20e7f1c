r"""Train-step speed: JAX with MoA and without augmentation, on each XLA:CPU path, beside PyTorch.

For each preset (default: EDSR-baseline x4, batch 16, 48x48 LR patches, the reference's
setup for the small EDSR) every row runs in its own process (``workers.py``): JAX's
``cutblur_jax.train.train_step`` with MoA and with no augmentation, once on the fast
XLA:CPU path (``cutblur_jax.xla_cpu``) and once on XLA's default path, and PyTorch.
Rows are interleaved round by round so that background load hits all alike; each number
is the median over rounds.

* JAX: ``train.train_step`` (one jitted program: flips, nearest upsampling, the policy,
  the network, masked L1, Adam), state donated, batches already on the device.
* PyTorch: the network twin of ``tests/torch_networks.py`` (the official module layout) in
  ``solver.py``'s loop: nearest ``F.interpolate``, forward, ``L1Loss``, backward,
  ``Adam.step`` (no augmentation: the official augmentations run on the host in Python).
* Wall and CPU time (``time.process_time`` of the worker: all its threads) per step.
* FLOPs: XLA's cost analysis of the compiled step; achieved FLOP/s = FLOPs / step time;
  with ``--peak_tflops`` also the model FLOP utilisation.

  python benchmarks/train.py                       # EDSR-baseline, both paths and PyTorch
  python benchmarks/train.py --models EDSR-baseline CARN EDSR RCAN --big_batch 2 --big_patch 24
  python benchmarks/train.py --paths fast --no_torch --batch_size 64 --peak_tflops 989  # a GPU
  python benchmarks/train.py --paths fast --no_torch --dtypes float32 bfloat16  # side by side
  python benchmarks/train.py --paths fast --dtypes float32 bfloat16 --torch_compile  # a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys

from cutblur_jax import xla_cpu

xla_cpu.enable_fast_path()  # this process only orchestrates; each worker sets its own path

import workers  # pylint: disable=wrong-import-position  # benchmarks/workers.py

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIG = ("EDSR", "RCAN")  # presets timed at --big_batch / --big_patch


def _batch(batch_size: int, patch: int, scale: int):
  import numpy as np  # pylint: disable=import-outside-toplevel

  rng = np.random.default_rng(0)
  return {
    "hr": rng.integers(0, 256, (batch_size, patch * scale, patch * scale, 3), dtype=np.uint8),
    "lr": rng.integers(0, 256, (batch_size, patch, patch, 3), dtype=np.uint8),
  }


def setup_jax(*, model: str, scale: int, batch_size: int, patch: int, policy: str, dtype: str):
  """A worker's body: ``train.train_step`` on a fixed batch (see ``workers.Worker``)."""
  import jax  # pylint: disable=import-outside-toplevel
  import time  # pylint: disable=import-outside-toplevel
  from cutblur_jax import augment, models, sharding, train  # pylint: disable=import-outside-toplevel

  arch = models.model_arch(model, scale)
  policy = augment.moa() if policy == "moa" else augment.Policy(("none",), (1.0,), (1.0,))
  mesh = sharding.create_mesh()
  state = train.create_train_state(
    jax.random.key(0),
    arch,
    policy=policy,
    mesh=mesh,
    optimizer=train.OptimizerConfig(),
    dtype=dtype,
  )
  batch = jax.device_put(_batch(batch_size, patch, scale), sharding.batch_sharding(mesh))
  key = jax.random.key(1)
  start = time.perf_counter()
  compiled = train.train_step.lower(state, batch, key).compile()
  compile_s = time.perf_counter() - start
  holder = {"state": state}

  def step():
    holder["state"], metrics = train.train_step(holder["state"], batch, key)
    jax.block_until_ready(metrics)

  step()  # the first call also loads the executable
  device = jax.devices()[0]
  return {"step": step}, {
    "compile_s": compile_s,
    "flops": workers.flops_of(compiled),
    "device": f"{jax.device_count()} x {device.device_kind} ({device.platform})",
    "jax": jax.__version__,
    "path": workers.jax_path_in_effect(),
  }


def setup_torch(
  *, model: str, scale: int, batch_size: int, patch: int, dtype: str = "float32", compile=False
):
  """A worker's body: the PyTorch twin in ``solver.py``'s loop (eager, or ``torch.compile``d;
  ``bfloat16`` under ``torch.autocast``, parameters float32 as in JAX)."""
  import torch  # pylint: disable=import-outside-toplevel
  import torch.nn.functional as F  # pylint: disable=import-outside-toplevel
  from cutblur_jax import models  # pylint: disable=import-outside-toplevel

  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
  from torch_networks import build_twin  # pylint: disable=import-outside-toplevel

  torch.manual_seed(0)
  device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
  net = build_twin(models.model_arch(model, scale)).to(device)
  net.train()
  optim = torch.optim.Adam(
    [p for p in net.parameters() if p.requires_grad], 1e-4, betas=(0.9, 0.999), eps=1e-8
  )
  loss_fn = torch.nn.L1Loss()
  forward = torch.compile(net) if compile else net
  autocast_dtype = torch.bfloat16 if dtype == "bfloat16" else None
  batch = _batch(batch_size, patch, scale)
  hr, lr = (
    torch.from_numpy(batch[k]).permute(0, 3, 1, 2).float().contiguous().to(device)
    for k in ("hr", "lr")
  )

  def step():
    with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
      loss = loss_fn(forward(F.interpolate(lr, scale_factor=scale, mode="nearest")).float(), hr)
    optim.zero_grad()
    loss.backward()
    optim.step()
    loss.item()  # waits for the device

  step()  # torch.compile compiles here, untimed
  step()
  where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
  return {"step": step}, {
    "torch": f"{torch.__version__} on {where}, {torch.get_num_threads()} threads"
  }


LABELS = {
  ("fast", "moa"): "JAX, MoA, fast path",
  ("fast", "none"): "JAX, no augmentation, fast path",
  ("default", "moa"): "JAX, MoA, XLA default",
  ("default", "none"): "JAX, no augmentation, XLA default",
  ("torch", "none"): "PyTorch, no augmentation (same network and loop)",
  ("torch.compile", "none"): "PyTorch torch.compile, no augmentation",
}


def bench_model(args, model: str) -> dict:
  big = model in BIG
  batch_size = args.big_batch if big else args.batch_size
  patch = args.big_patch if big else args.patch_size
  shape = {"model": model, "scale": args.scale, "batch_size": batch_size, "patch": patch}
  rows = {}
  for dtype in args.dtypes:
    for path in args.paths:
      for policy in ("moa", "none"):
        rows[(path, policy, dtype)] = workers.Worker(
          setup_jax, path=path, policy=policy, dtype=dtype, **shape
        )
  if not args.no_torch:
    modes = ("torch", "torch.compile") if args.torch_compile else ("torch",)
    for mode in modes:
      for dtype in args.dtypes:
        try:
          rows[(mode, "none", dtype)] = workers.Worker(
            setup_torch, dtype=dtype, compile=mode == "torch.compile", **shape
          )
        except RuntimeError as error:  # e.g. torch.compile without a compiler
          print(f"{mode} {dtype} row skipped: {error}", file=sys.stderr)
  samples = {key: [] for key in rows}
  for _ in range(args.rounds):
    for key, worker in rows.items():
      times = worker.time("step", args.steps)
      samples[key].append(
        (sum(w for w, _ in times) / len(times), sum(c for _, c in times) / len(times))
      )
  for worker in rows.values():
    worker.close()

  results = {}
  for key, worker in rows.items():
    wall = statistics.median(w for w, _ in samples[key])
    cpu = statistics.median(c for _, c in samples[key])
    path, policy, dtype = key
    several = len(args.dtypes) > 1
    row = {
      "label": LABELS[(path, policy)] + (f", {dtype}" if several else ""),
      "what": LABELS[(path, policy)],
      "dtype": dtype,
      "step_s": wall,
      "cpu_s": cpu,
      "images_per_s": batch_size / wall,
      "samples": samples[key],
      **worker.info,
    }
    flops = row.get("flops") or next(
      (r.info.get("flops") for r in rows.values() if r.info.get("flops")), None
    )
    if flops:
      row["flops"] = flops
      row["tflops_per_s"] = flops / wall / 1e12
      if args.peak_tflops:
        row["mfu"] = row["tflops_per_s"] / args.peak_tflops
    # The first dtype's rows keep the keys of a one-dtype run ("fast/moa").
    first = dtype == args.dtypes[0]
    name = f"{path}/{policy}" if first else f"{path}/{policy}/{dtype}"
    results[name] = row
  return {"shape": shape, "dtypes": list(args.dtypes), "rows": results}


def _print_model(report: dict) -> None:
  shape, rows = report["shape"], report["rows"]
  lr, hr = shape["patch"], shape["patch"] * shape["scale"]
  print(
    f"\n{shape['model']} x{shape['scale']}, batch {shape['batch_size']}, LR {lr}x{lr} "
    f"(HR {hr}x{hr})"
  )
  base_key = "fast/none" if "fast/none" in rows else next(iter(rows))
  base = rows[base_key]["step_s"]
  print(
    f"\n| step | wall s/step | images/s | wall vs {rows[base_key]['label']} | CPU s/step "
    "| GFLOP/step (XLA) | achieved GFLOP/s |"
  )
  print("|---|---|---|---|---|---|---|")
  for row in rows.values():
    gflop = f"{row['flops'] / 1e9:.1f}" if row.get("flops") else "n/a"
    achieved = f"{row['tflops_per_s'] * 1e3:.1f}" if row.get("tflops_per_s") else "n/a"
    if row.get("mfu") is not None:
      achieved += f" (MFU {100 * row['mfu']:.1f}%)"
    print(
      f"| {row['label']} | {row['step_s']:.3f} | {row['images_per_s']:.2f} | "
      f"{row['step_s'] / base:.3f}x | {row['cpu_s']:.3f} | {gflop} | {achieved} |"
    )
  for path in ("fast", "default"):
    if f"{path}/moa" in rows:
      moa, none = rows[f"{path}/moa"], rows[f"{path}/none"]
      print(
        f"MoA overhead ({path}): {100 * (moa['step_s'] / none['step_s'] - 1):+.1f}% wall, "
        f"{100 * (moa['cpu_s'] / none['cpu_s'] - 1):+.1f}% CPU time"
      )
  for mode in ("torch", "torch.compile"):
    for suffix in ["", *(f"/{d}" for d in report.get("dtypes", [])[1:])]:
      for path in ("fast", "default"):
        ours, theirs = f"{path}/none{suffix}", f"{mode}/none{suffix}"
        if ours in rows and theirs in rows:
          print(
            f"{rows[theirs]['label']} / JAX {path}: "
            f"{rows[theirs]['step_s'] / rows[ours]['step_s']:.2f}x wall"
          )
  first = report.get("dtypes", ["float32"])[0]
  for dtype in report.get("dtypes", [])[1:]:
    for key in [k for k in rows if k.endswith(f"/{dtype}")]:
      base_row = rows[key.rsplit("/", 1)[0]]
      print(
        f"{dtype} / {first} ({base_row['what']}): "
        f"{rows[key]['step_s'] / base_row['step_s']:.2f}x wall"
      )
  if "fast/none" in rows and "default/none" in rows:
    print(
      f"Fast path speed-up: {rows['default/none']['step_s'] / rows['fast/none']['step_s']:.2f}x"
      " wall (no augmentation)"
    )


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--models", nargs="+", default=["EDSR-baseline"])
  parser.add_argument("--scale", type=int, default=4)
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--patch_size", type=int, default=48, help="LR patch side")
  parser.add_argument("--big_batch", type=int, default=16, help="batch of EDSR and RCAN")
  parser.add_argument("--big_patch", type=int, default=48, help="LR patch side of EDSR and RCAN")
  parser.add_argument(
    "--paths",
    nargs="+",
    default=list(workers.PATHS),
    choices=workers.PATHS,
    help="XLA:CPU paths to time JAX on (on GPU/TPU both are the same)",
  )
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument(
    "--dtypes",
    nargs="+",
    default=None,
    choices=("float32", "bfloat16"),
    help="time each compute dtype side by side, interleaved (default: --dtype)",
  )
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--steps", type=int, default=2, help="timed steps per round")
  parser.add_argument("--no_torch", action="store_true")
  parser.add_argument(
    "--torch_compile", action="store_true", help="also time PyTorch under torch.compile"
  )
  parser.add_argument(
    "--peak_tflops",
    type=float,
    default=None,
    help="the device's peak TFLOP/s, for model FLOP utilisation",
  )
  parser.add_argument("--json", default=None, help="also write the results here")
  args = parser.parse_args(argv)
  args.dtypes = args.dtypes or [args.dtype]

  reports = []
  for model in args.models:
    reports.append(bench_model(args, model))
    first = next(iter(reports[-1]["rows"].values()))
    if len(reports) == 1:
      torch_row = reports[-1]["rows"].get("torch/none", {})
      print(
        f"{first.get('device')}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical CPUs; jax {first.get('jax')}; JAX {', '.join(args.dtypes)}; "
        f"torch {torch_row.get('torch', 'not run')}; median of {args.rounds} rounds x "
        f"{args.steps} steps"
      )
    _print_model(reports[-1])
  output = {"args": vars(args), "reports": reports}
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(output, indent=2, default=str))
  return output


if __name__ == "__main__":
  main()
