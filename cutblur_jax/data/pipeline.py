"""The training input pipeline: random aligned patch batches, deterministic and resumable.

Invariants:

* Batch ``k`` is a pure function of ``(seed, k)`` and the data set (this host's
  rows also of ``process_index`` and ``process_count``): no hidden state and no
  dependence on thread scheduling, so a run resumed from ``get_state()``
  (``{"seed", "next_batch", "batch_size"}``, JSON) sees exactly the batches the
  interrupted run would have seen, whatever the number of workers or the
  prefetch depth.
* Sampling: global sample ``g = k * batch_size + j`` takes image
  ``permutation_e[g mod N]`` where ``e = g // N`` and ``permutation_e`` is a
  permutation of the ``N`` images seeded by ``(seed, e)``. Each "epoch" of
  ``N`` samples visits every image once in a fresh random order, like the
  reference's shuffled ``DataLoader`` over its repeated index list
  (``index % N``); epochs run on across batch boundaries, so nothing is dropped.
* The crop offset (and optional flips) of sample ``g`` come from a counter-based
  hash of ``(seed, g)`` (SplitMix64), cheap enough to build thousands of patches per
  second in one thread. HR/LR crops are aligned: an LR patch of
  ``lr_patch`` pixels at ``(y, x)`` pairs with the HR patch of
  ``hr_patch = patch_size * scale`` pixels at ``(y, x) * input_scale``. For SR
  ``lr_patch == patch_size``; for same-size pairs (RealSR v1, DN, JPEG)
  ``lr_patch == hr_patch``, which is the reference's ``patch_size *= scale``
  for RealSR. (For RealSR v3, whose LR is ``scale`` times smaller, the
  reference would crop a ``48 * scale`` LR patch; we crop the usual ``48``.)
* Multi-host: process ``p`` of ``n`` builds rows ``[p * B/n, (p+1) * B/n)`` of
  every global batch, so the global batch does not depend on ``n`` and hosts
  never overlap.
* Images are decoded once and kept as ``uint8`` (``cache=True``, like the
  reference); batches are ``uint8`` numpy arrays
  ``{"hr": [B/n, hr_patch, hr_patch, 3], "lr": [B/n, lr_patch, lr_patch, 3]}``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import threading
from typing import Any, Iterable, Mapping, Sequence

import jax
import numpy as np

from cutblur_jax.data.folders import align_pair
from cutblur_jax.data.types import ImagePair

Batch = dict[str, np.ndarray]

# Stream tags mixed into the seeds so that orders and crops never share a stream.
_ORDER_STREAM = 0
_CROP_STREAM = 1
# Random draws per sample: crop row, crop column, h-flip, v-flip, transpose.
_DRAWS = 5

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def _mix64(x: np.ndarray) -> np.ndarray:
  """SplitMix64's finaliser: a bijection of uint64 with full avalanche (wraps mod 2**64)."""
  x = (x ^ (x >> np.uint64(30))) * _MIX_1
  x = (x ^ (x >> np.uint64(27))) * _MIX_2
  return x ^ (x >> np.uint64(31))


def sample_bits(seed: int, samples: np.ndarray, draws: int = _DRAWS) -> np.ndarray:
  """Counter-based random ``uint64 [len(samples), draws]``, a pure function of ``(seed, sample)``.

  Hashing the counter (no generator object per sample) keeps batch building cheap
  and makes every sample's draws independent of which host or thread builds it.
  """
  # One-element arrays, not NumPy scalars: array arithmetic wraps silently.
  key = _mix64(np.array([(seed * 0x9E3779B97F4A7C15 + _CROP_STREAM) % 2**64], np.uint64))
  counters = (np.asarray(samples, np.uint64)[:, None] * np.uint64(draws)
              + np.arange(draws, dtype=np.uint64))
  return _mix64(_mix64(counters + _GOLDEN) ^ key)


def load_pairs(dataset: Sequence[ImagePair], *, num_workers: int = 2) -> list[ImagePair]:
  """Reads every pair of ``dataset`` with a thread pool (decoding releases the GIL).

  Args:
    dataset: a sequence of ``ImagePair`` (folder, TFDS or embedded data set).
    num_workers: reader threads; 0 reads in the calling thread.

  Returns:
    The pairs in order, as a list (e.g. full validation images).

  Examples:
    >>> valid = load_pairs(div2k_dataset(root, split="validation"))  # doctest: +SKIP
  """
  if num_workers <= 0:
    return [dataset[i] for i in range(len(dataset))]
  with concurrent.futures.ThreadPoolExecutor(num_workers, thread_name_prefix="load_pairs") as pool:
    return list(pool.map(dataset.__getitem__, range(len(dataset))))


