"""The disk-backed source and grain worker processes: the pipeline's invariants hold for each.

* batch k is a pure function of (seed, k) and the data: the same from memory, from the
  disk cache and from the files, with 0, 1 or 2 worker processes;
* kill -9 and resume is bitwise, and kills no more than the training process's workers;
* every image is visited once per epoch; the global batch does not depend on the number of
  processes;
* the cache decodes each pair once per host, survives a damaged file and a cache folder that
  cannot be written, and is keyed on the files' content.
"""

import errno
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
from PIL import Image

from cutblur_jax.data import disk_cache, folders
from cutblur_jax.data.disk_cache import DecodedCache, resolve_source
from cutblur_jax.data.pipeline import TrainPipeline

KW = dict(patch_size=4, batch_size=4, seed=3, num_workers=0)


def _folder(root: pathlib.Path, count: int = 5) -> pathlib.Path:
  rng = np.random.default_rng(0)
  (root / "HR").mkdir(parents=True)
  for i in range(count):
    image = rng.integers(0, 256, (40 + 4 * i, 48, 3), dtype=np.uint8)
    Image.fromarray(image).save(root / "HR" / f"im{i}.png")
  return root


def _dataset(root: pathlib.Path):
  return folders.benchmark_dataset(root, scale=4, synthesize_lr=True)


class _Counting(folders.FolderDataset):
  """A FolderDataset that counts its decodes."""

  decodes = 0

  def __getitem__(self, index):
    type(self).decodes += 1
    return super().__getitem__(index)


def _counting(data) -> _Counting:
  _Counting.decodes = 0
  return _Counting(
    data.hr_paths,
    scale=data.scale,
    input_scale=data.input_scale,
    degradation=data.degradation,
    description=data.description,
  )


def _same(a, b) -> bool:
  return len(a) == len(b) and all(
    np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in ("hr", "lr")
  )


def test_batches_are_the_same_from_memory_disk_and_files(tmp_path):
  data = _dataset(_folder(tmp_path / "data"))
  batches = {
    source: [
      TrainPipeline(data, source=source, cache_dir=tmp_path / "cache", **KW).batch(k)
      for k in range(6)
    ]
    for source in ("memory", "disk", "files")
  }
  assert _same(batches["memory"], batches["disk"]) and _same(batches["memory"], batches["files"])
  # One file per pair; a second pass over the warm cache gives the same batches.
  assert len(list((tmp_path / "cache").glob("*.pair"))) == len(data)
  warm = TrainPipeline(data, source="disk", cache_dir=tmp_path / "cache", **KW)
  assert _same(batches["memory"], [warm.batch(k) for k in range(6)])


def test_the_cache_decodes_each_pair_once_per_host(tmp_path):
  data = _counting(_dataset(_folder(tmp_path / "data")))
  cache = DecodedCache(data, tmp_path / "cache")
  assert cache.cached() == 0 and _Counting.decodes == 0  # nothing is decoded at start
  first = [cache[i] for i in range(len(data))]
  assert _Counting.decodes == len(data) and cache.cached() == len(data)
  # Another process, run or resume: a new DecodedCache over the same files decodes nothing.
  again = DecodedCache(data, tmp_path / "cache")
  second = [again[i] for i in range(len(data))]
  assert _Counting.decodes == len(data)
  for a, b in zip(first, second):
    assert a.name == b.name and np.array_equal(a.hr, b.hr) and np.array_equal(a.lr, b.lr)
    assert isinstance(b.hr, disk_cache.FileArray)  # read from disk, row by row
    np.testing.assert_array_equal(b.hr[3:7, 2:5], a.hr[3:7, 2:5])


def test_an_edited_image_is_decoded_again(tmp_path):
  root = _folder(tmp_path / "data", count=2)
  cache = DecodedCache(_dataset(root), tmp_path / "cache")
  before = np.array(cache[0].hr)
  edited = 255 - np.asarray(Image.open(root / "HR" / "im0.png"))
  Image.fromarray(edited).save(root / "HR" / "im0.png")
  os.utime(root / "HR" / "im0.png", ns=(time.time_ns(), time.time_ns() + 10**9))
  after = DecodedCache(_dataset(root), tmp_path / "cache")[0].hr
  np.testing.assert_array_equal(after, 255 - before)
  assert len(list((tmp_path / "cache").glob("*.pair"))) == 2  # the old copy and the new


