"""Ctrl-C (SIGINT) and SIGTERM during training: stop at a step boundary, save, say so.

``StopRequests`` replaces the two handlers while a run trains (main thread only). The
first signal only records itself; the loop sees it after the step in flight, saves the
``latest`` checkpoint of that step, waits for the save, and raises ``TrainingInterrupted``,
which the CLI turns into one line and the exit status ``128 + signal`` (130 for SIGINT,
143 for SIGTERM). A second signal while that happens stops at once (``KeyboardInterrupt``
for SIGINT); the newest complete checkpoint is still on disk, since orbax writes a step
to a temporary folder and renames it only when complete.
"""

from __future__ import annotations

import signal
import threading

__all__ = ["StopRequests", "TrainingInterrupted"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(Exception):
  """The run stopped on a signal after saving its ``latest`` checkpoint.

  Attributes:
    signum: the signal (``signal.SIGINT`` or ``signal.SIGTERM``).
    step: the step the saved checkpoint holds.
    exit_status: ``128 + signum``, what a shell expects of a process stopped by it.
  """

  def __init__(self, signum: int, step: int, message: str):
    super().__init__(message)
    self.signum, self.step = int(signum), int(step)
    self.exit_status = 128 + self.signum


class StopRequests:
  """``with StopRequests() as stop: ... if stop.signum: ...`` (see the module docstring)."""

  def __init__(self):
    self.signum: int | None = None
    self._previous = {}

  def _handle(self, signum, frame):
    if self.signum is not None:  # asked twice: stop now
      previous = self._previous.get(signum)
      if callable(previous):
        previous(signum, frame)
      raise KeyboardInterrupt
    self.signum = signum

  def __enter__(self) -> "StopRequests":
    if threading.current_thread() is threading.main_thread():
      for signum in _SIGNALS:
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc_info) -> None:
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)
    self._previous.clear()
