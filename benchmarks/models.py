"""Forward and train-step time of EDSR, EDSR-baseline, RCAN and CARN: JAX on each XLA:CPU path beside PyTorch.

For each preset, on this machine, each row in its own process (``workers.py``):

* forward: one LR image of ``--forward_size``^2 pixels, upsampled by nearest neighbour,
  through the network (no gradient);
* train step: L1 loss + Adam (lr 1e-4) on a batch of ``--batch_size`` LR patches of
  ``--patch_size``^2 pixels and their HR targets, as ``solver.py`` trains (no
  augmentation, no flips: the network and the optimizer alone).

JAX runs jitted (params and optimizer state donated) on the fast XLA:CPU path
(``cutblur_jax.xla_cpu``) and on XLA's default path, after one compiling call whose time
is reported separately; PyTorch runs eagerly as the official code does (the twin of
``tests/torch_networks.py``, the official module tree), on the GPU when it has one, in
float32 (``--dtype`` applies to JAX only). The timed calls alternate between the rows and
each time is the best of ``--repeats``, so a load from other processes on a shared machine
hits every row alike; a ratio is the PyTorch time over the JAX time (above 1: JAX is faster).

Usage:
  python benchmarks/models.py                         # all presets, x4, batch 16, patch 48
  python benchmarks/models.py --models EDSR-baseline CARN
  python benchmarks/models.py --quick                 # batch 4, patch 24, forward 48
  python benchmarks/models.py --paths fast --dtype bfloat16   # e.g. on a GPU
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from cutblur_jax import xla_cpu

xla_cpu.enable_fast_path()  # this process only orchestrates; each worker sets its own path

import workers  # pylint: disable=wrong-import-position  # benchmarks/workers.py

ROOT = pathlib.Path(__file__).resolve().parent.parent
PRESETS = ("EDSR-baseline", "EDSR", "RCAN", "CARN")


def _inputs(scale: int, batch_size: int, patch: int, forward_size: int):
  import numpy as np  # pylint: disable=import-outside-toplevel

  rng = np.random.default_rng(0)
  return (
    rng.integers(0, 256, (1, forward_size, forward_size, 3), dtype=np.uint8),
    rng.integers(0, 256, (batch_size, patch, patch, 3), dtype=np.uint8),
    rng.integers(0, 256, (batch_size, patch * scale, patch * scale, 3), dtype=np.uint8),
  )


def setup_jax(
  *, model: str, scale: int, batch_size: int, patch: int, forward_size: int, dtype: str
):
  """A worker's bodies: the jitted forward and train step."""
  import time  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from cutblur_jax import image, models  # pylint: disable=import-outside-toplevel

  arch = models.model_arch(model, scale)
  net = models.create_model(arch, dtype=jnp.dtype(dtype))
  lr_fwd, lr, hr = (jnp.asarray(a) for a in _inputs(scale, batch_size, patch, forward_size))
  # Eager: RCAN's jitted initialisation takes minutes to compile (see cutblur_jax.training.state.initial_params).
  params = net.init(jax.random.key(0), jnp.zeros((1, 8 * scale, 8 * scale, 3)))["params"]
  optimizer = optax.adam(1e-4, b1=0.9, b2=0.999, eps=1e-8)

  @jax.jit
  def forward(params, lr):
    return net.apply({"params": params}, image.upsample_nearest(lr.astype(jnp.float32), scale))

  def step(params, opt_state, lr, hr):
    def loss_fn(params):
      sr = net.apply({"params": params}, image.upsample_nearest(lr.astype(jnp.float32), scale))
      return jnp.mean(jnp.abs(sr - hr.astype(jnp.float32)))

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  step = jax.jit(step, donate_argnums=(0, 1))
  state = {"params": jax.tree.map(jnp.copy, params)}
  state["opt"] = optimizer.init(state["params"])

  def run_forward():
    forward(params, lr_fwd).block_until_ready()

  def run_step():
    state["params"], state["opt"], loss = step(state["params"], state["opt"], lr, hr)
    loss.block_until_ready()

  compile_s = {}
  for name, body in (("forward", run_forward), ("step", run_step)):
    start = time.perf_counter()
    body()
    compile_s[name] = time.perf_counter() - start
  device = jax.devices()[0]
  return {"forward": run_forward, "step": run_step}, {
    "compile_s": compile_s,
    "params": models.official_param_count(arch),
    "device": f"{device.platform} ({device.device_kind})",
    "jax": jax.__version__,
    "path": workers.jax_path_in_effect(),
  }


