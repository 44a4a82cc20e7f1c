"""Run logs: TensorBoard event files and a JSON-lines metrics file in the work directory.

``MetricWriter`` writes every record twice: TensorBoard scalars/images
(``tensorboardX``, readable with ``tensorboard --logdir WORKDIR``) and one JSON
object per line in ``WORKDIR/metrics.jsonl`` (``{"step": ..., "split": "train"
| "eval", name: value, ...}``), which needs nothing to read. Only process 0 of
a multi-host run writes; elsewhere every method is a no-op.

Examples:
  >>> writer = MetricWriter("/tmp/run")  # doctest: +SKIP
  >>> writer.write_scalars(100, {"loss": 3.2}, split="train")  # doctest: +SKIP
  >>> writer.close()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from typing import Any, Mapping

import numpy as np

METRICS_FILE = "metrics.jsonl"


def _json_value(value: Any) -> Any:
  value = np.asarray(value).item() if np.ndim(value) == 0 else np.asarray(value).tolist()
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)  # JSON has no NaN/inf; keep the fact readable
  return value


def read_metrics(workdir: str | os.PathLike) -> list[dict[str, Any]]:
  """The records of ``WORKDIR/metrics.jsonl`` (a torn last line from a crash is skipped)."""
  path = pathlib.Path(workdir) / METRICS_FILE
  if not path.exists():
    return []
  records = []
  for line in path.read_text().splitlines():
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:
      continue
  return records


class MetricWriter:
  """TensorBoard + JSON-lines writer for one run (process 0 only).

  Args:
    workdir: the run's work directory (created if needed).
    enabled: write anything at all (default: only on ``jax.process_index() == 0``).
  """

  def __init__(self, workdir: str | os.PathLike, *, enabled: bool | None = None):
    if enabled is None:
      import jax  # pylint: disable=g-import-not-at-top
      enabled = jax.process_index() == 0
    self.enabled = bool(enabled)
    self.workdir = pathlib.Path(workdir)
    self._tensorboard = None
    self._jsonl = None
    if self.enabled:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self.workdir.mkdir(parents=True, exist_ok=True)
      self._tensorboard = SummaryWriter(logdir=str(self.workdir), flush_secs=30)
      self._jsonl = open(self.workdir / METRICS_FILE, "a", buffering=1)

  def write_scalars(self, step: int, scalars: Mapping[str, Any], *, split: str = "train") -> None:
    """Logs ``scalars`` at ``step`` under ``split/`` (TensorBoard) and as one JSON line."""
    if not self.enabled:
      return
    record = {"step": int(step), "split": split}
    for name, value in scalars.items():
      if isinstance(value, str):  # a label such as which weights were measured: JSON only
        record[name] = value
        continue
      record[name] = _json_value(value)
      scalar = float(np.asarray(value))
      self._tensorboard.add_scalar(f"{split}/{name}", scalar, int(step))
    self._jsonl.write(json.dumps(record) + "\n")

  def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    """Logs uint8 ``[H, W, 3]`` images (e.g. ``{"0/lr": ..., "0/sr": ..., "0/hr": ...}``)."""
    if not self.enabled:
      return
    for name, image in images.items():
      self._tensorboard.add_image(name, np.asarray(image, np.uint8), int(step), dataformats="HWC")

  def write_text(self, step: int, name: str, text: str) -> None:
    """Logs a text note (e.g. the config) to TensorBoard."""
    if self.enabled:
      self._tensorboard.add_text(name, text, int(step))

  def flush(self) -> None:
    if self.enabled:
      self._tensorboard.flush()
      self._jsonl.flush()

  def close(self) -> None:
    if self.enabled and self._tensorboard is not None:
      self._tensorboard.close()
      self._jsonl.close()
      self._tensorboard = self._jsonl = None
      self.enabled = False

  def __enter__(self) -> "MetricWriter":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()
