"""A decoded copy of a data set on local disk, read row by row: the source for large sets.

``DecodedCache(dataset)`` is a ``Sequence[ImagePair]`` over the same pairs as ``dataset`` (a
``FolderDataset``). A pair is decoded the first time any process asks for it, written once
(to a temporary file, then renamed into place) and from then on read back from disk:

* **Memory does not grow with the data set.** A pair's ``hr`` and ``lr`` are ``FileArray``s:
  slicing one reads only the slice's rows of the strips it meets (one ``pread`` a strip),
  and the process holds no image. The kernel's page cache keeps the
  hot files, shared by every process and worker on the host and dropped under memory
  pressure; it is not the process's memory.
* **Each process decodes only what its rows need**, and never twice: the processes of one
  host, grain's worker processes, a resumed run and the next run share one copy.
* **The key is the data.** A file's name is the SHA-256 of the pair's ``cache_key`` (its
  files' paths, sizes and modification times, or how its input is synthesised), so an
  edited image is decoded again and two data sets never collide.

The bytes are those ``dataset[i]`` decodes, so batches are the same from memory or from the
cache (``tests/test_disk_cache.py``). A damaged or truncated file is decoded again; a full
disk turns the cache off with one warning, and training reads from the files.

File format (``.pair``): one JSON line ``{"format", "strip", "shapes": [[H, W, C], [h, w, c]]}``,
then the HR and the LR array, each as its vertical strips of ``STRIP`` columns (the last one
narrower), each strip C-ordered ``uint8``: a crop reads contiguous bytes, not whole rows.
"""

from __future__ import annotations

import collections.abc
import hashlib
import json
import os
import pathlib
import threading
import time
import uuid
import warnings
from typing import Any, Sequence

import numpy as np

from cutblur_jax.data.types import ImagePair
from cutblur_jax.paths import is_url

__all__ = [
  "MEMORY_LIMIT_BYTES",
  "SOURCES",
  "DecodedCache",
  "FileArray",
  "default_cache_dir",
  "resolve_source",
  "supports_disk_cache",
]

_SUFFIX = ".pair"
_FORMAT = "cutblur-jax decoded pair 2"  # part of every key: a new format never reads an old file
# Strip width in pixels: a crop reads whole strip rows, so wider strips read more bytes and
# narrower ones take more reads (128 was the faster of 64, 128 and 256 for 192-pixel crops).
STRIP = 128
_STALE_TEMP_S = 3600  # a temporary file older than this was left by a crash


def default_cache_dir() -> pathlib.Path:
  """``$CUTBLUR_JAX_CACHE`` or ``$XDG_CACHE_HOME/cutblur_jax/decoded`` (``~/.cache/...``)."""
  if os.environ.get("CUTBLUR_JAX_CACHE"):
    return pathlib.Path(os.environ["CUTBLUR_JAX_CACHE"]).expanduser()
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return pathlib.Path(base) / "cutblur_jax" / "decoded"


def supports_disk_cache(dataset: Any) -> bool:
  """Whether ``dataset`` names its pairs' content (``cache_key``), which the cache needs."""
  return callable(getattr(dataset, "cache_key", None))


def _write_pair(path: pathlib.Path, hr: np.ndarray, lr: np.ndarray) -> None:
  """Writes both arrays in strips to a temporary file beside ``path``, then renames it."""
  temp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
  shapes = [list(np.shape(hr)), list(np.shape(lr))]
  header = json.dumps({"format": _FORMAT, "strip": STRIP, "shapes": shapes}).encode() + b"\n"
  try:
    with open(temp, "wb") as file:
      file.write(header)
      for array in (hr, lr):
        for left in range(0, array.shape[1], STRIP):
          file.write(np.ascontiguousarray(array[:, left : left + STRIP], np.uint8).tobytes())
    os.replace(temp, path)
  except BaseException:
    temp.unlink(missing_ok=True)
    raise


_BUFFERS = threading.local()


def _read_buffer(size: int) -> bytearray:
  """This thread's read buffer of at least ``size`` bytes (reused: no allocation per read)."""
  buffer = getattr(_BUFFERS, "buffer", None)
  if buffer is None or len(buffer) < size:
    buffer = _BUFFERS.buffer = bytearray(max(size, 1 << 20))
  return buffer


