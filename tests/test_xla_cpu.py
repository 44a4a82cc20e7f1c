"""The fast XLA:CPU path: when it turns on, when it steps aside, and that its numerics hold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from cutblur_jax import xla_cpu

FAST = " ".join(xla_cpu.FAST_FLAGS)


@pytest.fixture
def fresh(monkeypatch):
  """A process state in which the CPU backend has not started and no accelerator is there."""
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  monkeypatch.delenv(xla_cpu.DISABLE_ENV, raising=False)
  monkeypatch.delenv("JAX_PLATFORMS", raising=False)
  monkeypatch.setattr(xla_cpu, "_backend_started", lambda: False)
  monkeypatch.setattr(xla_cpu, "_accelerator_expected", lambda: False)
  return monkeypatch


def _run(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
  return subprocess.run(
    [sys.executable, "-c", textwrap.dedent(script), *args],
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )


def _clean_env(**extra: str) -> dict[str, str]:
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", xla_cpu.DISABLE_ENV)}
  env["JAX_PLATFORMS"] = "cpu"
  env.update(extra)
  return env


def test_the_suite_runs_on_the_path_it_was_asked_for():
  # conftest.py enables the fast path before JAX starts, unless CUTBLUR_JAX_FAST_CPU=0.
  disabled = os.environ.get(xla_cpu.DISABLE_ENV, "").lower() in ("0", "false", "no", "off")
  assert (FAST in os.environ.get("XLA_FLAGS", "")) is not disabled


def test_appends_to_the_users_flags_and_is_idempotent(fresh):
  fresh.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=3")
  assert xla_cpu.enable_fast_path() == (True, "enabled")
  assert os.environ["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=3 {FAST}"
  assert xla_cpu.enable_fast_path() == (True, "already_enabled")
  assert os.environ["XLA_FLAGS"].count(xla_cpu.YNN_FLAG) == 1


@pytest.mark.parametrize(
  "env, reason",
  [
    ({xla_cpu.DISABLE_ENV: "0"}, "disabled"),
    ({xla_cpu.DISABLE_ENV: "off"}, "disabled"),
    ({"XLA_FLAGS": f"{xla_cpu.YNN_FLAG}=dot,eltwise"}, "user_flags"),
  ],
)
def test_steps_aside_and_leaves_flags_alone(fresh, env, reason):
  for name, value in env.items():
    fresh.setenv(name, value)
  before = os.environ.get("XLA_FLAGS")
  assert xla_cpu.enable_fast_path() == (False, reason)
  assert os.environ.get("XLA_FLAGS") == before


@pytest.mark.parametrize(
  "platforms, expected",
  [("cuda", True), ("tpu", True), ("cuda,cpu", True), ("cpu", False), ("cpu,cuda", False)],
)
def test_jax_platforms_decides_whether_an_accelerator_is_used(monkeypatch, platforms, expected):
  monkeypatch.setenv("JAX_PLATFORMS", platforms)
  assert xla_cpu._accelerator_expected() is expected  # pylint: disable=protected-access


def test_does_nothing_on_an_accelerator(fresh):
  fresh.setattr(xla_cpu, "_accelerator_expected", lambda: True)
  assert xla_cpu.enable_fast_path() == (False, "accelerator")
  assert "XLA_FLAGS" not in os.environ


def test_too_late_warns_and_does_not_crash(monkeypatch):
  jax.devices()  # this process's backend has started
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_min_max=true")
  monkeypatch.delenv(xla_cpu.DISABLE_ENV, raising=False)
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  with pytest.warns(RuntimeWarning, match="after JAX's CPU backend started"):
    assert xla_cpu.enable_fast_path() == (False, "too_late")
  assert os.environ["XLA_FLAGS"] == "--xla_cpu_enable_fast_min_max=true"


def test_too_late_in_a_real_process_warns_once_and_runs_on():
  result = _run(
    """
      import jax
      jax.devices()
      from cutblur_jax import xla_cpu
      print(tuple(xla_cpu.enable_fast_path()))
      print(float(jax.numpy.ones(3).sum()))
      """,
    _clean_env(),
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.split() == ["(False,", "'too_late')", "3.0"]
  assert result.stderr.count("RuntimeWarning") == 1


def test_in_time_in_a_real_process_keeps_the_users_flag_working():
  result = _run(
    """
      import os
      from cutblur_jax import xla_cpu
      print(tuple(xla_cpu.enable_fast_path()))
      import jax
      print(jax.device_count(), os.environ["XLA_FLAGS"])
      """,
    _clean_env(XLA_FLAGS="--xla_force_host_platform_device_count=2"),
  )
  assert result.returncode == 0, result.stderr[-2000:]
  lines = result.stdout.splitlines()
  assert lines[0] == "(True, 'enabled')"
  assert lines[1] == f"2 --xla_force_host_platform_device_count=2 {FAST}"


# A JAX upgrade: flags are checked against the new jaxlib's own flag table.


@pytest.mark.parametrize(
  "text, expected",
  [
    (
      f'{xla_cpu.YNN_FLAG}=""\tstring\tComma-separated list...\nThe default list is currently empty.',
      frozenset(),
    ),
    (
      f'{xla_cpu.YNN_FLAG}="dot,eltwise,reduce"\tstring\t...\nThe default list is currently: '
      'dot, eltwise, reduce.',
      frozenset({"dot", "eltwise", "reduce"}),
    ),
    (
      f'{xla_cpu.YNN_FLAG}="dot"\tstring\t...\nThe default list is currently: dot.',
      frozenset({"dot"}),
    ),
    (
      "F1201 parse_flags_from_env.cc:234] Unknown flag in XLA_FLAGS: "
      f"{xla_cpu.YNN_FLAG}=cutblur_jax_probe",
      None,
    ),
    ("--xla_cpu_use_xnnpack=true\tbool\tUse XNNPACK", None),
  ],
)
def test_parse_ynn_default(text, expected):
  assert xla_cpu.parse_ynn_default(text) == expected


@pytest.mark.parametrize(
  "probed, expected",
  [
    (frozenset(), (True, "enabled")),
    (frozenset({"eltwise"}), (True, "enabled")),
    (frozenset({"dot"}), (False, "default")),
    (frozenset({"dot", "eltwise", "reduce"}), (False, "default")),
    (None, (False, "unsupported")),
  ],
)
def test_an_unvalidated_jaxlib_is_probed(fresh, probed, expected):
  fresh.setattr(xla_cpu, "_jaxlib_version", lambda: "0.99.1")
  calls = []
  fresh.setattr(xla_cpu, "_probe_ynn_default", lambda version: calls.append(version) or probed)
  assert xla_cpu.enable_fast_path() == expected
  assert calls == ["0.99.1"]
  assert (FAST in os.environ.get("XLA_FLAGS", "")) is expected[0]


def test_a_validated_jaxlib_is_not_probed(fresh):
  fresh.setattr(xla_cpu, "_jaxlib_version", lambda: "0.10.7")
  fresh.setattr(xla_cpu, "_probe_ynn_default", lambda version: pytest.fail("probed"))
  assert xla_cpu.enable_fast_path() == (True, "enabled")


def test_the_real_probe_reads_this_jaxlib_and_caches_it(tmp_path, monkeypatch):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  version = xla_cpu._jaxlib_version()  # pylint: disable=protected-access
  # The installed jaxlib has the flag and leaves it off by default (what VALIDATED_JAXLIB says).
  assert xla_cpu._probe_ynn_default(version) == frozenset()  # pylint: disable=protected-access
  cache = tmp_path / "cutblur_jax" / f"xla_cpu_probe-{version}.json"
  assert json.loads(cache.read_text()) == []
  cache.write_text(json.dumps(["dot", "eltwise"]))  # read back, not probed again
  assert xla_cpu._probe_ynn_default(version) == {"dot", "eltwise"}  # pylint: disable=protected-access


# Numerics: the model's forward and gradient on the fast path against XLA's default path.

_FORWARD_AND_GRADIENT = """
import sys
import jax, jax.numpy as jnp, numpy as np
from cutblur_jax import models
leaves = {{}}
for name, kwargs in {tiny}.items():
  arch = models.model_arch(name, 2, **kwargs)
  model = models.create_model(arch)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.uniform(0, 255, (2, 24, 20, 3)).astype(np.float32))
  hr = jnp.asarray(rng.uniform(0, 255, (2, 24, 20, 3)).astype(np.float32))
  params = model.init(jax.random.key(0), x)["params"]
  loss = lambda p: jnp.mean(jnp.abs(model.apply({{"params": p}}, x) - hr))
  sr = jax.jit(model.apply)({{"params": params}}, x)
  grads = jax.jit(jax.grad(loss))(params)
  leaves[f"{{name}}/sr"] = np.asarray(sr)
  leaves.update({{f"{{name}}/grad{{i}}": np.asarray(g)
                 for i, g in enumerate(jax.tree.leaves(grads))}})
