"""What every command-line program in ``experiments/`` does with an error.

A mistake (a bad flag value, data set, file or checkpoint) and a failed write become one
``error: ...`` line on stderr that names the argument or path, with exit status 1; the
traceback is shown only with ``--verbose``. Usage errors (argparse's) exit with 2.
Anything else is a bug and keeps its traceback.

Examples:
  >>> try:
  ...   raise OSError(28, "No space left on device", "/full/out.png")
  ... except OSError as error:
  ...   print(error_line(error))
  error: /full/out.png: No space left on device
"""

from __future__ import annotations

import argparse
import sys
import traceback

__all__ = ["ArgumentParser", "EXPECTED_ERRORS", "add_verbose_flag", "error_line", "report"]

# The errors the package raises for bad input and failed reads or writes.
EXPECTED_ERRORS = (ValueError, TypeError, OSError, ImportError, KeyError)


class ArgumentParser(argparse.ArgumentParser):
  """``argparse.ArgumentParser`` whose usage errors are one ``error:`` line (exit status 2)."""

  def error(self, message: str):
    print(f"error: {' '.join(message.split())} (see {self.prog} --help)", file=sys.stderr,
          flush=True)
    sys.exit(2)


def add_verbose_flag(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--verbose", action="store_true",
                      help="show the traceback of an error (for a bug report)")


def error_line(error: BaseException | str) -> str:
  """``error: <message>`` on one line; an ``OSError`` with a file gives ``path: cause``."""
  if isinstance(error, OSError) and getattr(error, "filename", None):
    text = f"{error.filename}: {error.strerror or error}"
  elif isinstance(error, KeyError) and error.args:
    text = str(error.args[0])
  else:
    text = str(error) or type(error).__name__
  return "error: " + " ".join(text.split())


def report(error: BaseException, *, verbose: bool = False) -> int:
  """Prints ``error_line(error)`` (and the traceback with ``verbose``); returns 1."""
  if verbose:
    traceback.print_exception(error)
  print(error_line(error), file=sys.stderr, flush=True)
  return 1
