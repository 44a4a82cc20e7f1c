"""Where a command may write: one rule for every output of the command-line programs.

``RULE`` is the rule, as each command's ``--help`` states it:

* An output may go anywhere, a work directory included (``RUN/eval.json``,
  ``RUN/model.onnx``, ``RUN/sr/``), but not into a checkpoint folder (a work directory's
  ``checkpoints/``, or a model checkpoint), not onto an input or a work directory's own
  files (``config.json``, ``metrics.jsonl``, ...), and not into a folder of inputs.
* An existing output is replaced only with ``--overwrite``, and only when it is what the
  command itself writes (recognised by its format: a report, a PNG, an export, a converted
  checkpoint). A folder that holds an input, and a work directory, are never replaced.

``check_output`` applies it to a file or folder a command is about to write, before any
work starts; ``check_replace`` to each file written into an output folder.

Examples:
  >>> import tempfile
  >>> run = pathlib.Path(tempfile.mkdtemp())  # a work directory
  >>> _ = (run / "config.json").write_text('{"dataset": "embedded", "num_train_steps": 9}')
  >>> check_output(run / "eval.json", flag="--json", inputs={"--checkpoint": run},
  ...              overwrite=False, recognise=is_json_report).name
  'eval.json'
  >>> check_output(run / "checkpoints" / "eval.json", flag="--json", inputs={},
  ...              overwrite=False, recognise=is_json_report)
  Traceback (most recent call last):
  ...
  ValueError: --json '.../checkpoints/eval.json' is inside the checkpoint folder ...
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Callable, Literal, Mapping

from cutblur_jax import checkpoint
from cutblur_jax.paths import as_path, is_url

__all__ = [
  "RULE",
  "check_output",
  "check_replace",
  "is_converted_checkpoint",
  "is_json_report",
  "is_png",
]

RULE = (
  "Outputs may go into a work directory, but never into a checkpoint folder "
  "(checkpoints/... or a model checkpoint), onto an input or a run's own files, or into "
  "a folder of inputs; --overwrite replaces only a file or folder that this command "
  "writes, never an input or a work directory."
)

# The files a training run writes at the top of its work directory.
_RUN_FILES = (checkpoint.CONFIG_FILE, checkpoint.METRICS_FILE, ".lock", "study_run.json")

Recogniser = Callable[[pathlib.Path], bool]


def _absolute(path: str | os.PathLike) -> pathlib.Path:
  if is_url(path):  # a URL is absolute already, and has no links to resolve
    return as_path(path)
  return pathlib.Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _is_run_file(path: pathlib.Path) -> bool:
  return (path.name in _RUN_FILES or path.name.startswith("events.out.tfevents")) and (
    checkpoint.is_work_directory(path.parent)
  )


def _protected_by_layout(target: pathlib.Path) -> str | None:
  """Why ``target`` lies in a checkpoint or is a run's own file, or None."""
  if checkpoint.is_work_directory(target):
    return f"is the work directory {str(target)!r}"
  if _is_run_file(target):
    return f"is the file {target.name} of the work directory {str(target.parent)!r}"
  for folder in (target, *target.parents):
    # A model checkpoint itself may be replaced (by convert_torch.py), never written into.
    if folder != target and checkpoint.is_model_checkpoint(folder):
      return f"is inside the model checkpoint {str(folder)!r}"
    if folder.name == checkpoint.CHECKPOINTS_DIR and checkpoint.is_work_directory(folder.parent):
      return f"is inside the checkpoint folder {str(folder)!r}"
  return None


def _protected_by_inputs(
  target: pathlib.Path, inputs: Mapping[str, str | os.PathLike | None]
) -> str | None:
  """Why ``target`` is, holds, or lies in a folder of, one of ``inputs``, or None."""
  for flag, value in inputs.items():
    if value is None or value == "" or not as_path(value).exists():
      continue
    source = _absolute(value)
    if target == source:
      return f"would be written onto the input {flag} {str(source)!r}"
    if target in source.parents:
      return f"holds the input {flag} {str(source)!r}"
    if source.is_dir() and source in target.parents and not checkpoint.is_work_directory(source):
      return f"is inside the input folder of {flag} ({str(source)!r})"
  return None