def test_a_damaged_cache_file_is_decoded_again(tmp_path):
  data = _dataset(_folder(tmp_path / "data", count=2))
  cache = DecodedCache(data, tmp_path / "cache")
  expected = np.array(cache[1].lr)
  path = cache.path(1)
  path.write_bytes(path.read_bytes()[:-7])  # truncated
  fresh = DecodedCache(data, tmp_path / "cache")
  np.testing.assert_array_equal(fresh[1].lr, expected)
  assert path.stat().st_size > 0 and np.array_equal(
    DecodedCache(data, tmp_path / "cache")[1].lr, expected
  )


def test_a_full_disk_turns_the_cache_off_with_one_warning_and_training_goes_on(
  tmp_path, monkeypatch
):
  data = _dataset(_folder(tmp_path / "data"))

  class FullDisk:  # the real file, on a disk that fills after the header
    def __init__(self, path, mode):
      self.file = open(path, mode)  # pylint: disable=consider-using-with

    def write(self, data):
      if self.file.tell() > 0:
        raise OSError(errno.ENOSPC, "No space left on device")
      return self.file.write(data)

    def __enter__(self):
      return self

    def __exit__(self, *exc_info):
      self.file.close()

  monkeypatch.setattr(disk_cache, "open", FullDisk, raising=False)
  pipeline = TrainPipeline(data, source="disk", cache_dir=tmp_path / "cache", **KW)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    batches = [pipeline.batch(k) for k in range(3)]
  messages = [str(w.message) for w in caught if "cannot be written" in str(w.message)]
  assert len(messages) == 1 and "No space left on device" in messages[0]
  assert _same(batches, [TrainPipeline(data, source="memory", **KW).batch(k) for k in range(3)])
  assert not list((tmp_path / "cache").iterdir())  # no temporary file stays


def test_worker_processes_give_the_same_batches_and_resume_exactly(tmp_path):
  data = _dataset(_folder(tmp_path / "data"))
  expected = [TrainPipeline(data, source="memory", **KW).batch(k) for k in range(7)]
  cache = tmp_path / "cache"
  with TrainPipeline(data, source="disk", cache_dir=cache, worker_processes=2, **KW) as pipeline:
    assert pipeline.source == "disk"
    got = [next(pipeline) for _ in range(3)]
    state = json.loads(json.dumps(pipeline.get_state()))
    assert state["iterator"] == {"next_index": 3}
    got += [next(pipeline) for _ in range(2)]
  assert _same(got, expected[:5])
  with TrainPipeline(data, source="disk", cache_dir=cache, worker_processes=1, **KW) as resumed:
    resumed.set_state(state)
    assert _same([next(resumed) for _ in range(4)], expected[3:7])
    assert resumed.get_state()["iterator"] == {"next_index": 7}
  # "auto" with worker processes reads the disk cache, not a copy of the pairs per worker.
  auto = TrainPipeline(data, source="auto", cache_dir=cache, worker_processes=1, **KW)
  assert auto.source == "disk"


def test_every_image_once_per_epoch_and_the_global_batch_ignores_the_process_count(tmp_path):
  data = _dataset(_folder(tmp_path / "data"))
  kwargs = dict(KW, source="disk", cache_dir=tmp_path / "cache", batch_size=5)
  single = TrainPipeline(data, **kwargs)
  assert all(sorted(single.sample_indices(k)) == list(range(5)) for k in range(3))
  kwargs["batch_size"] = 4
  single = TrainPipeline(data, process_index=0, process_count=1, **kwargs)
  hosts = [TrainPipeline(data, process_index=p, process_count=2, **kwargs) for p in (0, 1)]
  for k in range(3):
    for key in ("hr", "lr"):
      rows = np.concatenate([host.batch(k)[key] for host in hosts])
      np.testing.assert_array_equal(rows, single.batch(k)[key])


