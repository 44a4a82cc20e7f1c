"""Forward and train-step time of EDSR, EDSR-baseline, RCAN and CARN: JAX beside PyTorch.

For each preset, the Flax network and its PyTorch twin (``tests/torch_twins.py``, the
official network's module tree) get the same weights, then on this machine:

* forward: one LR image of ``--forward_size``^2 pixels, upsampled by nearest neighbour,
  through the network (no gradient);
* train step: L1 loss + Adam (lr 1e-4) on a batch of ``--batch_size`` LR patches of
  ``--patch_size``^2 pixels and their HR targets, as ``solver.py`` trains.

JAX runs jitted (params and optimizer state donated), after one compiling call whose time
is reported separately (it includes that call's run); PyTorch runs eagerly as the official
code does, after one warm-up call, on the GPU when it has one (else the CPU), in float32
(``--dtype`` applies to JAX only). The timed calls alternate between the frameworks and
each time is the best of ``--repeats``, so a load from other processes on a shared machine
hits both alike; the ratio is torch time / JAX time (above 1: JAX is faster).

Usage:
  python benchmarks/models.py                         # all presets, x4, batch 16, patch 48
  python benchmarks/models.py --models EDSR-baseline CARN
  python benchmarks/models.py --models EDSR RCAN --batch_size 2 --forward_size 48
  python benchmarks/models.py --quick                 # batch 4, patch 24, forward 48
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cutblur_jax import convert, image, models

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
import torch_twins  # noqa: E402  pylint: disable=wrong-import-position


def timed(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def jax_runners(arch, params, lr_fwd, lr, hr, dtype):
  """Compiled (forward, step) closures and their compile times (first-call seconds)."""
  model = models.create_model(arch, dtype=dtype)
  scale = arch["scale"]

  @jax.jit
  def forward(params, lr):
    return model.apply({"params": params}, image.upsample_nearest(lr.astype(jnp.float32), scale))

  optimizer = optax.adam(1e-4, b1=0.9, b2=0.999, eps=1e-8)

  def step(params, opt_state, lr, hr):
    def loss_fn(params):
      sr = model.apply({"params": params}, image.upsample_nearest(lr.astype(jnp.float32), scale))
      return jnp.mean(jnp.abs(sr - hr.astype(jnp.float32)))
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  step = jax.jit(step, donate_argnums=(0, 1))
  lr_fwd, lr, hr = jnp.asarray(lr_fwd), jnp.asarray(lr), jnp.asarray(hr)
  params = jax.device_put(params)
  state = {"params": jax.tree.map(jnp.copy, params)}  # Donated below; keep `params`.
  state["opt"] = optimizer.init(state["params"])

  def run_forward():
    forward(params, lr_fwd).block_until_ready()

  def run_step():
    state["params"], state["opt"], loss = step(state["params"], state["opt"], lr, hr)
    loss.block_until_ready()

  return run_forward, run_step, timed(run_forward), timed(run_step)


def torch_device():
  import torch  # pylint: disable=import-outside-toplevel
  return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def torch_runners(net, lr_fwd, lr, hr, scale):
  """(forward, step) closures, eager as the official solver, after one warm-up call each."""
  import torch  # pylint: disable=import-outside-toplevel
  import torch.nn.functional as F  # pylint: disable=import-outside-toplevel

  device = torch_device()
  net.to(device)

  def nchw(array):
    return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2))).float().to(device)

  def synchronize():  # CUDA runs asynchronously: wait, as block_until_ready does in JAX.
    if device.type == "cuda":
      torch.cuda.synchronize()

  lr_fwd, lr, hr = nchw(lr_fwd), nchw(lr), nchw(hr)
  optim = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], 1e-4,
                           betas=(0.9, 0.999), eps=1e-8)
  loss_fn = torch.nn.L1Loss()

  def forward():
    net.eval()
    with torch.no_grad():
      net(F.interpolate(lr_fwd, scale_factor=scale, mode="nearest"))
    synchronize()

  def step():
    net.train()
    sr = net(F.interpolate(lr, scale_factor=scale, mode="nearest"))
    loss = loss_fn(sr, hr)
    optim.zero_grad()
    loss.backward()
    optim.step()
    synchronize()

  forward()  # Warm-up (allocator, thread pool).
  step()
  return forward, step


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--models", nargs="+", default=list(models.PRESETS),
                      choices=list(models.PRESETS))
  parser.add_argument("--scale", type=int, default=4)
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--patch_size", type=int, default=48, help="LR patch side (train)")
  parser.add_argument("--forward_size", type=int, default=96, help="LR image side (forward)")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
  parser.add_argument("--no_torch", action="store_true", help="only time JAX")
  parser.add_argument("--quick", action="store_true", help="batch 4, patch 24, forward 48")
  args = parser.parse_args(argv)
  if args.quick:
    args.batch_size, args.patch_size, args.forward_size = 4, 24, 48

  torch_info = "no torch"
  if not args.no_torch:
    import torch  # pylint: disable=import-outside-toplevel
    device = torch_device()
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"CPU ({torch.get_num_threads()} threads)")
    torch_info = f"torch {torch.__version__} on {where}, float32"
  device = jax.devices()[0]
  print(f"JAX {jax.__version__} on {device.platform} ({device.device_kind}), {torch_info}; "
        f"x{args.scale}, forward: 1 x {args.forward_size}^2 LR, train: {args.batch_size} x "
        f"{args.patch_size}^2 LR, JAX {args.dtype}, best of {args.repeats}")
  header = (f"{'model':<14}{'params':>11}{'fwd jax':>10}{'fwd torch':>11}{'ratio':>7}"
            f"{'step jax':>10}{'step torch':>12}{'ratio':>7}{'compile fwd/step':>18}")
  print(header)
  rng = np.random.default_rng(0)
  s = args.scale
  lr_fwd = rng.integers(0, 256, (1, args.forward_size, args.forward_size, 3), dtype=np.uint8)
  lr = rng.integers(0, 256, (args.batch_size, args.patch_size, args.patch_size, 3),
                    dtype=np.uint8)
  hr = rng.integers(0, 256, (args.batch_size, args.patch_size * s, args.patch_size * s, 3),
                    dtype=np.uint8)
  for name in args.models:
    arch = models.model_arch(name, s)
    net = torch_twins.build_twin(arch)
    params = convert.torch_to_flax(net.state_dict(), arch)  # The same weights in both.
    jax_fwd, jax_step, compile_fwd, compile_step = jax_runners(
        arch, params, lr_fwd, lr, hr, jnp.dtype(args.dtype))
    runs = {"jax_fwd": jax_fwd}
    if not args.no_torch:
      torch_fwd, torch_step = torch_runners(net, lr_fwd, lr, hr, s)
      runs["torch_fwd"] = torch_fwd
    runs["jax_step"] = jax_step
    if not args.no_torch:
      runs["torch_step"] = torch_step
    # Interleaved, best of --repeats: the machine may be shared, and a background load
    # then slows both frameworks alike instead of whichever ran during it.
    best = {key: float("inf") for key in runs}
    for _ in range(args.repeats):
      for key, run in runs.items():
        best[key] = min(best[key], timed(run))
    fj, sj = best["jax_fwd"], best["jax_step"]
    ft, st = best.get("torch_fwd", float("nan")), best.get("torch_step", float("nan"))
    print(f"{name:<14}{models.official_param_count(arch):>11,}{fj * 1e3:>8.0f}ms"
          f"{ft * 1e3:>9.0f}ms{ft / fj:>7.2f}{sj * 1e3:>8.0f}ms{st * 1e3:>10.0f}ms"
          f"{st / sj:>7.2f}{compile_fwd:>11.1f}s/{compile_step:.1f}s", flush=True)
    del net, params, runs


if __name__ == "__main__":
  main()
