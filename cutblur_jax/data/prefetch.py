"""Host-side helpers of the input pipeline: reading pairs in threads, prefetching to devices."""

from __future__ import annotations

import collections
import concurrent.futures
from typing import Any, Iterable, Mapping, Sequence

import jax
import numpy as np

from cutblur_jax.data.types import ImagePair

__all__ = ["DevicePrefetcher", "LoadedPairs", "load_pairs", "prefetch_to_device"]


class LoadedPairs(list):
  """The pairs of a data set read into memory, with its ``scale`` and ``input_scale``."""

  def __init__(self, pairs: Iterable[ImagePair], *, scale: int | None, input_scale: int | None):
    super().__init__(pairs)
    if scale is not None:
      self.scale = int(scale)
    if input_scale is not None:
      self.input_scale = int(input_scale)


def load_pairs(
  dataset: Sequence[ImagePair],
  *,
  num_workers: int = 2,
  count: int | None = None,
  indices: Sequence[int] | None = None,
) -> list[ImagePair]:
  """Reads every pair of ``dataset`` (or its first ``count``, or those at ``indices``) with a
  thread pool.

  Decoding releases the GIL, so threads read in parallel.

  Args:
    dataset: a sequence of ``ImagePair`` (folder, TFDS or embedded data set).
    num_workers: reader threads; 0 reads in the calling thread.
    count: read only the first ``count`` pairs (default: all).
    indices: read only these pairs, in this order (e.g. one process's share).

  Returns:
    The pairs in order, as a list that keeps the data set's ``scale`` and ``input_scale``
    attributes (``LoadedPairs``).

  Examples:
    >>> valid = load_pairs(div2k_dataset(root, split="validation"))  # doctest: +SKIP
  """
  if indices is None:
    indices = range(len(dataset) if count is None else min(int(count), len(dataset)))
  if num_workers <= 0:
    pairs = [dataset[i] for i in indices]
  else:
    with concurrent.futures.ThreadPoolExecutor(
      num_workers, thread_name_prefix="load_pairs"
    ) as pool:
      pairs = list(pool.map(dataset.__getitem__, indices))
  return LoadedPairs(
    pairs, scale=getattr(dataset, "scale", None), input_scale=getattr(dataset, "input_scale", None)
  )


class DevicePrefetcher:
  """Iterator that keeps ``size`` host batches in flight to the devices.

  Its ``get_state()`` is the position of the next batch it will *yield* (not of
  the batches already transferred), so a checkpoint taken between steps
  resumes exactly.
  """

  def __init__(
    self,
    iterator: Iterable[Mapping[str, np.ndarray]],
    sharding: jax.sharding.Sharding,
    size: int = 2,
  ):
    if size < 1:
      raise ValueError(f"`size` must be >= 1, got {size}.")
    self._source = iterator
    self._iterator = iter(iterator)
    self.sharding, self.size = sharding, int(size)
    self._queue: collections.deque[tuple[Any, Any]] = collections.deque()

  def _put(self, batch):
    return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(self.sharding, np.asarray(x)), batch
    )

  def _fill(self) -> None:
    while len(self._queue) < self.size:
      state = self._source.get_state() if hasattr(self._source, "get_state") else None
      try:
        batch = next(self._iterator)
      except StopIteration:
        return
      self._queue.append((state, self._put(batch)))

  def __iter__(self) -> "DevicePrefetcher":
    return self

  def __next__(self):
    self._fill()
    if not self._queue:
      raise StopIteration
    _, batch = self._queue.popleft()
    self._fill()
    return batch

  def get_state(self) -> dict[str, Any]:
    """The wrapped iterator's position before the next batch this yields."""
    if not hasattr(self._source, "get_state"):
      raise TypeError(f"{type(self._source).__name__} has no get_state(); it cannot be resumed.")
    if self._queue:
      return self._queue[0][0]
    return self._source.get_state()

  def set_state(self, state: Mapping[str, Any]) -> None:
    """Drops the batches in flight and moves the wrapped iterator to ``state``."""
    self._queue.clear()
    self._source.set_state(state)


def prefetch_to_device(
  iterator: Iterable[Mapping[str, np.ndarray]], sharding: jax.sharding.Sharding, size: int = 2
) -> DevicePrefetcher:
  """Puts host batches on the devices ahead of use, sharded by ``sharding``.

  Each leaf becomes a global ``jax.Array`` via
  ``jax.make_array_from_process_local_data(sharding, leaf)``: with several
  hosts each passes its own rows (``TrainPipeline`` builds them) and the array
  holds all hosts' rows; with one process it equals ``jax.device_put``.

  Args:
    iterator: yields dicts (pytrees) of host arrays, e.g. a ``TrainPipeline``.
    sharding: the batch's sharding, e.g. ``NamedSharding(mesh, P("data"))``.
    size: batches kept in flight (2 hides one transfer behind one step).

  Returns:
    A ``DevicePrefetcher`` (an iterator with ``get_state``/``set_state`` when
    ``iterator`` has them).

  Examples:
    >>> mesh = jax.make_mesh((jax.device_count(),), ("data",),
    ...                      axis_types=(jax.sharding.AxisType.Auto,))
    >>> sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    >>> batches = prefetch_to_device(pipeline, sharding)  # doctest: +SKIP
    >>> batch = next(batches)  # {"hr": jax.Array, "lr": jax.Array}  # doctest: +SKIP
  """
  return DevicePrefetcher(iterator, sharding, size)
