r"""XLA:CPU flag sets side by side: a 3x3 convolution and the EDSR-baseline train step.

How ``cutblur_jax.xla_cpu.FAST_FLAGS`` was chosen. Each flag set runs in its own process
(XLA reads ``XLA_FLAGS`` once per process), the rows interleaved round by round; each
number is the median over rounds, and the ratio is the default row's time over the row's
(above 1: faster than XLA's defaults).

* conv: one 3x3 convolution, 64 to 64 channels on 16x48x48, forward and backward (jitted).
* step: ``cutblur_jax.train.train_step``, EDSR-baseline x4, no augmentation, batch
  ``--batch_size`` of 48x48 LR patches.

  python benchmarks/xla_flags.py                   # every candidate below
  python benchmarks/xla_flags.py --rounds 5 --only default fast
"""

from __future__ import annotations

import argparse
import statistics

import workers  # benchmarks/workers.py

YNN = "--xla_cpu_experimental_ynn_fusion_type"
CANDIDATES = {
  "default": "",
  "fast": f"{YNN}=dot",  # = cutblur_jax.xla_cpu.FAST_FLAGS
  "ynn dot,eltwise,reduce": f"{YNN}=dot,eltwise,reduce",
  "ynn dot,eltwise": f"{YNN}=dot,eltwise",
  "xnn dot,eltwise,reduce": "--xla_cpu_experimental_xnn_fusion_type=dot,eltwise,reduce",
  "onednn dot,eltwise,reduce": "--xla_cpu_experimental_onednn_fusion_type=dot,eltwise,reduce",
  "use_onednn": "--xla_cpu_use_onednn=true",
  "fast + xnn graph greedy": f"{YNN}=dot "
  "--xla_cpu_experimental_xnn_graph_fusion_mode="
  "XNN_GRAPH_FUSION_MODE_GREEDY",
  "fast + FAST_RUNTIME preset": f"{YNN}=dot --xla_cpu_opt_preset=CPU_OPT_PRESET_FAST_RUNTIME",
  "fast + single-threaded Eigen": f"{YNN}=dot --xla_cpu_multi_thread_eigen=false",
  "fast + 2 CPU devices (1 core each)": f"{YNN}=dot --xla_force_host_platform_device_count=2",
}


def setup(*, batch_size: int, with_step: bool):
  """A worker's bodies: the convolution and (optionally) the train step."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from cutblur_jax import models, sharding, train  # pylint: disable=import-outside-toplevel

  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(16, 48, 48, 64)).astype(np.float32))
  w = jnp.asarray(rng.normal(size=(3, 3, 64, 64)).astype(np.float32) * 0.05)

  def conv_loss(w, x):
    y = jax.lax.conv_general_dilated(
      x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return jnp.mean(jnp.abs(y))

  grad = jax.jit(jax.value_and_grad(conv_loss, argnums=(0, 1)))
  bodies = {"conv": lambda: jax.block_until_ready(grad(w, x))}
  bodies["conv"]()
  if with_step:
    mesh = sharding.create_mesh()
    state = {
      "state": train.create_train_state(
        jax.random.key(0), models.model_arch("EDSR-baseline", 4), mesh=mesh
      )
    }
    batch = jax.device_put(
      {
        "hr": rng.integers(0, 256, (batch_size, 192, 192, 3), dtype=np.uint8),
        "lr": rng.integers(0, 256, (batch_size, 48, 48, 3), dtype=np.uint8),
      },
      sharding.batch_sharding(mesh),
    )
    key = jax.random.key(1)

    def step():
      state["state"], metrics = train.train_step(state["state"], batch, key)
      jax.block_until_ready(metrics)

    step()
    bodies["step"] = step
  return bodies, {"devices": jax.device_count()}


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--only", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--no_step", action="store_true", help="time the convolution only")
  args = parser.parse_args(argv)
  names = ["default"] + [n for n in args.only if n != "default"]
  rows = {
    name: workers.Worker(
      setup,
      environment={"XLA_FLAGS": CANDIDATES[name], "CUTBLUR_JAX_FAST_CPU": "0"},
      batch_size=args.batch_size,
      with_step=not args.no_step,
    )
    for name in names
  }
  bodies = ["conv"] + ([] if args.no_step else ["step"])
  samples = {(name, body): [] for name in names for body in bodies}
  for _ in range(args.rounds):
    for body in bodies:
      for name, worker in rows.items():
        repeats = 10 if body == "conv" else 1
        samples[(name, body)].append(statistics.median(w for w, _ in worker.time(body, repeats)))
  for worker in rows.values():
    worker.close()
  median = {key: statistics.median(values) for key, values in samples.items()}
  print(f"\nmedian of {args.rounds} rounds; step: EDSR-baseline x4, batch {args.batch_size}")
  print(
    "\n| XLA_FLAGS | conv fwd+bwd ms | vs default | "
    + ("" if args.no_step else "train step s | vs default |")
  )
  print("|---|---|---|" + ("" if args.no_step else "---|---|"))
  for name in names:
    cells = [
      f"{median[(name, 'conv')] * 1e3:.1f}",
      f"{median[('default', 'conv')] / median[(name, 'conv')]:.2f}x",
    ]
    if not args.no_step:
      cells += [
        f"{median[(name, 'step')]:.2f}",
        f"{median[('default', 'step')] / median[(name, 'step')]:.2f}x",
      ]
    flags = CANDIDATES[name] or "(none: XLA's defaults)"
    print(f"| `{flags}` ({name}) | " + " | ".join(cells) + " |")
  return {f"{n}/{b}": t for (n, b), t in median.items()}


if __name__ == "__main__":
  main()