def setup_torch(*, model: str, scale: int, batch_size: int, patch: int, forward_size: int):
  """A worker's bodies: the PyTorch twin, eager as the official solver."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  import torch.nn.functional as F  # pylint: disable=import-outside-toplevel
  from cutblur_jax import models  # pylint: disable=import-outside-toplevel

  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
  import torch_networks  # pylint: disable=import-outside-toplevel  # the test oracle

  device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
  net = torch_networks.build_twin(models.model_arch(model, scale)).to(device)

  def nchw(array):
    return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2))).float().to(device)

  def synchronize():  # CUDA runs asynchronously: wait, as block_until_ready does in JAX
    if device.type == "cuda":
      torch.cuda.synchronize()

  lr_fwd, lr, hr = (nchw(a) for a in _inputs(scale, batch_size, patch, forward_size))
  optim = torch.optim.Adam(
    [p for p in net.parameters() if p.requires_grad], 1e-4, betas=(0.9, 0.999), eps=1e-8
  )
  loss_fn = torch.nn.L1Loss()

  def forward():
    net.eval()
    with torch.no_grad():
      net(F.interpolate(lr_fwd, scale_factor=scale, mode="nearest"))
    synchronize()

  def step():
    net.train()
    loss = loss_fn(net(F.interpolate(lr, scale_factor=scale, mode="nearest")), hr)
    optim.zero_grad()
    loss.backward()
    optim.step()
    synchronize()

  forward()  # warm-up (allocator, thread pool)
  step()
  where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
  return {"forward": forward, "step": step}, {
    "torch": f"{torch.__version__} on {where}, {torch.get_num_threads()} threads, float32"
  }


def main(argv=None) -> list[dict]:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--models", nargs="+", default=list(PRESETS), choices=PRESETS)
  parser.add_argument("--scale", type=int, default=4)
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--patch_size", type=int, default=48, help="LR patch side (train)")
  parser.add_argument("--forward_size", type=int, default=96, help="LR image side (forward)")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--paths", nargs="+", default=list(workers.PATHS), choices=workers.PATHS)
  parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
  parser.add_argument("--no_torch", action="store_true", help="only time JAX")
  parser.add_argument("--quick", action="store_true", help="batch 4, patch 24, forward 48")
  parser.add_argument("--json", default=None, help="also write the results here")
  args = parser.parse_args(argv)
  if args.quick:
    args.batch_size, args.patch_size, args.forward_size = 4, 24, 48

  shape = {
    "scale": args.scale,
    "batch_size": args.batch_size,
    "patch": args.patch_size,
    "forward_size": args.forward_size,
  }
  print(
    f"x{args.scale}; forward: 1 x {args.forward_size}^2 LR; train: {args.batch_size} x "
    f"{args.patch_size}^2 LR; JAX {args.dtype}; best of {args.repeats}"
  )
  columns = [f"fwd jax {p}" for p in args.paths] + ([] if args.no_torch else ["fwd torch"])
  columns += [f"step jax {p}" for p in args.paths] + ([] if args.no_torch else ["step torch"])
  ratios = (
    [] if args.no_torch else [f"torch/jax {p} {b}" for b in ("fwd", "step") for p in args.paths]
  )
  print("\n| model | params | " + " | ".join(columns + ratios) + " | compile fwd/step (fast) |")
  print("|---" * (3 + len(columns) + len(ratios)) + "|")
  reports = []
  for model in args.models:
    rows = {
      path: workers.Worker(setup_jax, path=path, model=model, dtype=args.dtype, **shape)
      for path in args.paths
    }
    if not args.no_torch:
      rows["torch"] = workers.Worker(setup_torch, model=model, **shape)
    best = {(row, body): float("inf") for row in rows for body in ("forward", "step")}
    for _ in range(args.repeats):
      for body in ("forward", "step"):
        for row, worker in rows.items():
          best[(row, body)] = min(best[(row, body)], worker.time(body, 1)[0][0])
    info = {row: worker.info for row, worker in rows.items()}
    for worker in rows.values():
      worker.close()
    first = info[args.paths[0]]
    cells = [f"{best[(r, b)] * 1e3:.0f} ms" for b in ("forward", "step") for r in rows]
    if not args.no_torch:
      cells += [
        f"{best[('torch', b)] / best[(p, b)]:.2f}" for b in ("forward", "step") for p in args.paths
      ]
    print(
      f"| {model} | {first['params']:,} | "
      + " | ".join(cells)
      + f" | {first['compile_s']['forward']:.1f} s / {first['compile_s']['step']:.1f} s |",
      flush=True,
    )
    reports.append(
      {
        "model": model,
        **shape,
        "dtype": args.dtype,
        "info": info,
        "best_s": {f"{r}/{b}": t for (r, b), t in best.items()},
      }
    )
  if reports:
    print(
      f"\nJAX {reports[0]['info'][args.paths[0]]['jax']} on "
      f"{reports[0]['info'][args.paths[0]]['device']}; "
      + ("" if args.no_torch else f"torch {reports[0]['info']['torch']['torch']}")
    )
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(reports, indent=2))
  return reports


if __name__ == "__main__":
  main()
