"""The grain datasets under ``TrainPipeline``: the batches of one process, built in the
calling thread, in threads, or in worker processes.

* ``PairSource``: the decoded pairs (in memory, or a ``DecodedCache``) as a ``MapDataset``;
* ``EpochShuffle``: each image once per epoch, in a seeded order per epoch;
* ``RandomAlignedCrop``: grain's seeded random map that crops an aligned LR/HR patch;
* ``local_batches``: this process's rows of every global batch;
* ``worker_batches``: those batches from grain worker processes, in the same order.

``cutblur_jax.data.pipeline`` documents the stream these make.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time
from typing import Any, Sequence

import grain
import numpy as np

from cutblur_jax.data.types import ImagePair

__all__ = [
  "EpochShuffle",
  "PairSource",
  "RandomAlignedCrop",
  "derive_seed",
  "local_batches",
  "worker_batches",
]

Batch = dict[str, np.ndarray]
_ORDER_STREAM, _CROP_STREAM = 0, 1


def derive_seed(seed: int, stream: int) -> int:
  """A 32-bit seed (grain's documented range) for one random stream of ``seed``."""
  return int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint32)[0])


class PairSource(grain.MapDataset):
  """Leaf ``MapDataset``, ``ds[i] = pairs[i % N]``, over decoded pairs in memory or a
  ``DecodedCache``; ``MapDataset.source`` adds ~35 us/read of telemetry (``source.py``:
  byte-size estimate, Prometheus counters)."""

  def __init__(self, pairs: Sequence[ImagePair]):
    super().__init__()
    self._pairs = pairs

  def __len__(self) -> int:
    return len(self._pairs)

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    return self._pairs[index % len(self._pairs)]


class EpochShuffle(grain.MapDataset):
  """``ds[g] = parent[permutation_e[g % N]]``, ``e = g // N``: grain's shuffle contract.

  Drop-in for ``MapDataset.shuffle`` (which also reads indices past ``len`` as later
  epochs), but a cached NumPy permutation per epoch: grain's ``index_shuffle`` costs
  about ``30 ms / N`` per element (milliseconds per sample for a handful of images).
  """

  def __init__(self, parent: grain.MapDataset, *, seed: int):
    super().__init__(parent)
    self._seed, self._n = int(seed), len(parent)
    self._orders: dict[int, list[int]] = {}
    self._lock = threading.Lock()

  def __len__(self) -> int:
    return self._n

  def order(self, epoch: int) -> list[int]:
    """The image permutation of ``epoch`` (the last 8 are cached; thread-safe)."""
    order = self._orders.get(epoch)  # a dict read is atomic: no lock on the hot path
    if order is not None:
      return order
    with self._lock:
      order = self._orders.get(epoch)
      if order is None:
        rng = np.random.default_rng((self._seed, _ORDER_STREAM, epoch))
        order = self._orders[epoch] = rng.permutation(self._n).tolist()
        while len(self._orders) > 8:
          self._orders.pop(next(iter(self._orders)))
      return order

  def __getstate__(self) -> dict[str, Any]:
    # Pickled into grain's worker processes: the lock and the cached orders stay here.
    return {**self.__dict__, "_orders": {}, "_lock": None}

  def __setstate__(self, state: dict[str, Any]) -> None:
    self.__dict__.update(state)
    self._lock = threading.Lock()

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    epoch, position = divmod(index, self._n)
    return self._parent[self.order(epoch)[position] + epoch * self._n]


