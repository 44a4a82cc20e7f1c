"""Subprocess tests: 4 forced CPU devices, two processes on localhost, and kill -9 then resume."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from cutblur_jax import checkpoint, train
from cutblur_jax.training.logs import read_metrics
from test_train_loop import write_div2k  # pylint: disable=wrong-import-order

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _env(devices: int) -> dict[str, str]:
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", "")])
  return env


def _python(script: str, devices: int, *args: str, timeout: float = 240) -> str:
  result = subprocess.run(
    [sys.executable, "-c", textwrap.dedent(script), *args],
    env=_env(devices),
    capture_output=True,
    text=True,
    timeout=timeout,
    cwd=ROOT,
  )
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
  return result.stdout


@pytest.fixture(scope="module")
def div2k(tmp_path_factory):
  return write_div2k(tmp_path_factory.mktemp("div2k"), count=4)


def _params(workdir: pathlib.Path, *, use_ema: bool = True) -> list[np.ndarray]:
  params, _ = checkpoint.load_model(workdir / "checkpoints" / "latest", use_ema=use_ema)
  return [np.asarray(leaf) for leaf in jax.tree.leaves(params)]


def test_sharded_step_equals_single_device_step_and_checks_the_batch(div2k, tmp_path):
  out = _python(
    """
    import json, sys
    import jax, numpy as np
    from cutblur_jax import augment, models, sharding, train
    from test_train_loop import tiny_config
    assert jax.device_count() == 4
    arch = models.model_arch("EDSR", 2, num_blocks=2, num_channels=8, res_scale=1.0)
    rng = np.random.default_rng(0)
    batches = [{"lr": rng.integers(0, 256, (8, 6, 6, 3), dtype=np.uint8),
                "hr": rng.integers(0, 256, (8, 12, 12, 3), dtype=np.uint8)} for _ in range(3)]
    params, losses = {}, {}
    for name, devices in (("one", jax.devices()[:1]), ("four", jax.devices())):
      mesh = sharding.create_mesh(devices)
      state = train.create_train_state(jax.random.key(0), arch, policy=augment.moa(), mesh=mesh)
      for batch in batches:
        batch = jax.device_put(batch, sharding.batch_sharding(mesh))
        assert len(batch["hr"].addressable_shards) == len(devices)
        state, metrics = train.train_step(state, batch, jax.random.key(1))
        losses.setdefault(name, []).append(float(metrics["loss"]))
      leaf = jax.tree.leaves(state.params)[0]
      assert leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == len(devices)
      params[name] = [np.asarray(x).tolist() for x in jax.tree.leaves(state.params)]
    try:
      sharding.check_batch_size(6, sharding.create_mesh())
      raise SystemExit("no error for batch 6 on 4 devices")
    except ValueError as error:
      assert "not divisible by the number of devices 4" in str(error), error
    def no_compile(*a, **k):
      raise SystemExit("compiled")
    from cutblur_jax.training import start
    start._create_train_state = no_compile  # what start_run calls: nothing may compile
    try:
      train.train_and_evaluate(tiny_config(sys.argv[1], batch_size=6), sys.argv[2])
      raise SystemExit("no error")
    except ValueError as error:
      assert "batch_size` 6 is not divisible" in str(error), error
    print(json.dumps({"params": params, "losses": losses}))
  """,
    4,
    str(div2k),
    str(tmp_path),
  )
  result = json.loads(out.strip().splitlines()[-1])
  # Only the order of the batch reductions differs: the first loss agrees to float rounding,
  # the later ones (after Adam steps from slightly different gradients) nearly so...
  losses = result["losses"]
  np.testing.assert_allclose(losses["four"][0], losses["one"][0], rtol=1e-6)
  np.testing.assert_allclose(losses["four"], losses["one"], rtol=1e-5)
  for one, four in zip(result["params"]["one"], result["params"]["four"]):
    # ...and so do the parameters, except where Adam's first steps (update ~ lr * sign(g))
    # meet gradients that are zero up to rounding: bounded by a tenth of 3 updates of lr 1e-4.
    np.testing.assert_allclose(np.asarray(four), np.asarray(one), rtol=1e-6, atol=3e-5)


def _free_port() -> int:
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


_TRAIN_SCRIPT = """
  import json, sys
  from cutblur_jax import train
  from test_train_loop import tiny_config
  root, workdir, extra = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
  config = tiny_config(
    root, num_train_steps=6, eval_every_steps=1, batch_size=4, use_moa=True, **extra
  )
  result = train.train_and_evaluate(config, workdir)
  print(json.dumps({k: v for k, v in result.items() if isinstance(v, (int, float))}))
