"""The fast XLA:CPU path: convolutions and matmuls through YNNPACK.

XLA:CPU's default convolution code is about 3x slower than oneDNN (what PyTorch uses)
on the 3x3 convolutions of EDSR, RCAN and CARN. XLA ships an experimental YNNPACK
path that closes the gap; it is off by default (jaxlib 0.10) and turned on with a
flag in ``XLA_FLAGS``. ``enable_fast_path()`` adds that flag, which is what every
CLI, benchmark, notebook and the test suite of this project call before JAX starts.

XLA reads ``XLA_FLAGS`` once, when the CPU backend starts: the first
``jax.devices()``, array creation or jitted call, not ``import jax``. So call
``enable_fast_path()`` at the top of your program, before any of those:

Examples:
  >>> from cutblur_jax import xla_cpu
  >>> status = xla_cpu.enable_fast_path()  # before JAX creates its first array
  >>> import jax
  >>> status.reason in xla_cpu.REASONS
  True

Called after the backend has started it changes nothing and warns (it never crashes:
the flags would simply not apply to this process). It also steps aside, leaving
``XLA_FLAGS`` as it was, when:

* ``CUTBLUR_JAX_FAST_CPU=0`` is set in the environment (the documented off switch);
* the user's ``XLA_FLAGS`` already sets the YNN fusion flag (their value wins);
* the program runs on an accelerator: ``JAX_PLATFORMS`` names no ``cpu``, or a GPU/TPU
  plugin is installed and ``JAX_PLATFORMS`` does not put ``cpu`` first;
* the installed jaxlib is not one the flag was measured on, and a one-off probe of that
  jaxlib's flag table (cached per version) finds the flag gone (an unknown flag aborts
  XLA) or already on by default (a JAX upgrade made this the default).

Anything already in ``XLA_FLAGS`` is kept: the flag is appended, never replaced.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import pathlib
import pkgutil
import re
import subprocess
import sys
import warnings
from typing import NamedTuple

__all__ = ["FAST_FLAGS", "FastPathStatus", "REASONS", "enable_fast_path", "parse_ynn_default"]

YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type"
# dot: matmuls and convolutions go to YNNPACK. Also fusing the element-wise ops and
# reductions ("dot,eltwise,reduce") was 2% and 4% slower on the train step in two runs (within
# noise, never faster); XNNPACK's and oneDNN's fusion types were no faster than XLA's default
# (benchmarks/xla_flags.py, docs/benchmarks.md).
FUSION_TYPES = ("dot",)
FAST_FLAGS = (f"{YNN_FLAG}={','.join(FUSION_TYPES)}",)
DISABLE_ENV = "CUTBLUR_JAX_FAST_CPU"
# jaxlib (major, minor) releases on which FAST_FLAGS were measured (speed and numerics).
VALIDATED_JAXLIB = ((0, 10),)

REASONS = (
  "enabled",
  "already_enabled",
  "disabled",
  "user_flags",
  "accelerator",
  "too_late",
  "default",
  "unsupported",
)


class FastPathStatus(NamedTuple):
  """What ``enable_fast_path`` did.

  Attributes:
    enabled: whether ``FAST_FLAGS`` are in ``XLA_FLAGS`` now (for a backend not yet started).
    reason: one of ``REASONS``: ``enabled`` (added now), ``already_enabled`` (added by an
      earlier call or a parent process), ``disabled`` (``CUTBLUR_JAX_FAST_CPU=0``),
      ``user_flags`` (``XLA_FLAGS`` sets the fusion flag itself), ``accelerator``,
      ``too_late`` (the CPU backend had started), ``default`` (this jaxlib already does
      it) or ``unsupported`` (this jaxlib lacks the flag).
  """

  enabled: bool
  reason: str


def _backend_started() -> bool:
  if "jax" not in sys.modules:
    return False
  try:
    from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top

    return bool(xla_bridge.backends_are_initialized())
  except (ImportError, AttributeError):  # a JAX without that helper: assume not started
    return False


def _accelerator_expected() -> bool:
  platforms = [p.strip() for p in os.environ.get("JAX_PLATFORMS", "").split(",") if p.strip()]
  if platforms:
    return platforms[0] != "cpu"
  if importlib.util.find_spec("libtpu") is not None:
    return True
  spec = importlib.util.find_spec("jax_plugins")  # cuda/rocm plugins live in this namespace
  if spec is not None and spec.submodule_search_locations:
    if any(True for _ in pkgutil.iter_modules(list(spec.submodule_search_locations))):
      return True
  return bool(importlib.metadata.entry_points(group="jax_plugins"))


def parse_ynn_default(flag_help: str) -> frozenset[str] | None:
  """XLA's default YNN fusion types, read from the flag table XLA prints on a bad value.

  Returns:
    The default types (empty when XLA says the list is empty), or ``None`` when the
    table has no YNN fusion flag (this XLA would abort on it).

  Examples:
    >>> parse_ynn_default("--xla_cpu_experimental_ynn_fusion_type=\\"\\"  string ...\\n"
    ...                   "The default list is currently empty.")
    frozenset()
  """
  start = flag_help.find(YNN_FLAG + "=")
  if start < 0 or "Unknown flag" in flag_help[:start]:
    return None
  match = re.search(r"The default list is currently([^\n]*)", flag_help[start:])
  if match is None or "empty" in match.group(1):
    return frozenset()
  return frozenset(
    t for t in re.findall(r"[a-z_]+", match.group(1)) if t in ("dot", "eltwise", "reduce")
  )


def _probe_ynn_default(version: str) -> frozenset[str] | None:
  """Asks this jaxlib for its flag table once (a child process; cached per version)."""
  cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache"))
  cache = cache / "cutblur_jax" / f"xla_cpu_probe-{version}.json"
  try:
    cached = json.loads(cache.read_text())
    return None if cached is None else frozenset(cached)
  except (OSError, ValueError):
    pass
  env = {**os.environ, "XLA_FLAGS": f"{YNN_FLAG}=cutblur_jax_probe", "JAX_PLATFORMS": "cpu"}
  try:
    probe = subprocess.run(
      [sys.executable, "-c", "import jax; jax.devices()"],
      env=env,
      capture_output=True,
      text=True,
      timeout=120,
      check=False,
    )
  except (OSError, subprocess.SubprocessError):
    return None
  result = parse_ynn_default(probe.stdout + probe.stderr)
  try:
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(None if result is None else sorted(result)))
  except OSError:
    pass  # no cache: probe again next time
  return result


def _jaxlib_version() -> str | None:
  try:
    return importlib.metadata.version("jaxlib")
  except importlib.metadata.PackageNotFoundError:
    return None


def _validated(version: str) -> bool:
  numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
  return numbers in VALIDATED_JAXLIB


def enable_fast_path(*, warn: bool = True) -> FastPathStatus:
  """Appends ``FAST_FLAGS`` to ``XLA_FLAGS`` unless one of the reasons above says not to.

  Call it before JAX's CPU backend starts; it is cheap and idempotent.

  Args:
    warn: warn when it is called too late to take effect.

  Returns:
    ``FastPathStatus(enabled, reason)``.
  """
  flags = os.environ.get("XLA_FLAGS", "")
  if all(flag in flags.split() for flag in FAST_FLAGS):
    return FastPathStatus(True, "already_enabled")
  if os.environ.get(DISABLE_ENV, "").strip().lower() in ("0", "false", "no", "off"):
    return FastPathStatus(False, "disabled")
  if YNN_FLAG in flags:
    return FastPathStatus(False, "user_flags")
  if _accelerator_expected():
    return FastPathStatus(False, "accelerator")
  if _backend_started():
    if warn:
      warnings.warn(
        "cutblur_jax.xla_cpu.enable_fast_path() was called after JAX's CPU backend started, "
        "so XLA_FLAGS no longer apply to this process; call it before the first JAX array "
        f"or jit call, or set XLA_FLAGS={' '.join(FAST_FLAGS)} before starting Python.",
        RuntimeWarning,
        stacklevel=2,
      )
    return FastPathStatus(False, "too_late")
  version = _jaxlib_version()
  if version is None:
    return FastPathStatus(False, "unsupported")
  if not _validated(version):
    default = _probe_ynn_default(version)
    if default is None:
      return FastPathStatus(False, "unsupported")
    if default >= set(FUSION_TYPES):
      return FastPathStatus(False, "default")
  os.environ["XLA_FLAGS"] = " ".join([*flags.split(), *FAST_FLAGS])
  return FastPathStatus(True, "enabled")
