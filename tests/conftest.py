"""Shared pytest configuration.

In CI (``CI`` set in the environment) every test must run: a skipped test is
reported as a failure, so a missing optional dependency cannot hide a test.
"""

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
  outcome = yield
  report = outcome.get_result()
  if report.skipped and os.environ.get("CI") and not hasattr(report, "wasxfail"):
    reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
    report.outcome = "failed"
    report.longrepr = f"skipped in CI, where every test must run: {reason}"
