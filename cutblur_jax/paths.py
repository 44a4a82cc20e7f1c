"""Local paths and cloud URLs (``gs://``, ``s3://``, any etils ``epath`` scheme), one way.

Every path a user gives (``--workdir``, ``dataset_root``, ``--checkpoint``, the CLIs' outputs)
goes through ``as_path`` once, at the boundary:

* a local path becomes a ``pathlib.Path``, as it always did;
* a URL becomes an ``etils.epath.Path``, which keeps its scheme through ``/``, ``parent`` and
  ``str()``. ``pathlib.Path("gs://b/run")`` is the local folder ``gs:/b/run``, and
  ``os.path.abspath`` makes it ``$PWD/gs:/b/run``: neither is ever applied to a URL here
  (``absolute`` leaves URLs alone).

An object store has no rename and no append, so the few writes that need them take another
route for a URL: ``data.io.write_atomic`` uploads the finished bytes in one request (an
object appears whole or not at all), the run log rewrites ``metrics.jsonl`` at each flush, and
the work-directory lock (``fcntl``) is local only. Reading ``gs://`` needs ``gcsfs``
(``pip install "cutblur-jax[cloud]"``); orbax writes checkpoints there with TensorStore.

Examples:
  >>> as_path("runs/edsr")
  PosixPath('runs/edsr')
  >>> str(as_path("gs://bucket/runs") / "edsr")
  'gs://bucket/runs/edsr'
  >>> is_url("gs://bucket/runs"), is_url("/data/DIV2K")
  (True, False)
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
from typing import Any, Union

__all__ = ["AnyPath", "absolute", "as_path", "check_backend", "file_identity", "is_url"]

_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+)://")

# pathlib.Path for local files, etils.epath.Path for URLs: both have the pathlib API used here.
AnyPath = Union[pathlib.Path, Any]


def is_url(path: Any) -> bool:
  """Whether ``path`` is a URL (``scheme://...``, an ``epath.Path``'s too) rather than a local
  path."""
  try:
    text = os.fspath(path)
  except TypeError:
    return False
  return isinstance(text, str) and _URL.match(text) is not None


def as_path(path: str | os.PathLike) -> AnyPath:
  """``path`` as a ``pathlib.Path``, or a URL as an ``etils.epath.Path`` (scheme kept)."""
  if is_url(path):
    from etils import epath  # pylint: disable=g-import-not-at-top

    return epath.Path(str(path))
  return pathlib.Path(path)


def absolute(path: str | os.PathLike) -> AnyPath:
  """A local path made absolute; a URL as it is (it is absolute already)."""
  path = as_path(path)
  return path if is_url(path) else path.absolute()


def file_identity(path: str | os.PathLike) -> str:
  """``path``, its size and its modification time: a string that changes when the file does.

  Raises:
    OSError: the file cannot be found or read.
  """
  path = absolute(path)
  stat = path.stat()
  if hasattr(stat, "st_size"):
    return f"{path} {stat.st_size} {stat.st_mtime_ns}"
  return f"{path} {stat.length} {stat.mtime}"  # an epath.StatResult


# The fsspec file system each scheme needs (etils reads URLs through fsspec, or through
# tf.io.gfile when TensorFlow is installed).
_BACKENDS = {"gs": "gcsfs", "gcs": "gcsfs", "s3": "s3fs", "az": "adlfs", "hf": "huggingface_hub"}


def check_backend(path: str | os.PathLike, *, what: str) -> None:
  """A URL whose scheme this machine cannot read is one line naming ``what`` and the package.

  Raises:
    ValueError: e.g. ``--workdir 'gs://b/run' needs gcsfs (pip install "cutblur-jax[cloud]")``.
  """
  if not is_url(path):
    return
  scheme = _URL.match(str(path)).group(1).lower()
  module = _BACKENDS.get(scheme)
  if module is None:
    raise ValueError(
      f"{what} {str(path)!r}: the {scheme}:// scheme is not one etils.epath reads "
      f"({', '.join(f'{s}://' for s in _BACKENDS)})."
    )
  if importlib.util.find_spec(module) is None and importlib.util.find_spec("tensorflow") is None:
    raise ValueError(
      f"{what} {str(path)!r} needs {module} to read {scheme}:// paths "
      f'(pip install "cutblur-jax[cloud]", or pip install {module}).'
    )
