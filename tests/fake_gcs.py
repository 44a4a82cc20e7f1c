"""A fake ``gs://`` for the tests: the URLs of one bucket root served from a local folder.

``fake_gcs(root)`` makes every ``gs://BUCKET/PATH`` read and written as ``root/gs/BUCKET/PATH``,
with no network:

* etils ``epath`` (what cutblur_jax reads and writes paths with): ``epath.testing.mock_epath``,
  each operation's URL mapped onto the folder (and ``glob``/``walk`` results mapped back);
* orbax's array writes, which go to TensorStore's own GCS driver: its kvstore spec for a
  ``gs://`` path becomes TensorStore's file driver on the same folder, and orbax's bucket
  query (hierarchical namespace) answers "no";
* ``paths.check_backend`` finds a stand-in ``gcsfs`` module.

A test oracle, not part of the package.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import os
import sys
import types
from unittest import mock

from etils import epath

os.environ.setdefault(
  "EPATH_USE_TF", "false"
)  # with TensorFlow installed, epath would skip the mock


@contextlib.contextmanager
def fake_gcs(root: str | os.PathLike):
  root = os.path.join(os.fspath(root), "gs")

  def local(path) -> str:
    path = os.fspath(path)
    return os.path.join(root, path[len("gs://") :]) if path.startswith("gs://") else path

  def url(path) -> str:
    path = os.fspath(path)
    return "gs://" + path[len(root) + 1 :] if path.startswith(root + os.sep) else path

  def one(fn, path, *args, **kwargs):
    return fn(local(path), *args, **kwargs)

  def two(fn, source, target, *args, **kwargs):
    return fn(local(source), local(target), *args, **kwargs)

  def glob(fn, pattern):
    return [url(p) for p in fn(local(pattern))]

  def walk(fn, top, **kwargs):
    for folder, folders, files in fn(local(top), **kwargs):
      yield url(folder), folders, files

  from orbax.checkpoint._src.path import gcs_utils  # pylint: disable=g-import-not-at-top

  def kvstore(path):
    bucket, relative = gcs_utils.parse_gcs_path(path, add_trailing_slash=False)
    return {"driver": "file", "path": os.path.join(root, bucket, relative)}

  gcsfs = types.ModuleType("gcsfs")
  gcsfs.__spec__ = importlib.machinery.ModuleSpec("gcsfs", None)
  with contextlib.ExitStack() as stack:
    stack.enter_context(
      epath.testing.mock_epath(
        open=one,
        exists=one,
        isdir=one,
        listdir=one,
        makedirs=one,
        mkdir=one,
        remove=one,
        rmtree=one,
        stat=one,
        glob=glob,
        walk=walk,
        rename=two,
        replace=two,
        copy=two,
      )
    )
    stack.enter_context(
      mock.patch.object(gcs_utils, "is_hierarchical_namespace_enabled", lambda p: False)
    )
    stack.enter_context(mock.patch.object(gcs_utils, "get_kvstore_for_gcs", kvstore))
    stack.enter_context(mock.patch.dict(sys.modules, {"gcsfs": gcsfs}))
    yield root
