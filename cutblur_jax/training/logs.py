"""Run logs: ``metrics.jsonl`` and, when tensorboardX is installed, TensorBoard events.

``MetricWriter`` writes every record as one JSON object per line in
``WORKDIR/metrics.jsonl`` (``{"step": ..., "split": "train" | "eval", name: value,
...}``), which needs nothing to read, and as TensorBoard scalars/images when the
optional ``tensorboard`` extra is installed (``pip install -e ".[tensorboard]"``). Only
process 0 of a multi-host run writes; elsewhere every method is a no-op.

Invariants:

* Writes are synchronous, in the training thread: a full disk or any other write error
  raises ``LogWriteError`` naming the file and the cause at once, instead of killing a
  background thread and leaving the run blocked on its queue.
* ``truncate_metrics(workdir, step)`` drops the records after ``step`` (atomically), so a
  run resumed from its step-``step`` checkpoint logs each (split, step) once.

Examples:
  >>> writer = MetricWriter("/tmp/run")  # doctest: +SKIP
  >>> writer.write_scalars(100, {"loss": 3.2}, split="train")  # doctest: +SKIP
  >>> writer.close()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import pathlib
import time
from typing import Any, Mapping

import numpy as np

from cutblur_jax.checkpoint import METRICS_FILE
from cutblur_jax.data.io import write_atomic
from cutblur_jax.paths import as_path, is_url

__all__ = [
  "LogWriteError",
  "METRICS_FILE",
  "MetricWriter",
  "read_metrics",
  "tensorboard_available",
  "truncate_metrics",
]


class LogWriteError(OSError):
  """Writing a run log failed (e.g. no space left on the device); names the file."""


def tensorboard_available() -> bool:
  """Whether the optional TensorBoard writer (tensorboardX) is installed."""
  return importlib.util.find_spec("tensorboardX") is not None


def _json_value(value: Any) -> Any:
  value = np.asarray(value).item() if np.ndim(value) == 0 else np.asarray(value).tolist()
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)  # JSON has no NaN/inf; keep the fact readable
  return value


def read_metrics(workdir: str | os.PathLike) -> list[dict[str, Any]]:
  """The records of ``WORKDIR/metrics.jsonl`` (a torn last line from a crash is skipped)."""
  path = as_path(workdir) / METRICS_FILE
  if not path.exists():
    return []
  records = []
  for line in path.read_text().splitlines():
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:
      continue
  return records


def truncate_metrics(workdir: str | os.PathLike, step: int) -> int:
  """Drops the records after ``step`` (and torn lines) from ``metrics.jsonl``; returns how many."""
  path = as_path(workdir) / METRICS_FILE
  if not path.exists():
    return 0
  lines = path.read_text().splitlines(keepends=True)
  kept = []
  for line in lines:
    try:
      record = json.loads(line)
    except json.JSONDecodeError:
      continue  # a line torn by a crash
    if int(record.get("step", 0)) <= step:
      kept.append(line if line.endswith("\n") else line + "\n")
  if kept == lines:
    return 0
  text = "".join(kept)
  try:
    write_atomic(path, lambda stream: stream.write(text.encode()))
  except OSError as error:
    raise LogWriteError(f"Could not rewrite {path}: {error.strerror or error}") from error
  return len(lines) - len(kept)


class _Events:
  """A synchronous TensorBoard event file (tensorboardX's writer, without its thread)."""

  def __init__(self, workdir: pathlib.Path):
    from tensorboardX import event_file_writer  # pylint: disable=g-import-not-at-top
    from tensorboardX import summary  # pylint: disable=g-import-not-at-top
    from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top

    self._summary, self._event_pb2 = summary, event_pb2
    self._writer = event_file_writer.EventsWriter(str(workdir / "events"))
    self.path = pathlib.Path(self._writer._file_name)  # pylint: disable=protected-access

  def _add(self, proto, step: int) -> None:
    self._writer.write_event(
      self._event_pb2.Event(summary=proto, wall_time=time.time(), step=int(step))
    )

  def scalar(self, tag: str, value: float, step: int) -> None:
    self._add(self._summary.scalar(tag, value), step)

  def image(self, tag: str, image: np.ndarray, step: int) -> None:
    self._add(self._summary.image(tag, image, dataformats="HWC"), step)

  def text(self, tag: str, text: str, step: int) -> None:
    self._add(self._summary.text(tag, text), step)

  def flush(self) -> None:
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


class _ObjectLines:
  """``metrics.jsonl`` on an object store, which has no append: the whole file is kept and
  uploaded again at each flush (a long run's log is a few MB)."""

  def __init__(self, path):
    self.path = path
    self._text = path.read_text() if path.exists() else ""
    self._written = None

  def write(self, text: str) -> None:
    self._text += text

  def flush(self) -> None:
    if self._written != len(self._text):
      write_atomic(self.path, lambda stream: stream.write(self._text.encode()))
      self._written = len(self._text)

  def close(self) -> None:
    self.flush()


class MetricWriter:
  """``metrics.jsonl`` (+ TensorBoard when installed) for one run (process 0 only).

  Args:
    workdir: the run's work directory (created if needed).
    enabled: write anything at all (default: only on ``jax.process_index() == 0``).
    tensorboard: also write TensorBoard events (default: when tensorboardX is installed).

  Raises:
    LogWriteError: from any method, when a write fails; the message names the file.
  """

  def __init__(
    self,
    workdir: str | os.PathLike,
    *,
    enabled: bool | None = None,
    tensorboard: bool | None = None,
  ):
    if enabled is None:
      import jax  # pylint: disable=g-import-not-at-top

      enabled = jax.process_index() == 0
    self.enabled = bool(enabled)
    self.workdir = as_path(workdir)
    self.jsonl_path = self.workdir / METRICS_FILE
    # An object store (gs://) cannot append, and tensorboardX writes it only through
    # google-cloud-storage: there the log is rewritten at each flush, without events.
    remote = is_url(self.workdir)
    self._events = None
    self._jsonl = None
    if self.enabled:
      with self._guard(self.jsonl_path):
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._jsonl = _ObjectLines(self.jsonl_path) if remote else open(self.jsonl_path, "a")
        if not remote and (tensorboard_available() if tensorboard is None else tensorboard):
          self._events = _Events(self.workdir)

  @contextlib.contextmanager
  def _guard(self, path: pathlib.Path):
    """Turns an ``OSError`` into ``LogWriteError`` naming ``path``; stops further writes."""
    try:
      yield
    except LogWriteError:
      raise
    except OSError as error:
      self.enabled = False  # nothing more can be written; close() must not retry
      raise LogWriteError(
        f"Could not write the run log {path}: {error.strerror or error}"
      ) from error

  def write_scalars(self, step: int, scalars: Mapping[str, Any], *, split: str = "train") -> None:
    """Logs ``scalars`` at ``step`` as one JSON line (and TensorBoard scalars ``split/name``)."""
    if not self.enabled:
      return
    record = {"step": int(step), "split": split}
    for name, value in scalars.items():
      # A label such as which weights were measured goes to the JSON record only.
      record[name] = value if isinstance(value, str) else _json_value(value)
    with self._guard(self.jsonl_path):
      self._jsonl.write(json.dumps(record) + "\n")
      self._jsonl.flush()
    if self._events is not None:
      with self._guard(self._events.path):
        for name, value in scalars.items():
          if not isinstance(value, str):
            self._events.scalar(f"{split}/{name}", float(np.asarray(value)), step)

  def write_event(self, step: int, event: str, fields: Mapping[str, Any]) -> None:
    """Logs a JSON-only record ``{"step", "split": "event", "event", **fields}``."""
    if not self.enabled:
      return
    with self._guard(self.jsonl_path):
      self._jsonl.write(
        json.dumps({"step": int(step), "split": "event", "event": event, **fields}) + "\n"
      )
      self._jsonl.flush()

  def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    """Logs uint8 ``[H, W, 3]`` images to TensorBoard (``{"0/lr": ..., "0/sr": ...}``)."""
    if self.enabled and self._events is not None:
      with self._guard(self._events.path):
        for name, image in images.items():
          self._events.image(name, np.asarray(image, np.uint8), step)

  def write_text(self, step: int, name: str, text: str) -> None:
    """Logs a text note (e.g. the config) to TensorBoard."""
    if self.enabled and self._events is not None:
      with self._guard(self._events.path):
        self._events.text(name, text, step)

  def flush(self) -> None:
    if not self.enabled:
      return
    with self._guard(self.jsonl_path):
      self._jsonl.flush()
      if hasattr(self._jsonl, "fileno"):
        os.fsync(self._jsonl.fileno())
    if self._events is not None:
      with self._guard(self._events.path):
        self._events.flush()

  def close(self) -> None:
    """Flushes and closes the files (after a write error: closes without writing more)."""
    files = [
      (f, path)
      for f, path in ((self._events, None), (self._jsonl, self.jsonl_path))
      if f is not None
    ]
    enabled = self.enabled
    self._jsonl = self._events = None
    for file, path in files:
      try:
        file.close()
      except OSError as error:
        if enabled:
          self.enabled = False
          raise LogWriteError(
            f"Could not write the run log {path or file.path}: {error.strerror or error}"
          ) from error
    self.enabled = False

  def __enter__(self) -> "MetricWriter":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()
