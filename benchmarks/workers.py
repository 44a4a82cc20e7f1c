"""Benchmark workers: each framework and each XLA:CPU path in a process of its own.

XLA reads ``XLA_FLAGS`` once per process, so timing the fast path (``cutblur_jax.xla_cpu``)
and XLA's default path in one run needs one process for each; PyTorch gets its own too, so
that its thread pool and XLA's never share the cores. The parent only orchestrates: it
sends "run this timed body N times" to one worker at a time, round after round, so a
background load on a shared machine hits every row alike.

A worker is built by a ``setup(**kwargs) -> (bodies, info)`` function defined at the top
level of the calling script: ``bodies`` maps a name to a zero-argument callable that runs
one timed unit and blocks until its results are ready.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from typing import Any, Callable

from cutblur_jax import xla_cpu

PATHS = ("fast", "default")


def path_environment(path: str | None) -> dict[str, str]:
  """Environment overrides for a JAX worker on ``path`` ("fast" or "default"), or for none."""
  user_flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if f not in xla_cpu.FAST_FLAGS]
  if path is None:
    return {}
  if path == "fast":
    return {"XLA_FLAGS": " ".join(user_flags + list(xla_cpu.FAST_FLAGS)), xla_cpu.DISABLE_ENV: "1"}
  if path == "default":
    return {"XLA_FLAGS": " ".join(user_flags), xla_cpu.DISABLE_ENV: "0"}
  raise ValueError(f"Unknown XLA path {path!r}; expected one of {PATHS}.")


@contextlib.contextmanager
def _environment(overrides: dict[str, str]):
  saved = {name: os.environ.get(name) for name in overrides}
  os.environ.update(overrides)
  try:
    yield
  finally:
    for name, value in saved.items():
      if value is None:
        os.environ.pop(name, None)
      else:
        os.environ[name] = value


def _serve(
  connection, setup: Callable[..., tuple[dict[str, Callable[[], Any]], dict]], kwargs: dict
) -> None:
  try:
    bodies, info = setup(**kwargs)
  except Exception as error:  # pylint: disable=broad-except  # reported to the parent
    connection.send(("error", f"{type(error).__name__}: {error}"))
    return
  connection.send(("ready", info))
  while True:
    request = connection.recv()
    if request is None:
      return
    name, repeats = request
    samples = []
    for _ in range(repeats):
      start, start_cpu = time.perf_counter(), time.process_time()
      bodies[name]()
      samples.append((time.perf_counter() - start, time.process_time() - start_cpu))
    connection.send(samples)


class Worker:
  """One child process that builds its bodies with ``setup(**kwargs)`` and times them on demand.

  Examples:
    >>> worker = Worker(setup_jax, path="fast", model="CARN")  # doctest: +SKIP
    >>> worker.info["compile_s"], worker.time("step", 3)  # doctest: +SKIP
  """

  def __init__(
    self,
    setup: Callable[..., Any],
    *,
    path: str | None = None,
    environment: dict[str, str] | None = None,
    **kwargs: Any,
  ):
    """Starts the worker on XLA path ``path``, or with ``environment`` set (e.g. XLA_FLAGS)."""
    context = multiprocessing.get_context("spawn")
    self._connection, child = context.Pipe()
    self._process = context.Process(target=_serve, args=(child, setup, kwargs), daemon=True)
    with _environment({**path_environment(path), **(environment or {})}):
      self._process.start()
    status, self.info = self._connection.recv()
    if status == "error":
      self._process.join(timeout=30)
      raise RuntimeError(self.info)

  def time(self, name: str, repeats: int) -> list[tuple[float, float]]:
    """``repeats`` runs of body ``name``: ``[(wall seconds, CPU seconds of the worker)]``."""
    self._connection.send((name, repeats))
    return self._connection.recv()

  def close(self) -> None:
    self._connection.send(None)
    self._process.join(timeout=60)


def flops_of(compiled) -> float | None:
  """XLA's FLOP count of a compiled program (``None`` where the backend gives none)."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  return float(analysis.get("flops", 0.0)) or None if analysis else None


def jax_path_in_effect() -> str:
  """ "fast" or "default": which XLA:CPU path this (worker) process runs."""
  flags = os.environ.get("XLA_FLAGS", "").split()
  return "fast" if all(flag in flags for flag in xla_cpu.FAST_FLAGS) else "default"