def check_output(
  path: str | os.PathLike,
  *,
  flag: str,
  inputs: Mapping[str, str | os.PathLike | None],
  overwrite: bool,
  recognise: Recogniser | None = None,
  kind: Literal["file", "folder", "directory"] = "file",
) -> pathlib.Path:
  """Checks ``RULE`` for one output before the command writes it; returns its path.

  Args:
    path: the output the command will write.
    flag: the command-line flag that names it, for the error (``--json``).
    inputs: every input of the command by flag (``{"--checkpoint": ..., "--input": ...}``);
      a missing path or None is skipped.
    overwrite: the command's ``--overwrite``.
    recognise: whether an existing output is one this command writes (so ``overwrite`` may
      replace it); not used for a ``"folder"``.
    kind: ``"file"``; ``"folder"``, a folder that receives files (``--save_images``,
      ``infer.py --output``: check each with ``check_replace``); or ``"directory"``, one
      written whole (``convert_torch.py --output``).

  Returns:
    ``path`` as a ``pathlib.Path``, as given (relative stays relative).

  Raises:
    ValueError: the output breaks the rule, naming ``flag``, the path and the reason.
  """
  given = as_path(path)
  target = _absolute(path)
  reason = _protected_by_inputs(target, inputs) or _protected_by_layout(target)
  if reason is not None:
    raise ValueError(f"{flag} {str(given)!r} {reason}; write it elsewhere.")
  if kind == "folder":
    if target.exists() and not target.is_dir():
      raise ValueError(f"{flag} {str(given)!r} is a file; give a folder.")
    return given
  if kind == "file" and target.is_dir():
    raise ValueError(f"{flag} {str(given)!r} is a folder; give a file name.")
  check_replace(target, flag=flag, overwrite=overwrite, recognise=recognise)
  return given


def check_replace(
  path: pathlib.Path, *, flag: str, overwrite: bool, recognise: Recogniser | None
) -> None:
  """Checks one file that a command writes into its output folder (``--save_images``).

  Raises:
    ValueError: ``path`` exists and ``overwrite`` is off, or it is not what the command
      writes (e.g. not a PNG), naming ``flag`` and the file.
  """
  if not path.exists():
    return
  if not overwrite:
    raise ValueError(f"{flag} {str(path)!r} exists; pass --overwrite to replace it.")
  if recognise is None or not recognise(path):
    raise ValueError(
      f"{flag} {str(path)!r} exists and is not an output of this command, so "
      "--overwrite leaves it alone."
    )


def is_png(path: pathlib.Path) -> bool:
  """Whether ``path`` is a PNG file (by its signature)."""
  try:
    with as_path(path).open("rb") as stream:
      return stream.read(8) == b"\x89PNG\r\n\x1a\n"
  except OSError:
    return False


def is_json_report(path: pathlib.Path, keys: tuple[str, ...] = ("images",)) -> bool:
  """Whether ``path`` is a JSON object with ``keys`` (a report of ``evaluate.py``)."""
  try:
    record = json.loads(path.read_text())
  except (OSError, ValueError):
    return False
  return isinstance(record, dict) and set(keys) <= set(record)


def is_converted_checkpoint(path: pathlib.Path) -> bool:
  """Whether ``path`` is a ``checkpoint.save_model`` folder and holds nothing else."""
  if not path.is_dir() or not checkpoint.is_model_checkpoint(path):
    return False
  # Orbax's own files beside the items: _CHECKPOINT_METADATA, and from 0.12 commit_success.txt.
  items = {checkpoint.PARAMS_ITEM, checkpoint.EMA_ITEM, checkpoint.ARCH_ITEM, "commit_success.txt"}
  return all(child.name in items or child.name.startswith("_") for child in path.iterdir())