def _pair_input_scale(pair: ImagePair, scale: int) -> int:
  return 1 if pair.hr.shape[:2] == pair.lr.shape[:2] else scale


class TrainPipeline:
  """Infinite iterator of random aligned ``{"hr", "lr"}`` patch batches.

  Attributes:
    scale: model scale (HR patch = ``patch_size * scale``).
    input_scale: HR / LR size ratio of the data (``scale`` or 1).
    hr_patch, lr_patch: patch sides.
    batch_size: global batch size; ``local_batch_size`` rows come from this host.

  Examples:
    >>> pipeline = TrainPipeline(dataset, patch_size=48, batch_size=16, seed=1)  # doctest: +SKIP
    >>> batch = next(pipeline)  # {"hr": uint8 [16, 192, 192, 3], "lr": uint8 [16, 48, 48, 3]}
    >>> state = pipeline.get_state()  # {"seed": 1, "next_batch": 1, "batch_size": 16}
  """

  def __init__(self, dataset: Sequence[ImagePair], *, patch_size: int = 48, batch_size: int = 16,
               scale: int | None = None, seed: int = 0, num_workers: int = 2, prefetch: int = 2,
               process_index: int | None = None, process_count: int | None = None,
               flip_and_rotate: bool = False, cache: bool = True):
    """Builds the pipeline (and, with ``cache``, decodes every image once).

    Args:
      dataset: a sequence of ``ImagePair``; its ``scale`` attribute is used when
        ``scale`` is None.
      patch_size: LR patch side for SR (the reference's ``patch_size``).
      batch_size: global batch size (all hosts together).
      scale: model scale; defaults to ``dataset.scale``.
      seed: non-negative int; the whole stream is a function of it.
      num_workers: threads that build batches (0: build in ``__next__``).
      prefetch: batches built ahead of the consumer (at least ``num_workers``
        are in flight when there are workers).
      process_index: this host's index (default ``jax.process_index()``).
      process_count: number of hosts (default ``jax.process_count()``).
      flip_and_rotate: also apply the reference's random h-flip, v-flip and
        transpose on the host (off by default: the train step does them on device).
      cache: keep decoded images in memory (``False`` decodes each sample's pair
        on demand: slow for PNG, for data sets larger than memory).
    """
    if scale is None:
      scale = getattr(dataset, "scale", None)
      if scale is None:
        raise ValueError("`scale` is required: the data set has no `scale` attribute.")
    for arg, value, low in (("patch_size", patch_size, 1), ("batch_size", batch_size, 1),
                            ("scale", scale, 1), ("seed", seed, 0), ("num_workers", num_workers, 0),
                            ("prefetch", prefetch, 0)):
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"`{arg}` must be an integer >= {low}, got {value!r}.")
    if len(dataset) == 0:
      raise ValueError("`dataset` is empty.")
    self.process_index = jax.process_index() if process_index is None else int(process_index)
    self.process_count = jax.process_count() if process_count is None else int(process_count)
    if not 0 <= self.process_index < self.process_count:
      raise ValueError(f"`process_index` {self.process_index} is not in [0, {self.process_count}).")
    if batch_size % self.process_count:
      raise ValueError(
          f"`batch_size` {batch_size} is not divisible by process_count {self.process_count}.")
    self.dataset = dataset
    self.patch_size, self.batch_size, self.scale = int(patch_size), int(batch_size), int(scale)
    self.local_batch_size = self.batch_size // self.process_count
    self.seed = int(seed)
    self.flip_and_rotate = bool(flip_and_rotate)
    self.num_workers, self.prefetch = int(num_workers), int(prefetch)
    self._executor = (
        concurrent.futures.ThreadPoolExecutor(self.num_workers, thread_name_prefix="train_pipeline")
        if self.num_workers else None)
    self._cache: list[ImagePair] | None = None
    self._orders: dict[tuple[int, int], np.ndarray] = {}
    self._orders_lock = threading.Lock()
    if cache:
      pairs = load_pairs(dataset, num_workers=self.num_workers)
      self.input_scale = _pair_input_scale(pairs[0], self.scale)
      self._cache = [self._checked(pair) for pair in pairs]
    else:
      self.input_scale = (getattr(dataset, "input_scale", None)
                          or _pair_input_scale(dataset[0], self.scale))
    self.hr_patch = self.patch_size * self.scale
    self.lr_patch = self.hr_patch // self.input_scale
    if self._cache is not None:
      for pair in self._cache:
        self._check_patch_fits(pair)
    self._next_batch = 0
    self._pending: collections.deque[tuple[int, concurrent.futures.Future]] = collections.deque()

  # -- validation -------------------------------------------------------------

  def _checked(self, pair: ImagePair) -> ImagePair:
    """Checks dtype/shape and that the pair's size ratio is the data set's."""
    for role, image in (("HR", pair.hr), ("LR", pair.lr)):
      if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{role} image of {pair.name!r} must be uint8 [H, W, 3], "
                         f"got {image.dtype} {image.shape}.")
    if _pair_input_scale(pair, self.scale) != self.input_scale:
      raise ValueError(
          f"Image {pair.name!r}: HR {pair.hr.shape[:2]} / LR {pair.lr.shape[:2]} differs in size "
          "ratio "
          f"from the other pairs (HR/LR = {self.input_scale}); a batch cannot mix them.")
    hr, lr = align_pair(pair.hr, pair.lr, self.input_scale,
                        hr_source=f"of image {pair.name!r}", lr_source=f"of image {pair.name!r}")
    return ImagePair(pair.name, hr, lr)

  def _check_patch_fits(self, pair: ImagePair) -> None:
    height, width = pair.lr.shape[:2]
    if height < self.lr_patch or width < self.lr_patch:
      raise ValueError(
          f"Image {pair.name!r} has LR size {height}x{width}, smaller than the LR patch "
          f"{self.lr_patch}x{self.lr_patch} (patch_size={self.patch_size}, scale={self.scale}); "
          "lower patch_size or drop the image.")

  # -- batches as pure functions of (seed, index) ---------------------------------

  def _order(self, seed: int, epoch: int) -> np.ndarray:
    """The image permutation of ``epoch`` (the last few are kept; workers share them)."""
    with self._orders_lock:
      order = self._orders.get((seed, epoch))
      if order is None:
        order = np.random.default_rng((seed, _ORDER_STREAM, epoch)).permutation(len(self.dataset))
        self._orders[(seed, epoch)] = order
        while len(self._orders) > 8:
          self._orders.pop(next(iter(self._orders)))
      return order

  def _pair(self, image_index: int) -> ImagePair:
    if self._cache is not None:
      return self._cache[image_index]
    pair = self._checked(self.dataset[image_index])
    self._check_patch_fits(pair)
    return pair

  def _samples(self, batch_index: int) -> np.ndarray:
    """Global sample numbers of this host's rows of batch ``batch_index``."""
    first = batch_index * self.batch_size + self.process_index * self.local_batch_size
    return np.arange(first, first + self.local_batch_size, dtype=np.int64)

  def sample_indices(self, batch_index: int, *, seed: int | None = None) -> np.ndarray:
    """Data set indices of this host's rows of batch ``batch_index``."""
    seed = self.seed if seed is None else int(seed)
    epochs, positions = np.divmod(self._samples(batch_index), len(self.dataset))
    indices = np.empty_like(positions)
    for epoch in np.unique(epochs):  # One or two epochs per batch.
      rows = epochs == epoch
      indices[rows] = self._order(seed, int(epoch))[positions[rows]]
    return indices

  def batch(self, batch_index: int, *, seed: int | None = None) -> Batch:
    """Builds batch ``batch_index`` (this host's rows) without moving the iterator.

    Args:
      batch_index: non-negative batch number.
      seed: stream seed (default: the pipeline's).

    Returns:
      ``{"hr": uint8 [b, hr_patch, hr_patch, 3], "lr": uint8 [b, lr_patch, lr_patch, 3]}``
      with ``b = local_batch_size``.
    """
    seed = self.seed if seed is None else int(seed)
    if batch_index < 0:
      raise ValueError(f"`batch_index` must be non-negative, got {batch_index}.")
    rows = self.local_batch_size
    hr = np.empty((rows, self.hr_patch, self.hr_patch, 3), np.uint8)
    lr = np.empty((rows, self.lr_patch, self.lr_patch, 3), np.uint8)
    bits = sample_bits(seed, self._samples(batch_index)).tolist()
    r, hr_size, lr_size = self.input_scale, self.hr_patch, self.lr_patch
    for row, image_index in enumerate(self.sample_indices(batch_index, seed=seed).tolist()):
      pair = self._pair(image_index)
      height, width = pair.lr.shape[:2]
      draws = bits[row]
      # Modulo of a 64-bit hash: the bias is below size / 2**64.
      y = draws[0] % (height - lr_size + 1)
      x = draws[1] % (width - lr_size + 1)
      hr_patch = pair.hr[y * r:y * r + hr_size, x * r:x * r + hr_size]
      lr_patch = pair.lr[y:y + lr_size, x:x + lr_size]
      if self.flip_and_rotate:
        # The top bit of each of the last three draws: h-flip, v-flip, transpose.
        if draws[2] >> 63:
          hr_patch, lr_patch = hr_patch[:, ::-1], lr_patch[:, ::-1]
        if draws[3] >> 63:
          hr_patch, lr_patch = hr_patch[::-1], lr_patch[::-1]
        if draws[4] >> 63:
          hr_patch, lr_patch = hr_patch.transpose(1, 0, 2), lr_patch.transpose(1, 0, 2)
      hr[row] = hr_patch
      lr[row] = lr_patch
    return {"hr": hr, "lr": lr}

  # -- iteration ------------------------------------------------------------------

  def __iter__(self) -> "TrainPipeline":
    return self

  def __next__(self) -> Batch:
    if self._executor is None:
      batch = self.batch(self._next_batch)
    else:
      ahead = max(self.prefetch, self.num_workers, 1)
      next_submit = self._pending[-1][0] + 1 if self._pending else self._next_batch
      while len(self._pending) < ahead:
        future = self._executor.submit(self.batch, next_submit, seed=self.seed)
        self._pending.append((next_submit, future))
        next_submit += 1
      index, future = self._pending.popleft()
      assert index == self._next_batch, (index, self._next_batch)
      batch = future.result()
    self._next_batch += 1
    return batch

  def get_state(self) -> dict[str, int]:
    """The position: ``{"seed", "next_batch", "batch_size"}`` (JSON-able ints).

    ``batch_size`` (global) is recorded so that resuming with another batch size,
    which would change every later batch, fails loudly instead.
    """
    return {"seed": self.seed, "next_batch": self._next_batch, "batch_size": self.batch_size}

  def set_state(self, state: Mapping[str, Any]) -> None:
    """Moves to a position returned by ``get_state`` (drops batches built ahead).

    Raises:
      ValueError: ``state`` is malformed or was saved with another global batch size.
    """
    try:
      seed, next_batch = int(state["seed"]), int(state["next_batch"])
      batch_size = int(state.get("batch_size", self.batch_size))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
      raise ValueError(
          f"`state` must be {{'seed': int, 'next_batch': int, 'batch_size': int}}, got {state!r}."
      ) from error
    if seed < 0 or next_batch < 0:
      raise ValueError(f"`state` values must be non-negative, got {state!r}.")
    if batch_size != self.batch_size:
      raise ValueError(
          f"`state` was saved with global batch_size {batch_size} but this pipeline has "
          f"{self.batch_size}; resuming would not reproduce the same batches.")
    self._drop_pending()
    self.seed, self._next_batch = seed, next_batch

  def _drop_pending(self) -> None:
    for _, future in self._pending:
      future.cancel()
    self._pending.clear()

  def close(self) -> None:
    """Stops the worker threads."""
    self._drop_pending()
    if self._executor is not None:
      self._executor.shutdown(wait=True, cancel_futures=True)
      self._executor = None

  def __enter__(self) -> "TrainPipeline":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()

  def __repr__(self) -> str:
    return (f"TrainPipeline({len(self.dataset)} images, "
            f"batch {self.local_batch_size}/{self.batch_size} "
            f"(process {self.process_index}/{self.process_count}), hr_patch={self.hr_patch}, "
            f"lr_patch={self.lr_patch}, seed={self.seed}, next_batch={self._next_batch})")


class DevicePrefetcher:
  """Iterator that keeps ``size`` host batches in flight to the devices.

  Its ``get_state()`` is the position of the next batch it will *yield* (not of
  the batches already transferred), so a checkpoint taken between steps
  resumes exactly.
  """

  def __init__(self, iterator: Iterable[Mapping[str, np.ndarray]], sharding: jax.sharding.Sharding,
               size: int = 2):
    if size < 1:
      raise ValueError(f"`size` must be >= 1, got {size}.")
    self._source = iterator
    self._iterator = iter(iterator)
    self.sharding, self.size = sharding, int(size)
    self._queue: collections.deque[tuple[Any, Any]] = collections.deque()

  def _put(self, batch):
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(self.sharding, np.asarray(x)), batch)

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


def prefetch_to_device(iterator: Iterable[Mapping[str, np.ndarray]],
                       sharding: jax.sharding.Sharding, size: int = 2) -> DevicePrefetcher:
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

