"""The training input pipeline on grain: random aligned patch batches, deterministic and resumable.

Process ``p`` of ``n`` builds one ``grain.MapDataset`` whose element ``k`` is its rows of
global batch ``k`` (``local_batches``)::

  PairSource(pairs) -> EpochShuffle(seed) -> repeat() -> random_map(RandomAlignedCrop)
    -> batch(b) -> [p::n] -> to_iter_dataset(ReadOptions(num_workers, prefetch))

or, with ``worker_processes``, ``[p::n][k:]`` read by grain's worker processes from batch
``k`` on (``batches.worker_batches``). The datasets are in ``cutblur_jax.data.batches``.

* ``pairs`` come from one of three sources (``source``): ``"memory"`` (every pair decoded
  at start), ``"disk"`` (``DecodedCache``: decoded once per host, each crop read from its
  strips) or ``"files"`` (decoded per sample); the batches are the same from each.

* Global sample ``g`` is image ``default_rng((seed, 0, e)).permutation(N)[g % N]``,
  ``e = g // N`` (the old pipeline's orders): each image once per epoch, new order each epoch.
* Its crop draws from grain's ``random_map`` generator: Philox keyed by
  ``derive_seed(seed, 1)``, counter ``g``, a pure function of ``(seed, g)``.
* With ``b = batch_size / n``, mini-batch ``k * n + p`` of the ``b``-batched stream holds
  samples ``k * batch_size + p * b + j``: rows ``[p*b, (p+1)*b)`` of global batch ``k``. The
  slice ``[p::n]`` keeps only those (nothing else is built); the global batch ignores ``n``.
* Batch ``k`` is ``local[k]``, whatever ``num_workers`` or ``prefetch``.
  ``get_state()`` (JSON) is ``{"format": "grain-1", "seed", "batch_size", "iterator"}``,
  ``iterator`` being grain's ``PrefetchDatasetIterator`` state ``{"next_index": k}``.
* Batches: fresh C-contiguous ``uint8`` ``{"hr": [b, hr_patch, hr_patch, 3],
  "lr": [b, lr_patch, lr_patch, 3]}`` (``lr_patch == hr_patch`` for same-size pairs).
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, Sequence

import grain
import jax
import numpy as np

from cutblur_jax.data.batches import (
  Batch,
  PairSource,
  RandomAlignedCrop,
  local_batches,
  worker_batches,
)
from cutblur_jax.data.degradations import align_pair
from cutblur_jax.data.disk_cache import DecodedCache, resolve_source
from cutblur_jax.data.prefetch import load_pairs
from cutblur_jax.data.types import ImagePair, input_scale_of

__all__ = ["TrainPipeline", "load_pairs"]

STATE_FORMAT = "grain-1"


def _convert_legacy_state(state: Mapping[str, Any], batch_size: int | None = None) -> dict:
  """Today's form of a version 0.1.0 state ``{"seed", "next_batch", "batch_size"}``.

  A 0.1.0 run resumes at its batch index and seed (its image orders; not its crops).
  """
  try:
    seed, next_batch = int(state["seed"]), int(state["next_batch"])
    batch_size = int(state.get("batch_size", batch_size))
  except (KeyError, TypeError, ValueError, AttributeError) as error:
    raise ValueError(
      f"`state` must be {{'seed': int, 'next_batch': int, 'batch_size': int}} "
      f"(old format) or a get_state() of this pipeline, got {state!r}."
    ) from error
  return {
    "format": STATE_FORMAT,
    "seed": seed,
    "batch_size": batch_size,
    "iterator": {"next_index": next_batch},
  }


def _check_fits(name: str, lr_size, lr_patch: int, *, patch_size: int, scale: int) -> None:
  """An image whose LR side is under the LR patch is one line naming it and the patch."""
  if min(lr_size) < lr_patch:
    raise ValueError(
      f"Image {name!r} has LR size {lr_size[0]}x{lr_size[1]}, smaller than the LR patch "
      f"{lr_patch}x{lr_patch} (patch_size={patch_size}, scale={scale}); lower patch_size or "
      "drop the image."
    )


def _checked(
  pair: ImagePair, *, scale: int, input_scale: int, patch_size: int, trusted: bool
) -> ImagePair:
  """Checks that the patch fits; for a sequence that is not a cutblur-jax source (not
  ``trusted``), also the dtype, the shape and the size ratio, and aligns HR to LR."""
  lr_patch = patch_size * scale // input_scale
  if not trusted:
    for role, image in (("HR", pair.hr), ("LR", pair.lr)):
      if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(
          f"{role} image of {pair.name!r} must be uint8 [H, W, 3], got {image.dtype} {image.shape}."
        )
    if (pair.hr.shape[:2] == pair.lr.shape[:2]) != (input_scale == 1):
      raise ValueError(
        f"Image {pair.name!r}: HR {pair.hr.shape[:2]} / LR {pair.lr.shape[:2]} differs in size "
        f"ratio from the other pairs (HR/LR = {input_scale}); a batch cannot mix them."
      )
    where = f"of image {pair.name!r}"
    pair = ImagePair(
      pair.name, *align_pair(pair.hr, pair.lr, input_scale, hr_source=where, lr_source=where)
    )
  _check_fits(pair.name, pair.lr.shape[:2], lr_patch, patch_size=patch_size, scale=scale)
  return pair


class TrainPipeline:
  """Infinite iterator of random aligned ``{"hr", "lr"}`` patch batches (this process's rows).

  Args:
    dataset: a sequence of ``ImagePair`` (HR ``scale`` times LR, or same-size pairs).
    patch_size: LR patch side for SR (the HR patch is ``patch_size * scale``).
    batch_size: the global batch size (process ``p`` of ``n`` builds ``batch_size / n`` rows).
    scale: the network's scale (default: the data set's ``scale`` attribute).
    seed: the run's data seed.
    num_workers: grain reader threads (``ReadOptions.num_threads``); 0 builds in the caller.
    prefetch: batches built ahead (``max(prefetch, num_workers)`` with threads).
    process_index, process_count: this host and the host count (default: JAX's).
    flip_and_rotate: host-side random flips and transposes (the train step does them on
      device instead).
    cache: ``source``'s old switch: ``True`` is ``"memory"``, ``False`` is ``"files"``.
    source: where crops read decoded pairs: ``"memory"`` (decoded once at start, the
      reference's way), ``"disk"`` (``data.disk_cache.DecodedCache``: decoded once per host
      into ``cache_dir``, each crop read from its strips; memory does not grow with the data set),
      ``"files"`` (decodes a pair per sample) or ``"auto"`` (``"disk"`` above
      ``disk_cache.MEMORY_LIMIT_BYTES`` of decoded pairs, else ``"memory"``). Default: from
      ``cache``.
    cache_dir: ``DecodedCache``'s folder (default ``disk_cache.default_cache_dir()``).
    worker_processes: grain worker processes (``mp_prefetch``) that build the batches, each
      with ``num_workers`` threads; 0 builds them in this process.

  Examples:
    >>> pipeline = TrainPipeline(dataset, patch_size=48, batch_size=16, seed=1)  # doctest: +SKIP
    >>> batch = next(pipeline)  # {"hr": uint8 [16, 192, 192, 3], "lr": uint8 [16, 48, 48, 3]}
  """

  def __init__(
    self,
    dataset: Sequence[ImagePair],
    *,
    patch_size: int = 48,
    batch_size: int = 16,
    scale: int | None = None,
    seed: int = 0,
    num_workers: int = 2,
    prefetch: int = 2,
    process_index: int | None = None,
    process_count: int | None = None,
    flip_and_rotate: bool = False,
    cache: bool = True,
    source: str | None = None,
    cache_dir: str | None = None,
    worker_processes: int = 0,
  ):
    if scale is None:
      scale = getattr(dataset, "scale", None)
      if scale is None:
        raise ValueError("`scale` is required: the data set has no `scale` attribute.")
    for arg, value, low in (
      ("patch_size", patch_size, 1),
      ("batch_size", batch_size, 1),
      ("scale", scale, 1),
      ("seed", seed, 0),
      ("num_workers", num_workers, 0),
      ("prefetch", prefetch, 0),
      ("worker_processes", worker_processes, 0),
    ):
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
        f"`batch_size` {batch_size} is not divisible by process_count {self.process_count}."
      )
    self.dataset = dataset
    self.patch_size, self.batch_size, self.scale = int(patch_size), int(batch_size), int(scale)
    self.local_batch_size = self.batch_size // self.process_count
    self.seed, self.flip_and_rotate = int(seed), bool(flip_and_rotate)
    self.num_workers, self.prefetch = int(num_workers), int(prefetch)
    self.worker_processes = int(worker_processes)
    requested = ("memory" if cache else "files") if source is None else source
    self.source = resolve_source(dataset, requested, worker_processes=self.worker_processes)
    pairs = load_pairs(dataset, num_workers=self.num_workers) if self.source == "memory" else None
    # A cutblur-jax source has checked and aligned its pairs and knows its ratio.
    trusted = hasattr(dataset, "input_scale")
    self.input_scale = input_scale_of(dataset if pairs is None else pairs)
    if self.input_scale not in (1, self.scale):
      raise ValueError(
        f"The data set's pairs have HR/LR = {self.input_scale}, but `scale` is {self.scale}: "
        "HR must be `scale` times LR, or the same size."
      )
    self.hr_patch = self.patch_size * self.scale
    self.lr_patch = self.hr_patch // self.input_scale
    check = functools.partial(
      _checked,
      scale=self.scale,
      input_scale=self.input_scale,
      patch_size=self.patch_size,
      trusted=trusted,
    )
    if self.source == "memory":
      self._source = PairSource(tuple(check(pair) for pair in pairs))
    elif self.source == "disk":
      for name, size in zip(dataset.names, dataset.lr_sizes()):  # headers: nothing decoded
        _check_fits(name, size, self.lr_patch, patch_size=self.patch_size, scale=self.scale)
      self._source = PairSource(DecodedCache(dataset, cache_dir))
    else:
      self._source = grain.MapDataset.source(dataset).map(check)
    self._crop = RandomAlignedCrop(
      self.hr_patch, self.lr_patch, self.input_scale, self.flip_and_rotate
    )
    self._datasets: dict[int, tuple[grain.MapDataset, grain.MapDataset]] = {}
    self._iterator: grain.DatasetIterator | None = None
    self._next_batch = 0  # position while no iterator is open (with worker processes: its start)
    self._consumed = 0  # batches taken from the worker processes' iterator

  def _local(self, seed: int) -> tuple[grain.MapDataset, grain.MapDataset]:
    """(batches, image indices) of this process for ``seed``, built once."""
    if seed not in self._datasets:
      kwargs = dict(
        seed=seed,
        local_batch_size=self.local_batch_size,
        process_index=self.process_index,
        process_count=self.process_count,
      )
      self._datasets[seed] = (
        local_batches(self._source, crop=self._crop, **kwargs),
        local_batches(grain.MapDataset.range(len(self.dataset)), crop=None, **kwargs),
      )
    return self._datasets[seed]

  def batch(self, batch_index: int, *, seed: int | None = None) -> Batch:
    """This process's rows of batch ``batch_index`` (random access; the iterator does not move)."""
    if batch_index < 0:
      raise ValueError(f"`batch_index` must be non-negative, got {batch_index}.")
    return self._local(self.seed if seed is None else int(seed))[0][batch_index]

  def sample_indices(self, batch_index: int, *, seed: int | None = None) -> np.ndarray:
    """Data set indices of this process's rows of batch ``batch_index``."""
    return self._local(self.seed if seed is None else int(seed))[1][batch_index]

  @property
  def next_batch(self) -> int:
    """The global batch index the next ``__next__`` returns."""
    if self._iterator is None:
      return self._next_batch
    if self.worker_processes:
      return self._next_batch + self._consumed
    return int(self._iterator.get_state()["next_index"])

  def _open(self) -> None:
    ahead = max(self.prefetch, self.num_workers) if self.num_workers else 0
    batches = self._local(self.seed)[0]
    if self.worker_processes:
      # The position is ours (start + consumed), so the state format is the same.
      self._consumed = 0
      self._iterator = worker_batches(
        batches,
        self._next_batch,
        workers=self.worker_processes,
        threads=self.num_workers,
        ahead=max(ahead, self.prefetch),
      )
      return
    read = grain.ReadOptions(num_threads=self.num_workers, prefetch_buffer_size=ahead)
    self._iterator = iter(batches.to_iter_dataset(read))
    self._iterator.set_state({"next_index": self._next_batch})

  def __iter__(self) -> "TrainPipeline":
    return self

  def __next__(self) -> Batch:
    if self._iterator is None:
      self._open()
    batch = next(self._iterator)
    if self.worker_processes:
      self._consumed += 1
    return batch

  def get_state(self) -> dict[str, Any]:
    """JSON-able position; ``batch_size`` (global) guards against resuming another stream."""
    return {
      "format": STATE_FORMAT,
      "seed": self.seed,
      "batch_size": self.batch_size,
      "iterator": {"next_index": self.next_batch},
    }

  def set_state(self, state: Mapping[str, Any]) -> None:
    """Moves to a ``get_state()`` position, or to a version 0.1.0 pipeline's position."""
    if not (isinstance(state, Mapping) and state.get("format") == STATE_FORMAT):
      state = _convert_legacy_state(state, self.batch_size)
    try:
      seed, batch_size = int(state["seed"]), int(state["batch_size"])
      next_batch = int(state["iterator"]["next_index"])
    except (KeyError, TypeError, ValueError) as error:
      raise ValueError(f"Malformed pipeline `state` {state!r}.") from error
    if seed < 0 or next_batch < 0:
      raise ValueError(f"`state` values must be non-negative, got {state!r}.")
    if batch_size != self.batch_size:
      raise ValueError(
        f"`state` was saved with global batch_size {batch_size} but this pipeline has "
        f"{self.batch_size}; resuming would not reproduce the same batches."
      )
    if self._iterator is not None and seed == self.seed and not self.worker_processes:
      self._iterator.set_state({"next_index": next_batch})  # grain cancels the prefetched
      return
    self.close()
    self.seed, self._next_batch = seed, next_batch

  def close(self) -> None:
    """Stops the reader threads; a later ``__next__`` restarts them where this stopped."""
    if self._iterator is not None:
      self._next_batch = self.next_batch
      self._iterator.close()
      self._iterator = None

  def __enter__(self) -> "TrainPipeline":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()

  def __repr__(self) -> str:
    return (
      f"TrainPipeline(grain, {len(self.dataset)} images, batch {self.local_batch_size}/"
      f"{self.batch_size} (process {self.process_index}/{self.process_count}), "
      f"hr_patch={self.hr_patch}, lr_patch={self.lr_patch}, seed={self.seed}, "
      f"next_batch={self.next_batch})"
    )
