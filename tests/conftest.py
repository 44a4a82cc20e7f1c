"""Shared pytest configuration.

The suite runs on the fast XLA:CPU path, as the CLIs do (``cutblur_jax.xla_cpu``): it is
enabled here, before any test module starts JAX, and the subprocesses that tests start
inherit it through ``XLA_FLAGS``. ``CUTBLUR_JAX_FAST_CPU=0 pytest`` runs on XLA's defaults.

In CI (``CI`` set in the environment) every test must run: a skipped test is
reported as a failure, so a missing optional dependency cannot hide a test.
"""

import os

import pytest

from cutblur_jax import xla_cpu

xla_cpu.enable_fast_path()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
  outcome = yield
  report = outcome.get_result()
  if report.skipped and os.environ.get("CI") and not hasattr(report, "wasxfail"):
    reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
    report.outcome = "failed"
    report.longrepr = f"skipped in CI, where every test must run: {reason}"