"""


def test_two_processes_agree_with_one_process(div2k, tmp_path):
  # Validating at every step makes the best and the latest checkpoint save at every step:
  # two orbax managers whose background barriers once collided across the two processes
  # (about one run in two failed at 6 steps; see training.checkpoints._manager).
  port = _free_port()
  workers = []
  for process_id in range(2):
    extra = {
      "coordinator_address": f"127.0.0.1:{port}",
      "num_processes": 2,
      "process_id": process_id,
    }
    workers.append(
      subprocess.Popen(
        [
          sys.executable,
          "-c",
          textwrap.dedent(_TRAIN_SCRIPT),
          str(div2k),
          str(tmp_path / "two"),
          json.dumps(extra),
        ],
        env=_env(1),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
      )
    )
  one = _python(_TRAIN_SCRIPT, 2, str(div2k), str(tmp_path / "one"), "{}")
  outputs = [worker.communicate(timeout=240) for worker in workers]
  for worker, (stdout, stderr) in zip(workers, outputs):
    assert worker.returncode == 0, stdout[-2000:] + stderr[-6000:]
  results = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]
  single = json.loads(one.strip().splitlines()[-1])
  assert results[0]["step"] == results[1]["step"] == single["step"] == 6
  assert results[0]["best_step"] == results[1]["best_step"] == single["best_step"]
  assert results[0]["loss"] == results[1]["loss"]
  assert results[0]["loss"] == pytest.approx(single["loss"], rel=1e-5)  # step 6, after 5 updates
  for two, ref in zip(_params(tmp_path / "two"), _params(tmp_path / "one")):
    np.testing.assert_allclose(two, ref, rtol=1e-6, atol=3e-5)  # as in the 4-device test
  # Each process measured its share of the validation images (here process 1 has none);
  # both hold the same gathered numbers.
  assert results[0]["psnr"] == results[1]["psnr"]
  assert results[0]["psnr"] == pytest.approx(single["psnr"], abs=1e-3)
  # Only process 0 wrote the logs.
  assert len(list((tmp_path / "two").glob("events.out.tfevents.*"))) == 1


_AGREE_SCRIPT = """
  import json, sys
  import jax
  jax.distributed.initialize(sys.argv[1], num_processes=2, process_id=int(sys.argv[2]))
  from cutblur_jax import sharding
  # A near-tie that the two hosts round apart: each sees its own last bit.
  mine = {"psnr": 30.0 + int(sys.argv[2]) * 2**-40, "ssim": 0.1 + 0.2}
  print(json.dumps({k: v.hex() for k, v in sharding.from_process_0(mine).items()}))
"""


def _two_processes(script: str) -> list:
  """The last stdout line of ``script`` (JSON) from each of two processes on localhost."""
  address = f"127.0.0.1:{_free_port()}"
  workers = [
    subprocess.Popen(
      [sys.executable, "-c", textwrap.dedent(script), address, str(process_id)],
      env=_env(1),
      cwd=ROOT,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for process_id in range(2)
  ]
  outputs = [worker.communicate(timeout=120) for worker in workers]
  for worker, (stdout, stderr) in zip(workers, outputs):
    assert worker.returncode == 0, stdout[-2000:] + stderr[-4000:]
  return [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]


def test_every_process_takes_process_0s_validation_numbers_bit_for_bit():
  agreed = _two_processes(_AGREE_SCRIPT)
  assert agreed[0] == agreed[1] == {"psnr": (30.0).hex(), "ssim": (0.1 + 0.2).hex()}


_GATHER_SCRIPT = """
  import json, sys
  import jax
  import numpy as np
  jax.distributed.initialize(sys.argv[1], num_processes=2, process_id=int(sys.argv[2]))
  from cutblur_jax import sharding
  from cutblur_jax.training.validation import process_share
  p = jax.process_index()
  share = process_share(5, p, 2)  # process 0: images 0, 2, 4; process 1: 1, 3
  rows = np.array([[i + 2**-40, -i / 3] for i in share])
  print(json.dumps([[v.hex() for v in row] for row in sharding.gather_rows(rows, 5).tolist()]))
"""


def test_validation_rows_are_gathered_in_image_order_bit_for_bit():
  gathered = _two_processes(_GATHER_SCRIPT)
  expected = [[(i + 2**-40).hex(), (-i / 3).hex()] for i in range(5)]
  assert gathered[0] == gathered[1] == expected


_DEVICES_SCRIPT = """
  import json, sys
  import jax
  import numpy as np
  from cutblur_jax import models
  from cutblur_jax.data.embedded import embedded_dataset
  from cutblur_jax.data.prefetch import load_pairs
  from cutblur_jax.data.spec import EvalProtocol
  from cutblur_jax.training.validation import Validation
  arch = models.model_arch("EDSR", 2, num_blocks=1, num_channels=8, res_scale=1.0)
  params = models.create_model(arch).init(jax.random.key(0), np.zeros((1, 16, 16, 3)))["params"]
  pairs = load_pairs(embedded_dataset("train", 2, max_size=48), count=3)
  validation = Validation.measure_baseline(
    pairs, EvalProtocol.of("SR", 2), count=3, num_samples=2
  )
  scores, images = validation.run(params, arch)
  print(json.dumps({"devices": jax.local_device_count(), "scores": scores,
                    "baseline": validation.baseline, "images": sorted(images)}))