class FileArray:
  """A ``uint8 [H, W, C]`` array stored in vertical strips ``STRIP`` pixels wide at ``offset``
  in a file: ``array[y0:y1, x0:x1]`` reads rows ``y0:y1`` of the strips that ``x0:x1`` meets
  (one ``pread`` each), so the process holds nothing afterwards.

  It has ``shape``, ``dtype`` and ``ndim``; ``np.asarray(array)`` reads it whole.
  """

  __slots__ = ("path", "offset", "shape")
  dtype = np.dtype(np.uint8)
  ndim = 3

  def __init__(self, path: pathlib.Path, offset: int, shape: tuple[int, int, int]):
    self.path, self.offset, self.shape = path, offset, tuple(shape)

  def __getitem__(self, key) -> np.ndarray:
    if not (
      type(key) is tuple  # pylint: disable=unidiomatic-typecheck
      and len(key) == 2
      and all(type(k) is slice and k.step in (None, 1) for k in key)  # noqa: E721
    ):
      return self[:, :][key]  # anything but a window reads the whole array
    height, width, channels = self.shape
    top, bottom, _ = key[0].indices(height)
    left, right, _ = key[1].indices(width)
    rows, columns = max(0, bottom - top), max(0, right - left)
    window = np.empty((rows, columns, channels), np.uint8)
    if not rows or not columns:
      return window
    buffer = _read_buffer(rows * STRIP * channels)
    descriptor = os.open(self.path, os.O_RDONLY)
    try:
      for strip in range(left // STRIP, (right - 1) // STRIP + 1):
        first = strip * STRIP
        strip_width = min(STRIP, width - first)
        size = rows * strip_width * channels
        start = self.offset + first * height * channels + top * strip_width * channels
        if os.preadv(descriptor, [memoryview(buffer)[:size]], start) != size:
          raise ValueError(f"{self.path} is shorter than its header says")
        block = np.frombuffer(buffer, np.uint8, size).reshape(rows, strip_width, channels)
        a, b = max(left, first), min(right, first + strip_width)
        window[:, a - left : b - left] = block[:, a - first : b - first]
    finally:
      os.close(descriptor)
    return window

  def __array__(self, dtype=None, copy=None) -> np.ndarray:
    whole = self[:, :]
    return whole if dtype is None else whole.astype(dtype)

  def __repr__(self) -> str:
    return f"FileArray({str(self.path)!r}, offset={self.offset}, shape={self.shape})"


def _layout(path: pathlib.Path) -> tuple[tuple[int, tuple[int, ...]], ...]:
  """``((offset, shape), (offset, shape))`` of a ``.pair`` file's arrays; ``ValueError`` if
  it is damaged or of another format."""
  with open(path, "rb") as file:
    line = file.readline(4096)
  try:
    header = json.loads(line)
    shapes = [tuple(int(n) for n in shape) for shape in header["shapes"]]
    ok = header["format"] == _FORMAT and header["strip"] == STRIP and len(shapes) == 2
  except (ValueError, KeyError, TypeError) as error:
    raise ValueError(f"{path}: not a cached pair ({error})") from None
  if not ok or any(len(shape) != 3 for shape in shapes):
    raise ValueError(f"{path}: not a cached pair of this format")
  offset, layout = len(line), []
  for shape in shapes:
    layout.append((offset, shape))
    offset += int(np.prod(shape))
  if os.path.getsize(path) != offset:
    raise ValueError(f"{path}: {os.path.getsize(path)} bytes, expected {offset}")
  return tuple(layout)


class DecodedCache(collections.abc.Sequence):
  """``dataset``'s pairs, decoded once into ``directory`` and read back row by row.

  Args:
    dataset: a data set with ``cache_key(index)`` (``FolderDataset``).
    directory: where the ``.pair`` files go (default ``default_cache_dir()``); local disk,
      shared by every run and process that reads the same files.

  Attributes:
    scale, input_scale, names, description: ``dataset``'s.

  Examples:
    >>> cache = DecodedCache(div2k_dataset("/data/DIV2K", scale=4))  # doctest: +SKIP
    >>> cache[0].hr.shape  # decoded on first use, a FileArray from then on  # doctest: +SKIP
    (1356, 2040, 3)
    >>> cache[0].hr[:48, :48].shape  # reads 48 rows  # doctest: +SKIP
    (48, 48, 3)
  """

  def __init__(self, dataset: Sequence[ImagePair], directory: str | os.PathLike | None = None):
    if not supports_disk_cache(dataset):
      raise ValueError(
        f"The disk cache needs a folder data set (one whose pairs have a cache_key); "
        f"{type(dataset).__name__} has none: use data_source='memory'."
      )
    if directory and is_url(directory):
      raise ValueError(
        f"The decoded-image cache must be a local folder, got {str(directory)!r} "
        "(data_cache_dir): its files are read a few rows at a time."
      )
    self.dataset = dataset
    self.directory = pathlib.Path(directory or default_cache_dir())
    self.scale = getattr(dataset, "scale", None)
    self.input_scale = getattr(dataset, "input_scale", None)
    self.description = getattr(dataset, "description", type(dataset).__name__)
    self.names = list(getattr(dataset, "names", []))
    try:
      self.directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
      raise ValueError(
        f"Cannot create the decoded-image cache {self.directory}: {error}"
      ) from error
    self._files = [self.directory / (self._digest(index) + _SUFFIX) for index in range(len(self))]
    self._remove_stale_temporaries()
    self._layouts: dict[int, tuple[FileArray, FileArray]] = {}  # read once per process
    self._writable = True

  def _digest(self, index: int) -> str:
    key = f"{_FORMAT}\n{self.dataset.cache_key(index)}"
    return hashlib.sha256(key.encode()).hexdigest()[:40]

  def _remove_stale_temporaries(self) -> None:
    now = time.time()
    for temp in self.directory.glob(f".*{_SUFFIX}.*.tmp"):
      try:
        if now - temp.stat().st_mtime > _STALE_TEMP_S:
          temp.unlink()
      except OSError:  # another process removed or renamed it
        pass

  def path(self, index: int) -> pathlib.Path:
    """The cache file of pair ``index``."""
    return self._files[index]

  def cached(self) -> int:
    """How many of the pairs are on disk."""
    return sum(path.exists() for path in self._files)

  def __len__(self) -> int:
    return len(self.dataset)

  def __getitem__(self, index: int) -> ImagePair:
    if not isinstance(index, (int, np.integer)):
      raise TypeError(f"DecodedCache indices must be integers, got {type(index).__name__}.")
    if not -len(self) <= index < len(self):
      raise IndexError(f"index {index} out of range for {len(self)} pairs of {self.description}")
    index = int(index) % len(self)
    name = self.names[index] if self.names else str(index)
    arrays = self._layouts.get(index)  # a dict read is atomic: threads need no lock
    if arrays is None:
      arrays = self._load(index)
    return ImagePair(name, *arrays)

  def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
    path = self._files[index]
    try:
      layout = _layout(path)
    except (OSError, ValueError):  # missing, or damaged: decode and write it again
      return self._decode(index)
    arrays = self._layouts[index] = tuple(FileArray(path, *where) for where in layout)
    return arrays

  def _decode(self, index: int) -> tuple[np.ndarray, np.ndarray]:
    pair = self.dataset[index]
    if self._writable:
      try:
        _write_pair(self._files[index], pair.hr, pair.lr)
      except OSError as error:
        self._writable = False
        warnings.warn(
          f"The decoded-image cache {self.directory} cannot be written ({error.strerror or error}"
          "); training goes on decoding the image files.",
          RuntimeWarning,
          stacklevel=2,
        )
    return pair.hr, pair.lr

  def __repr__(self) -> str:
    return f"DecodedCache({self.description!r}, {len(self)} pairs, in {self.directory})"


SOURCES = ("auto", "memory", "disk", "files")
# "auto" keeps a data set in memory up to this many decoded bytes (DIV2K x4's 800 training
# pairs are about 7 GB; the embedded photos and the benchmark sets are a few MB).
MEMORY_LIMIT_BYTES = 2 << 30


def resolve_source(dataset: Sequence[ImagePair], source: str, *, worker_processes: int = 0) -> str:
  """The training source for ``dataset``: ``source`` itself, or for ``"auto"`` ``"disk"``
  when it can be cached and its pairs decode to more than ``MEMORY_LIMIT_BYTES`` or worker
  processes read it (each would get its own copy of pairs in memory), else ``"memory"``.

  Sources: ``"memory"`` decodes every pair once at start and keeps it in RAM; ``"disk"``
  reads ``DecodedCache``'s memory maps; ``"files"`` decodes a pair's files for every sample.
  """
  if source not in SOURCES:
    raise ValueError(f"`data_source` must be one of {', '.join(SOURCES)}, got {source!r}.")
  if source != "auto":
    if source == "disk" and not supports_disk_cache(dataset):
      raise ValueError(
        f"data_source='disk' needs a folder data set; {getattr(dataset, 'description', '')!r} "
        f"({type(dataset).__name__}) has no files to key a cache on: use 'memory' or 'auto'."
      )
    return source
  if not supports_disk_cache(dataset) or not hasattr(dataset, "decoded_bytes"):
    return "memory"
  if worker_processes:
    return "disk"
  return "disk" if dataset.decoded_bytes() > MEMORY_LIMIT_BYTES else "memory"