np.savez(sys.argv[1], **leaves)
"""

TINY = {
  "EDSR": {"num_blocks": 2, "num_channels": 16},
  "RCAN": {"num_groups": 2, "num_blocks": 2, "num_channels": 16, "reduction": 4},
  "CARN": {"num_groups": 2, "num_blocks": 2, "num_channels": 16},
}


def test_fast_path_matches_the_default_path(tmp_path):
  """Forward to 1e-5 of the output scale and gradients to 1e-4 relative (measured: the forward
  bitwise equal, gradients 5e-7 to 1.1e-6, at XLA's default optimisation level; YNNPACK sums
  the convolutions in another order).

  One process per path runs all three networks (a process start costs more than a network).
  """
  script = _FORWARD_AND_GRADIENT.format(tiny=repr(TINY))
  # Both paths at the suite's LLVM optimisation level (conftest.py): it tunes XLA's own
  # machine code, not the convolution libraries that the two paths differ by.
  flags = os.environ.get("XLA_FLAGS", "").split()
  level = " ".join(f for f in flags if f.startswith("--xla_backend_optimization_level"))
  outputs = {}
  for path, env in (
    ("fast", _clean_env(XLA_FLAGS=f"{FAST} {level}".strip())),
    ("default", _clean_env(XLA_FLAGS=level, **{xla_cpu.DISABLE_ENV: "0"})),
  ):
    result = _run(script, env, str(tmp_path / f"{path}.npz"))
    assert result.returncode == 0, result.stderr[-2000:]
    outputs[path] = np.load(tmp_path / f"{path}.npz")
  fast, default = outputs["fast"], outputs["default"]
  assert sorted(fast.files) == sorted(default.files)
  for name in TINY:
    keys = [key for key in fast.files if key.startswith(f"{name}/")]
    assert len(keys) > 4, name
    scale = np.abs(default[f"{name}/sr"]).max()
    np.testing.assert_allclose(fast[f"{name}/sr"], default[f"{name}/sr"], rtol=0, atol=1e-5 * scale)
    for key in keys:
      if "/grad" in key:
        g, d = fast[key], default[key]
        assert np.linalg.norm(g - d) <= 1e-4 * np.linalg.norm(d), key
    # Not the same code: the paths differ somewhere (else this would compare a path to itself).
    assert any(not np.array_equal(fast[k], default[k]) for k in keys), name
