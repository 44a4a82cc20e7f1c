"""A run's work directory: an exclusive lock, a start that leaves no trace when it fails,
and the checks a resume must pass before anything is written.

* ``WorkdirLock``: ``WORKDIR/.lock`` is held with ``fcntl.flock`` while a run trains
  there. The kernel drops the lock when its process dies (even by ``kill -9``), so a
  stale lock file never blocks a new run; a second live trainer is refused in one line
  naming the holder's PID. A work directory on an object store (``gs://``) has no lock:
  nothing there can stand for a live process, so starting two runs in one is the user's
  mistake to avoid.
* ``StartGuard``: remembers what the work directory held before the run started; if
  the start fails, removes what the start created (empty checkpoint folders, the lock
  file, the directory itself), so a failed start leaves it as it was.
* ``check_workdir``: an existing folder that holds anything but a work directory of this
  project is refused, so a run never writes its ``config.json`` over a user's file or
  trains into a converted model's folder.
* ``run_seed``: a resumed run keeps the seed it started with (its batches and
  augmentations continue from the checkpoint); a different ``seed`` is recorded as
  ignored, not written to ``config.json`` as if it had been used.
* ``config_changes``: what a resume would change in the run's recorded config, besides
  ``RESUMABLE_FIELDS`` (how long and how it runs, not what it learns or measures).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
from typing import Any

from cutblur_jax import checkpoint
from cutblur_jax.paths import as_path, is_url

__all__ = [
  "LOCK_FILE",
  "RESUMABLE_FIELDS",
  "StartGuard",
  "WorkdirBusyError",
  "WorkdirLock",
  "check_workdir",
  "config_changes",
  "run_seed",
]

LOCK_FILE = ".lock"
# Config fields a resume may change: the run's length and cadence, and how it runs.
RESUMABLE_FIELDS = frozenset(
  {
    "num_train_steps",
    "eval_every_steps",
    "checkpoint_every_steps",
    "log_every_steps",
    "keep_checkpoints",
    "num_sample_images",
    "progress_bar",
    "num_workers",
    "prefetch",
    "data_source",  # the batches are the same from every source
    "data_cache_dir",
    "worker_processes",
    "distributed",
    "coordinator_address",
    "num_processes",
    "process_id",
    "seed",  # kept from the run (run_seed)
    "pretrain",  # read only by a fresh start
    "dataset_root",  # where the same data set lives: it may move between machines
    "valid_dataset_root",
  }
)


class WorkdirBusyError(RuntimeError):
  """Another live process trains in this work directory."""


class WorkdirLock:
  """The exclusive lock of one work directory (``with WorkdirLock(workdir): ...``).

  Raises:
    WorkdirBusyError: from ``acquire`` when another live process holds it.
    NotADirectoryError: the work directory is a file.
  """

  def __init__(self, workdir: str | os.PathLike):
    self.workdir = as_path(workdir)
    self.path = self.workdir / LOCK_FILE
    self._file = None

  def acquire(self) -> "WorkdirLock":
    if self.workdir.exists() and not self.workdir.is_dir():
      raise NotADirectoryError(errno.ENOTDIR, "the work directory is a file", str(self.workdir))
    self.workdir.mkdir(parents=True, exist_ok=True)
    if is_url(self.workdir):  # an object store has no lock: one run per work directory
      return self
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


def _contents(folder) -> set[str]:
  """Every file and folder under ``folder``, relative to it (``glob("**")`` is refused on
  an object store, where ``walk`` lists it one folder per request)."""
  if not is_url(folder):
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}

  def bare(path) -> str:  # fsspec's walk may give its folders without the scheme
    return str(path).split("://", 1)[-1].rstrip("/")

  prefix = bare(folder) + "/"
  names = set()
  for root, folders, files in folder.walk():
    base = bare(root)[len(prefix) :] if bare(root).startswith(prefix) else ""
    names.update(f"{base}/{name}" if base else name for name in (*folders, *files))
  return names


class StartGuard:
  """Undoes what a failed start created in a work directory.

  Made before the start touches the folder (it notes what is there); as a context
  manager, ``undo`` runs when the block raises before ``commit()``, the start's last act.

  Examples:
    >>> guard = StartGuard("/tmp/run")  # doctest: +SKIP
    >>> with lock, guard:  # doctest: +SKIP
    ...   start()  # a failure here leaves /tmp/run as it was
    ...   guard.commit()
  """

  def __init__(self, workdir: str | os.PathLike):
    self.workdir = as_path(workdir)
    self.existed = self.workdir.is_dir()
    self.before = _contents(self.workdir) if self.existed else set()
    self.committed = False

  def commit(self) -> None:
    """The start succeeded: what it created stays."""
    self.committed = True

  def __enter__(self) -> "StartGuard":
    return self

  def __exit__(self, exc_type, *exc_info) -> None:
    if exc_type is not None and not self.committed:
      self.undo()

  def undo(self) -> None:
    """Removes the files and empty folders the start added; keeps everything else."""
    if not self.workdir.is_dir():
      return
    if not self.existed:
      if is_url(self.workdir):
        self.workdir.rmtree(missing_ok=True)
      else:
        shutil.rmtree(self.workdir, ignore_errors=True)
      return
    added = sorted(
      (self.workdir / name for name in _contents(self.workdir) - self.before),
      key=lambda p: len(p.parts),
      reverse=True,
    )
    for path in added:
      if path.is_dir():
        try:
          path.rmdir()  # only when empty: a folder the start filled is not the start's to drop
        except OSError:
          pass
      else:
        path.unlink(missing_ok=True)


def run_seed(workdir: str | os.PathLike, seed: int) -> tuple[int, str | None]:
  """``(seed, note)``: the seed of the run being resumed, and a note when ``seed`` differs.

  A resumed run continues the random stream saved in its checkpoint (run key and input
  position), so another ``seed`` could not take effect; recording it in ``config.json``
  would misstate the run. The note is the one line to print, or None.
  """
  path = as_path(workdir) / checkpoint.CONFIG_FILE
  try:
    stored = json.loads(path.read_text()).get("seed")
  except (OSError, ValueError, AttributeError):
    return seed, None  # no readable record: nothing to compare against
  if stored is None or stored == seed:
    return seed, None
  return int(stored), (
    f"`seed` {seed} is ignored: the resumed run continues with its own seed {stored} "
    "(use a new --workdir for another seed)."
  )


def check_workdir(workdir: str | os.PathLike) -> None:
  """Refuses an existing, non-empty folder that is not a work directory of this project.

  Raises:
    ValueError: naming the folder and one of the entries it holds.
  """
  path = as_path(workdir)
  if not path.is_dir():
    return  # new (or a file: WorkdirLock names it)
  entries = sorted(p.name for p in path.iterdir() if p.name != LOCK_FILE)
  if entries and not checkpoint.is_work_directory(path):
    more = f" and {len(entries) - 1} more" if len(entries) > 1 else ""
    raise ValueError(
      f"Work directory {path} is a folder that holds other files ({entries[0]}"
      f"{more}) and is no training run; give a new or empty folder, or the work "
      "directory of a run to resume."
    )


def config_changes(workdir: str | os.PathLike, config: Any) -> dict[str, tuple[Any, Any]]:
  """``{field: (recorded, given)}`` for each field outside ``RESUMABLE_FIELDS`` that differs.

  Compares the resolved ``config`` with the work directory's ``config.json`` (the resolved
  config the run started with). A field one side lacks (a newer or older version of the
  package) is not compared. Returns ``{}`` when there is no readable record.
  """
  try:
    stored = json.loads((as_path(workdir) / checkpoint.CONFIG_FILE).read_text())
  except (OSError, ValueError):
    return {}
  if not isinstance(stored, dict):
    return {}
  given = json.loads(config.to_json_best_effort())
  return {
    name: (stored[name], given[name])
    for name in sorted(set(stored) & set(given))
    if name not in RESUMABLE_FIELDS and not checkpoint.same_value(stored[name], given[name])
  }
