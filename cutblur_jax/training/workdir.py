"""A run's work directory: an exclusive lock, a start that leaves no trace when it fails,
and the checks a resume must pass before anything is written.

* ``WorkdirLock``: ``WORKDIR/.lock`` is held with ``fcntl.flock`` while a run trains
  there. The kernel drops the lock when its process dies (even by ``kill -9``), so a
  stale lock file never blocks a new run; a second live trainer is refused in one line
  naming the holder's PID.
* ``StartGuard``: remembers what the work directory held before the run started; if
  the start fails, removes what the start created (empty checkpoint folders, the lock
  file, the directory itself), so a failed start leaves it as it was.
* ``keep_run_seed``: a resumed run keeps the seed it started with (its batches and
  augmentations continue from the checkpoint); a different ``seed`` is recorded as
  ignored, not written to ``config.json`` as if it had been used.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pathlib
import shutil
from typing import Any

__all__ = ["LOCK_FILE", "StartGuard", "WorkdirBusyError", "WorkdirLock", "keep_run_seed"]

LOCK_FILE = ".lock"


class WorkdirBusyError(RuntimeError):
  """Another live process trains in this work directory."""


class WorkdirLock:
  """The exclusive lock of one work directory (``with WorkdirLock(workdir): ...``).

  Raises:
    WorkdirBusyError: from ``acquire`` when another live process holds it.
    NotADirectoryError: the work directory is a file.
  """

  def __init__(self, workdir: str | os.PathLike):
    self.workdir = pathlib.Path(workdir)
    self.path = self.workdir / LOCK_FILE
    self._file = None

  def acquire(self) -> "WorkdirLock":
    if self.workdir.exists() and not self.workdir.is_dir():
      raise NotADirectoryError(errno.ENOTDIR, "the work directory is a file", str(self.workdir))
    self.workdir.mkdir(parents=True, exist_ok=True)
    file = open(self.path, "a+")
    try:
      fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      file.seek(0)
      holder = file.read().strip() or "unknown"
      file.close()
      raise WorkdirBusyError(
          f"Work directory {self.workdir} is in use by another training run (process "
          f"{holder}, lock {self.path}); wait for it to finish or use another --workdir."
      ) from None
    file.seek(0)
    file.truncate()
    file.write(f"{os.getpid()}\n")
    file.flush()
    self._file = file
    return self

  def release(self) -> None:
    if self._file is not None:
      fcntl.flock(self._file, fcntl.LOCK_UN)
      self._file.close()
      self._file = None

  def __enter__(self) -> "WorkdirLock":
    return self.acquire()

  def __exit__(self, *exc_info) -> None:
    self.release()


class StartGuard:
  """Undoes what a failed start created in a work directory (``undo``)."""

  def __init__(self, workdir: str | os.PathLike):
    self.workdir = pathlib.Path(workdir)
    self.existed = self.workdir.is_dir()
    self.before = ({str(p.relative_to(self.workdir)) for p in self.workdir.rglob("*")}
                   if self.existed else set())

  def undo(self) -> None:
    """Removes the files and empty folders the start added; keeps everything else."""
    if not self.workdir.is_dir():
      return
    if not self.existed:
      shutil.rmtree(self.workdir, ignore_errors=True)
      return
    added = sorted((p for p in self.workdir.rglob("*")
                    if str(p.relative_to(self.workdir)) not in self.before),
                   key=lambda p: len(p.parts), reverse=True)
    for path in added:
      if path.is_dir():
        try:
          path.rmdir()  # only when empty: a folder the start filled is not the start's to drop
        except OSError:
          pass
      else:
        path.unlink(missing_ok=True)


def keep_run_seed(workdir: str | os.PathLike, config: Any) -> str | None:
  """Sets ``config.seed`` to the seed of the run being resumed; says so when they differ.

  A resumed run continues the random stream saved in its checkpoint (run key and input
  position), so another ``seed`` could not take effect; recording it in ``config.json``
  would misstate the run. Returns the one-line note to print, or None.
  """
  path = pathlib.Path(workdir) / "config.json"
  try:
    stored = json.loads(path.read_text()).get("seed")
  except (OSError, ValueError, AttributeError):
    return None  # no readable record: nothing to compare against
  if stored is None or stored == config.seed:
    return None
  given, config.seed = config.seed, int(stored)
  return (f"`seed` {given} is ignored: the resumed run continues with its own seed {stored} "
          "(use a new --workdir for another seed).")
