"""A decoded copy of a data set on local disk, memory-mapped: the source for sets larger than RAM.

``DecodedCache(dataset)`` is a ``Sequence[ImagePair]`` over the same pairs as ``dataset`` (a
``FolderDataset``), whose ``hr`` and ``lr`` are read-only ``np.memmap`` views of one file per
pair. A pair is decoded the first time any process asks for it, written once (to a temporary
file, then renamed into place) and from then on read from the page cache:

* **Memory does not grow with the data set.** A process holds the pages it touches, which
  belong to the kernel's page cache: shared by every process and worker on the host, and
  dropped under memory pressure instead of swapping.
* **Each process decodes only what its rows need**, and never twice: the processes of one
  host, grain's worker processes, a resumed run and the next run share one copy.
* **The key is the data.** A file's name is the SHA-256 of the pair's ``cache_key`` (its
  files' paths, sizes and modification times, or how its input is synthesised), so an
  edited image is decoded again and two data sets never collide.

The bytes are those ``dataset[i]`` decodes, so batches are the same from memory or from the
cache (``tests/test_disk_cache.py``). A damaged or truncated file is decoded again; a full
disk turns the cache off with one warning, and training reads from the files.

File format (``.pair``): the HR and then the LR array, each as ``numpy.lib.format`` writes an
``.npy`` file (header, then C-ordered ``uint8`` data).
"""

from __future__ import annotations

import collections
import collections.abc
import hashlib
import mmap
import os
import pathlib
import resource
import threading
import time
import uuid
import warnings
from typing import Any, Sequence

import numpy as np

from cutblur_jax.data.types import ImagePair

__all__ = [
  "MEMORY_LIMIT_BYTES",
  "SOURCES",
  "DecodedCache",
  "default_cache_dir",
  "resolve_source",
  "supports_disk_cache",
]

_SUFFIX = ".pair"
_FORMAT = "cutblur-jax decoded pair 1"  # part of every key: a new format never reads an old file
_STALE_TEMP_S = 3600
_MAP_FLAGS = mmap.MAP_SHARED | getattr(
  mmap, "MAP_POPULATE", 0
)  # temporary files older than this are left by a crash


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
  """Writes both arrays to a temporary file beside ``path``, then renames it into place."""
  temp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
  try:
    with open(temp, "wb") as file:
      np.lib.format.write_array(file, np.ascontiguousarray(hr), allow_pickle=False)
      np.lib.format.write_array(file, np.ascontiguousarray(lr), allow_pickle=False)
    os.replace(temp, path)
  except BaseException:
    temp.unlink(missing_ok=True)
    raise


def _read_pair(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
  """Read-only views of a ``.pair`` file's two arrays; ``ValueError`` if it is damaged."""
  layout = []
  with open(path, "rb") as file:
    for _ in range(2):
      version = np.lib.format.read_magic(file)
      if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(file)
      else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(file)
      if fortran or dtype != np.uint8 or len(shape) != 3:
        raise ValueError(f"{path}: not a cached uint8 [H, W, C] pair")
      layout.append((file.tell(), tuple(shape)))
      file.seek(int(np.prod(shape)), os.SEEK_CUR)
    end = file.tell()
  if os.path.getsize(path) != end:
    raise ValueError(f"{path}: {os.path.getsize(path)} bytes, expected {end}")
  with open(path, "rb") as file:
    # MAP_POPULATE maps every page at once (they are in the page cache once decoded): a
    # crop then copies without a page fault per row. Plain ndarrays over the map, not
    # np.memmap, whose Python-level slicing costs more than the copy.
    data = mmap.mmap(file.fileno(), 0, flags=_MAP_FLAGS, prot=mmap.PROT_READ)
  return tuple(
    np.frombuffer(data, np.uint8, int(np.prod(shape)), start).reshape(shape)
    for start, shape in layout
  )


class DecodedCache(collections.abc.Sequence):
  """``dataset``'s pairs, decoded once into ``directory`` and read back memory-mapped.

  Args:
    dataset: a data set with ``cache_key(index)`` (``FolderDataset``).
    directory: where the ``.pair`` files go (default ``default_cache_dir()``); local disk,
      shared by every run and process that reads the same files.
    max_open: memory maps kept open (each holds a file descriptor); default: every pair,
      up to half the process's file limit (``RLIMIT_NOFILE``) and at most 4096.

  Attributes:
    scale, input_scale, names, description: ``dataset``'s.

  Examples:
    >>> cache = DecodedCache(div2k_dataset("/data/DIV2K", scale=4))  # doctest: +SKIP
    >>> cache[0].hr.shape  # decoded on first use, memory-mapped from then on  # doctest: +SKIP
    (1356, 2040, 3)
  """

  def __init__(
    self,
    dataset: Sequence[ImagePair],
    directory: str | os.PathLike | None = None,
    *,
    max_open: int | None = None,
  ):
    if not supports_disk_cache(dataset):
      raise ValueError(
        f"The disk cache needs a folder data set (one whose pairs have a cache_key); "
        f"{type(dataset).__name__} has none: use data_source='memory'."
      )
    self.dataset = dataset
    self.directory = pathlib.Path(directory or default_cache_dir())
    self.scale = getattr(dataset, "scale", None)
    self.input_scale = getattr(dataset, "input_scale", None)
    self.description = getattr(dataset, "description", type(dataset).__name__)
    self.names = list(getattr(dataset, "names", []))
    if max_open is None:
      limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
      limit = 8192 if limit == resource.RLIM_INFINITY else limit
      max_open = min(len(dataset), 4096, limit // 2)
    self.max_open = max(1, int(max_open))
    try:
      self.directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
      raise ValueError(
        f"Cannot create the decoded-image cache {self.directory}: {error}"
      ) from error
    self._files = [self.directory / (self._digest(index) + _SUFFIX) for index in range(len(self))]
    self._remove_stale_temporaries()
    self._open: collections.OrderedDict[int, tuple[np.ndarray, np.ndarray]] = (
      collections.OrderedDict()
    )
    self._lock = threading.Lock()
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
    with self._lock:
      arrays = self._open.get(index)
      if arrays is not None:
        self._open.move_to_end(index)
    if arrays is None:
      arrays = self._load(index)
    return ImagePair(name, *arrays)

  def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
    path = self._files[index]
    try:
      arrays = _read_pair(path)
    except FileNotFoundError:
      return self._decode(index)
    except (OSError, ValueError):  # damaged: decode and write it again
      return self._decode(index)
    with self._lock:
      self._open[index] = arrays
      while len(self._open) > self.max_open:
        self._open.popitem(last=False)
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

  def __getstate__(self) -> dict[str, Any]:
    # Pickled into grain's worker processes: paths travel, open maps and the lock do not.
    state = dict(self.__dict__)
    state["_open"], state["_lock"] = collections.OrderedDict(), None
    return state

  def __setstate__(self, state: dict[str, Any]) -> None:
    self.__dict__.update(state)
    self._lock = threading.Lock()

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