def test_auto_reads_from_disk_above_the_memory_limit_and_checks_patches_from_headers(
  tmp_path, monkeypatch
):
  data = _dataset(_folder(tmp_path / "data"))
  assert resolve_source(data, "auto") == "memory"
  monkeypatch.setattr(disk_cache, "MEMORY_LIMIT_BYTES", data.decoded_bytes() - 1)
  assert resolve_source(data, "auto") == "disk"
  assert data.decoded_bytes() == sum(3 * h * w * 17 for h, w in data.lr_sizes())
  counting = _counting(data)
  with pytest.raises(ValueError, match=r"'im0' has LR size 10x12.*patch_size=11"):
    TrainPipeline(counting, source="disk", cache_dir=tmp_path / "c", **dict(KW, patch_size=11))
  assert _Counting.decodes == 0
  pairs = [data[i] for i in range(len(data))]
  with pytest.raises(ValueError, match="needs a folder data set"):
    resolve_source(pairs, "disk")
  with pytest.raises(ValueError, match="data_source"):
    resolve_source(data, "ram")
  with pytest.raises(ValueError, match="must be a local folder.*data_cache_dir"):
    DecodedCache(data, "gs://bucket/cache")


_KILLED = """
  import json, sys
  from cutblur_jax.data import folders
  from cutblur_jax.data.pipeline import TrainPipeline
  if __name__ == "__main__":
    data = folders.benchmark_dataset(sys.argv[1], scale=4, synthesize_lr=True)
    pipeline = TrainPipeline(data, patch_size=4, batch_size=4, seed=3, num_workers=0,
                             source="disk", cache_dir=sys.argv[2], worker_processes=2)
    for k in range(1000):
      batch = next(pipeline)
      if k == 3:  # what a checkpoint stores, then the run goes on until it is killed
        print(json.dumps(pipeline.get_state()), flush=True)
"""


def _children(pid: int) -> list[str]:
  """The processes whose parent is ``pid`` (from /proc)."""
  children = []
  for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
    try:
      fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
      continue
    if fields[1] == str(pid):
      children.append(stat.parent.name)
  return children


def test_kill_9_with_worker_processes_resumes_bitwise_and_leaves_no_worker(tmp_path):
  root = _folder(tmp_path / "data")
  child = subprocess.Popen(
    [sys.executable, "-c", textwrap.dedent(_KILLED), str(root), str(tmp_path / "cache")],
    stdout=subprocess.PIPE,
    text=True,
  )
  state = json.loads(child.stdout.readline())
  workers = _children(child.pid)
  assert workers, "the run has no worker processes"
  child.send_signal(signal.SIGKILL)
  child.wait(timeout=30)
  deadline = time.monotonic() + 30
  while any(os.path.exists(f"/proc/{pid}") for pid in workers) and time.monotonic() < deadline:
    time.sleep(0.2)
  left = [pid for pid in workers if os.path.exists(f"/proc/{pid}")]
  assert not left, f"worker processes {left} outlived the killed run"
  data = _dataset(root)
  resumed = TrainPipeline(data, source="disk", cache_dir=tmp_path / "cache", **KW)
  resumed.set_state(state)
  expected = [TrainPipeline(data, source="memory", **KW).batch(k) for k in range(4, 8)]
  assert _same([next(resumed) for _ in range(4)], expected)


def test_a_file_array_reads_any_window_as_the_array_it_stores(tmp_path):
  rng = np.random.default_rng(1)
  width = 2 * disk_cache.STRIP + 37  # three strips, the last one narrower
  hr = rng.integers(0, 256, (23, width, 3), dtype=np.uint8)
  lr = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
  path = tmp_path / "x.pair"
  disk_cache._write_pair(path, hr, lr)
  (hr_at, hr_shape), (lr_at, lr_shape) = disk_cache._layout(path)
  stored = disk_cache.FileArray(path, hr_at, hr_shape)
  assert stored.shape == hr.shape and np.array_equal(np.asarray(stored), hr)
  np.testing.assert_array_equal(np.asarray(disk_cache.FileArray(path, lr_at, lr_shape)), lr)
  edges = [0, 1, disk_cache.STRIP - 1, disk_cache.STRIP, 2 * disk_cache.STRIP + 1, width]
  for left in edges:
    for right in edges:
      for top, bottom in ((0, 23), (4, 9), (22, 23), (9, 4)):
        np.testing.assert_array_equal(stored[top:bottom, left:right], hr[top:bottom, left:right])
  np.testing.assert_array_equal(stored[-5:, -300:], hr[-5:, -300:])
  np.testing.assert_array_equal(stored[3], hr[3])  # an integer index reads it whole
  np.testing.assert_array_equal(stored[2:4, 5:9, 1], hr[2:4, 5:9, 1])
  path.write_bytes(path.read_bytes()[:-1])
  with pytest.raises(ValueError, match="expected"):
    disk_cache._layout(path)