@dataclasses.dataclass(frozen=True)
class RandomAlignedCrop(grain.transforms.RandomMap):
  """An LR patch at ``(y, x)`` and the HR patch at ``(y, x) * input_scale`` (+ optional flips)."""

  hr_patch: int
  lr_patch: int
  input_scale: int
  flip_and_rotate: bool = False

  def random_map(self, pair: ImagePair, rng: np.random.Generator) -> Batch:
    height, width = pair.lr.shape[:2]
    s, lr_size, hr_size = self.input_scale, self.lr_patch, self.hr_patch
    y, x = int(rng.integers(height - lr_size + 1)), int(rng.integers(width - lr_size + 1))
    hr = pair.hr[y * s : y * s + hr_size, x * s : x * s + hr_size]
    lr = pair.lr[y : y + lr_size, x : x + lr_size]
    if self.flip_and_rotate:  # drawn after the offsets: crops do not depend on the flag
      hflip, vflip, transpose = rng.integers(2, size=3).tolist()
      if hflip:
        hr, lr = hr[:, ::-1], lr[:, ::-1]
      if vflip:
        hr, lr = hr[::-1], lr[::-1]
      if transpose:
        hr, lr = hr.transpose(1, 0, 2), lr.transpose(1, 0, 2)
    return {"hr": hr, "lr": lr}  # views of the cache; _stack copies them


def _stack(rows: Sequence[Batch]) -> Batch:
  # Not grain's make_batch: for one row it returns np.expand_dims, a view of the cache.
  return {key: np.stack([row[key] for row in rows]) for key in ("hr", "lr")}


def local_batches(
  source: grain.MapDataset,
  *,
  seed: int,
  crop: RandomAlignedCrop | None,
  local_batch_size: int,
  process_index: int,
  process_count: int,
) -> grain.MapDataset:
  """The infinite ``MapDataset`` of this process's rows of every global batch.

  With ``crop=None`` the rows are the image indices (``source`` is then ``range(N)``).
  """
  ds = EpochShuffle(source, seed=seed).repeat()
  if crop is not None:
    ds = ds.random_map(crop, seed=derive_seed(seed, _CROP_STREAM))
  batch_fn = functools.partial(np.asarray, dtype=np.int64) if crop is None else _stack
  ds = ds.batch(local_batch_size, drop_remainder=True, batch_fn=batch_fn)
  return ds[process_index::process_count]


def _die_with_parent(worker_index: int, worker_count: int) -> None:
  """grain ``worker_init_fn``: a worker ends when the training process does, even on kill -9.

  A thread polls the parent's pid: ``PR_SET_PDEATHSIG`` would not do, because it fires when
  the *thread* that started the worker ends, and grain starts workers from the threads of
  its interleave.
  """
  del worker_index, worker_count
  parent = os.getppid()

  def watch() -> None:
    while os.getppid() == parent:
      time.sleep(0.5)
    os._exit(0)  # pylint: disable=protected-access

  threading.Thread(target=watch, name="die_with_parent", daemon=True).start()


def worker_batches(
  batches: grain.MapDataset, start: int, *, workers: int, threads: int, ahead: int
) -> grain.DatasetIterator:
  """``batches[start], batches[start + 1], ...`` built by ``workers`` grain processes.

  grain gives worker ``i`` the slice ``[i::workers]`` and reads them round-robin, so the
  order is the single-process order whatever ``workers`` is.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top

  # grain 0.2.18 reads this absl flag in mp_prefetch and fails when the program has not
  # parsed absl's global flags (our CLIs parse their own); google/grain#1355.
  name = "grain_enable_multiprocess_worker_profiling"
  if name in flags.FLAGS and not flags.FLAGS.is_parsed():
    flags.FLAGS[name].present = True
  read = grain.ReadOptions(num_threads=threads, prefetch_buffer_size=ahead if threads else 0)
  options = grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=max(1, ahead))
  # Batches come back pickled through grain's queues, not in /dev/shm segments: a segment
  # still buffered when the iterator closes outlives it (and Docker's /dev/shm is 64 MB).
  no_shm = grain.experimental.DatasetOptions(min_shm_size=1 << 62)
  dataset = grain.experimental.WithOptionsIterDataset(batches[start:].to_iter_dataset(read), no_shm)
  dataset = dataset.mp_prefetch(options, worker_init_fn=_die_with_parent)
  return iter(dataset)