"""


def test_validation_over_two_devices_equals_one_device():
  one, two = (json.loads(_python(_DEVICES_SCRIPT, n).strip().splitlines()[-1]) for n in (1, 2))
  assert (one["devices"], two["devices"]) == (1, 2)
  assert one["scores"] == two["scores"] and one["baseline"] == two["baseline"]
  assert one["images"] == two["images"] == ["0/hr", "0/lr", "0/sr", "1/hr", "1/lr", "1/sr"]


def _stop_at_a_random_moment(command, latest, signum, *, after_step):
  """Runs ``command`` and sends ``signum`` once a checkpoint past ``after_step`` exists."""
  victim = subprocess.Popen(
    command, env=_env(1), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
  )
  deadline = time.monotonic() + 180
  while time.monotonic() < deadline and victim.poll() is None:
    steps = [int(p.name) for p in latest.glob("*") if p.name.isdigit()] if latest.exists() else []
    if steps and max(steps) > after_step:
      break
    time.sleep(0.005)
  assert victim.poll() is None, victim.stdout.read()[-3000:]
  os.kill(victim.pid, signum)
  victim.wait(timeout=60)
  said = victim.stdout.read()
  victim.stdout.close()
  steps = sorted(int(p.name) for p in latest.glob("*") if p.name.isdigit())
  if signum == signal.SIGKILL:
    assert victim.returncode == -signal.SIGKILL
  else:  # saved the step in flight, said where to resume, exited as a shell expects
    assert victim.returncode == 128 + signum, said[-3000:]
    lines = [line for line in said.splitlines() if line.startswith("Interrupted:")]
    assert len(lines) == 1 and f"saving step {max(steps)}" in lines[0], said[-3000:]
    assert f"--workdir {latest.parent.parent}" in lines[0]
    assert "Traceback" not in said
  return max(steps)


@pytest.mark.parametrize(
  "signals, ema_decay", [((signal.SIGKILL,), 0.9), ((signal.SIGTERM, signal.SIGINT), 0.0)]
)
def test_a_run_stopped_mid_run_resumes_to_bitwise_the_uninterrupted_parameters(
  div2k, tmp_path, signals, ema_decay
):
  """kill -9 loses only the steps since the last checkpoint; SIGTERM and Ctrl-C save first.

  Each signal comes at a random moment of the loop; the run is resumed after each one.
  """
  total, every = 48, 3
  fields = {
    "ema_decay": ema_decay,
    "dataset_root": str(div2k),
    "div2k_range": "1-3/4-4",
    "patch_size": 8,
    "num_blocks": 1,
    "num_channels": 8,
    "res_scale": 1.0,
    "num_workers": 0,
    "eval_every_steps": 0,
    "num_train_steps": total,
    "checkpoint_every_steps": every,
    "log_every_steps": every,
    "batch_size": 4,
    "keep_checkpoints": 2,
  }
  config_file = ROOT / "experiments" / "configs" / "edsr_div2k.py"  # MoA on, x2
  command = [
    sys.executable,
    str(ROOT / "experiments" / "train.py"),
    "--config",
    str(config_file),
    "--workdir",
    str(tmp_path / "killed"),
  ]
  command += [f"--config.{name}={value}" for name, value in fields.items()]
  latest = tmp_path / "killed" / "checkpoints" / "latest"
  rng = np.random.default_rng()
  stopped_at, last = [], 0
  for signum in signals:
    last = _stop_at_a_random_moment(
      command, latest, signum, after_step=last + every * int(rng.integers(0, 3))
    )
    assert last < total  # it really stopped mid-run
    stopped_at.append(last)

  resumed = subprocess.run(
    command, env=_env(1), cwd=ROOT, capture_output=True, text=True, timeout=240
  )
  assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-4000:]
  assert f"Resumed from step {last}" in resumed.stdout + resumed.stderr
  assert not [p for p in latest.iterdir() if "tmp" in p.name]
  train_steps = [r["step"] for r in read_metrics(tmp_path / "killed") if r["split"] == "train"]
  # One record per logged step, none lost and none twice (a stop also logs its step).
  assert train_steps == sorted(set(range(every, total + 1, every)) | set(stopped_at))

  # The uninterrupted run, in this process, from the same config file and overrides.
  from experiments.configs import edsr_div2k  # pylint: disable=import-outside-toplevel

  assert config_file == pathlib.Path(edsr_div2k.__file__)
  config = edsr_div2k.get_config()
  config.update(fields)
  config.progress_bar = False
  train.train_and_evaluate(config, tmp_path / "straight")
  for use_ema in (False, True):  # with EMA on, the raw weights and their average
    for a, b in zip(
      _params(tmp_path / "killed", use_ema=use_ema), _params(tmp_path / "straight", use_ema=use_ema)
    ):
      np.testing.assert_array_equal(a, b)
  has_ema = (latest / str(total) / "ema_params").is_dir()
  assert has_ema is (ema_decay > 0)
  if has_ema:  # the average is not the raw weights
    assert any(
      not np.array_equal(a, b)
      for a, b in zip(
        _params(tmp_path / "killed", use_ema=True), _params(tmp_path / "killed", use_ema=False)
      )
    )
