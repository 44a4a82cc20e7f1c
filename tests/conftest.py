"""Shared pytest configuration.

The suite runs on the fast XLA:CPU path, as the CLIs do (``cutblur_jax.xla_cpu``): it is
enabled here, before any test module starts JAX, and the subprocesses that tests start
inherit it through ``XLA_FLAGS``. ``CUTBLUR_JAX_FAST_CPU=0 pytest`` runs on XLA's defaults.

In CI (``CI`` set in the environment) every test must run: a skipped test is
reported as a failure, so a missing optional dependency cannot hide a test.

Compiled programs go to one persistent JAX compilation cache under pytest's cache
directory, shared by both xdist workers and by every subprocess a test starts (through
the environment): a CLI run in a subprocess, and the resume after a kill, then load the
train step that an earlier process compiled instead of compiling it again. Its key
includes the program, the JAX version and ``XLA_FLAGS``, so it never hands a test another
program; a size limit turns on its file lock, so the processes can share it.
``JAX_COMPILATION_CACHE_DIR`` set in the environment wins.

The suite compiles hundreds of tiny programs and runs most of them a few times, so LLVM's
optimisation of the machine code is most of its time. Tests compile with
``--xla_backend_optimization_level=0`` (added to ``XLA_FLAGS`` here, so subprocesses
compile so too): the same HLO passes and fusions, less tuned machine code, and the suite
takes about 30% less time. A test's floats may differ from an optimised build's in the
last bits, as they do from one CPU model to another; the suite passes at both levels.
``XLA_FLAGS`` that already set the level win, e.g.
``XLA_FLAGS=--xla_backend_optimization_level=2 pytest`` tests optimised code.
"""

import os

import pytest

from cutblur_jax import xla_cpu

_OPT_LEVEL_FLAG = "--xla_backend_optimization_level"
if _OPT_LEVEL_FLAG not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_OPT_LEVEL_FLAG}=0".strip()
xla_cpu.enable_fast_path()


def pytest_configure(config):
  environ = os.environ
  if "JAX_COMPILATION_CACHE_DIR" not in environ:
    if getattr(config, "cache", None) is None:  # -p no:cacheprovider: no shared cache
      return
    environ["JAX_COMPILATION_CACHE_DIR"] = str(config.cache.mkdir("jax_compilation_cache"))
  environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")  # not tiny kernels
  environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(4 << 30))  # turns on its file lock
  import jax  # pylint: disable=g-import-not-at-top

  jax.config.update("jax_compilation_cache_dir", environ["JAX_COMPILATION_CACHE_DIR"])
  jax.config.update(
    "jax_persistent_cache_min_compile_time_secs",
    float(environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
  )
  jax.config.update(
    "jax_compilation_cache_max_size", int(environ["JAX_COMPILATION_CACHE_MAX_SIZE"])
  )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
  outcome = yield
  report = outcome.get_result()
  if report.skipped and os.environ.get("CI") and not hasattr(report, "wasxfail"):
    reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
    report.outcome = "failed"
    report.longrepr = f"skipped in CI, where every test must run: {reason}"
