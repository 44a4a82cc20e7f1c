"""What every command-line program in ``experiments/`` does with an error.

Every CLI parses its flags with ``ArgumentParser`` (argparse). ``train.py`` also takes an
ml_collections config, ``--config FILE[:ARG]`` with ``--config.FIELD=VALUE`` overrides:
``parse_config_flags`` hands exactly those flags to ml_collections' ``config_flags`` and
returns the rest for argparse.

A mistake (a bad flag value, data set, file or checkpoint) and a failed write become one
``error: ...`` line on stderr that names the argument or path, with exit status 1; the
traceback is shown only with ``--verbose``. Usage errors (argparse's, and a bad
``--config.FIELD``) exit with 2. Anything else is a bug and keeps its traceback.

Examples:
  >>> try:
  ...   raise OSError(28, "No space left on device", "/full/out.png")
  ... except OSError as error:
  ...   print(error_line(error))
  error: /full/out.png: No space left on device
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import sys
import traceback
from typing import Any, Callable, NamedTuple, Sequence

__all__ = [
  "ArgumentParser",
  "ConfigFlags",
  "EXPECTED_ERRORS",
  "add_network_flags",
  "add_verbose_flag",
  "error_line",
  "parse_config_flags",
  "quiet_library_logs",
  "report",
  "run_program",
]

# The errors the package raises for bad input and failed reads or writes.
EXPECTED_ERRORS = (ValueError, TypeError, OSError, ImportError, KeyError)


class ArgumentParser(argparse.ArgumentParser):
  """``argparse.ArgumentParser`` whose usage errors are one ``error:`` line (exit status 2)."""

  def error(self, message: str):
    print(
      f"error: {' '.join(message.split())} (see {self.prog} --help)", file=sys.stderr, flush=True
    )
    sys.exit(2)


def add_network_flags(parser: argparse.ArgumentParser) -> None:
  """``--raw_weights`` and ``--dtype``: which weights of a checkpoint run, and in what dtype."""
  parser.add_argument(
    "--raw_weights",
    action="store_true",
    help="use the raw weights of a checkpoint trained with EMA (default: "
    "its moving average, the weights training validated)",
  )
  parser.add_argument(
    "--dtype",
    choices=("float32", "bfloat16"),
    default="float32",
    help="computation dtype (bfloat16: faster on GPU/TPU, not exact)",
  )


def add_verbose_flag(parser: argparse.ArgumentParser) -> None:
  parser.add_argument(
    "--verbose", action="store_true", help="show the traceback of an error (for a bug report)"
  )


# Loggers of the libraries underneath, which log a failure with its traceback (orbax's
# background commit thread through absl's logging.exception, asyncio's "Task exception was
# never retrieved") before the error reaches the command's one line.
_LIBRARY_LOGGERS = ("absl", "asyncio", "orbax", "tensorstore", "grain")


def quiet_library_logs(verbose: bool = False) -> None:
  """Silences the libraries' own logs, so a failure is reported once, as the ``error:`` line.

  With ``verbose`` (``--verbose``) they log at WARNING and above, tracebacks included.
  """
  import logging  # pylint: disable=g-import-not-at-top
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top

  level = logging.WARNING if verbose else logging.CRITICAL + 1
  absl_logging.set_verbosity(absl_logging.WARNING if verbose else absl_logging.FATAL)
  for name in _LIBRARY_LOGGERS:
    logging.getLogger(name).setLevel(level)
  if not verbose and not getattr(sys.unraisablehook, "drops_late_callbacks", False):
    sys.unraisablehook = _dropping_late_callbacks(sys.unraisablehook)


def _dropping_late_callbacks(hook):
  """``hook`` but silent for TensorStore's callbacks into orbax's closed event loop.

  After a failed save, orbax's ``asyncio.run`` has closed the loop that TensorStore's
  threads still post results to; TensorStore reports each ``RuntimeError: Event loop is
  closed`` with ``PyErr_WriteUnraisable``. Every other unraisable error is reported.
  """

  def unraisablehook(unraisable):
    if (
      isinstance(unraisable.exc_value, RuntimeError)
      and str(unraisable.exc_value) == "Event loop is closed"
    ):
      return
    hook(unraisable)

  unraisablehook.drops_late_callbacks = True
  return unraisablehook


def error_line(error: BaseException | str) -> str:
  """``error: <message>`` on one line; an ``OSError`` with a file gives ``path: cause``."""
  if isinstance(error, OSError) and getattr(error, "filename", None):
    text = f"{error.filename}: {error.strerror or error}"
  elif isinstance(error, KeyError) and error.args:
    text = str(error.args[0])
  else:
    text = str(error) or type(error).__name__
  return "error: " + " ".join(text.split())


def run_program(main: Callable[[], int]) -> None:
  """Runs a CLI's ``main`` as the program and ends the process with its exit status.

  After an error the process ends without waiting for the libraries' threads (orbax
  finishing a save onto a full disk), which could otherwise keep it from exiting: the
  command has already said what went wrong.
  """
  status = main()
  sys.stdout.flush()
  sys.stderr.flush()
  if status:
    os._exit(status)  # pylint: disable=protected-access
  sys.exit(status)


def report(error: BaseException, *, verbose: bool = False) -> int:
  """Prints ``error_line(error)`` (and the traceback with ``verbose``); returns 1."""
  if verbose:
    traceback.print_exception(error)
  print(error_line(error), file=sys.stderr, flush=True)
  return 1


class ConfigFlags(NamedTuple):
  """What ``parse_config_flags`` took out of the command line."""

  config: Any  # the ml_collections.ConfigDict, overrides applied, locked
  filename: str  # the --config value (FILE or FILE:ARG)
  rest: list[str]  # every other argument, in order, for argparse


def parse_config_flags(
  parser: argparse.ArgumentParser, argv: Sequence[str], *, default: str, name: str = "config"
) -> ConfigFlags:
  """Applies ``--config FILE[:ARG]`` and its ``--config.FIELD=VALUE`` overrides.

  ml_collections' ``config_flags`` does the work, on a private ``absl.flags.FlagValues``,
  so the forms and the typing are its own: ``--config.scale=4`` or ``--config.scale 4``,
  ``--config.use_moa=False`` or ``--noconfig.use_moa``, a tuple field as
  ``--config.augs=cutblur --config.augs=mixup`` or ``--config.prob="(0.5,)"``. Overrides
  must follow ``--config``.

  Raises:
    SystemExit: through ``parser.error`` (status 2) for a bad override, naming the field.
    OSError: the config file could not be loaded (its path is the error's filename).
    ValueError: the config file is not valid Python (the line is named).

  Examples:
    >>> parser = ArgumentParser(prog="train.py")
    >>> flags = parse_config_flags(
    ...     parser, ["--workdir", "run", "--config.scale", "4", "--noconfig.use_moa"],
    ...     default="experiments/configs/default.py")
    >>> flags.config.scale, flags.config.use_moa, flags.rest
    (4, False, ['--workdir', 'run'])
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

  argv = [parser.prog, *argv]
  values = flags.FlagValues()
  try:  # config_flags reads the overrides from argv as it defines the flag
    config_flags.DEFINE_config_file(
      name, default, flag_values=values, sys_argv=argv, lock_config=True
    )
    rest = values(argv, known_only=True)[1:]
  except SyntaxError as error:  # in the config file
    raise ValueError(f"{error.filename}: line {error.lineno}: {error.msg}") from error
  except (AttributeError, KeyError, TypeError, ValueError, flags.Error) as error:
    if "Error whilst parsing config file" in str(error):  # raised by the get_config() itself
      raise ValueError(
        f"the --{name} file's get_config() failed: {str(error).strip().splitlines()[-1]}"
      ) from error
    parser.error(_override_error(error, name))
  filename = values[name].config_filename
  config = values[name].value
  try:  # config_flags defers a failed load to the first use of the config
    getattr(config, "lock", None)
  except OSError as error:
    path = filename.split(":", 1)[0]
    cause = "no such file" if not os.path.isfile(path) else " ".join(str(error).split())
    raise OSError(errno.ENOENT, f"cannot load this --{name} file: {cause}", path) from error
  return ConfigFlags(config, filename, rest)


def _override_error(error: Exception, name: str) -> str:
  """One line for an override config_flags refused; an unknown field gets its nearest name."""
  text = " ".join(str(error).replace("\\n", "\n").split())
  if isinstance(error, (AttributeError, KeyError)):
    field = re.search(r"^\W*([A-Za-z_][\w.]*)", text)
    hint = re.search(r'Did you mean "(\w+)"', text)
    message = f"--{name}.{field.group(1) if field else '?'}: unknown config field"
    return message + (
      f"; did you mean --{name}.{hint.group(1)}?" if hint else "; --help lists them"
    )
  return text if text.startswith("flag --") else f"--{name}: {text}"
