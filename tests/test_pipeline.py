"""Training pipeline: aligned crops, determinism, resume, multi-host rows, device prefetch."""

import json

import jax
import numpy as np
import pytest
from PIL import Image

from cutblur_jax.data import folders
from cutblur_jax.data.pipeline import TrainPipeline
from cutblur_jax.data.prefetch import load_pairs, prefetch_to_device
from cutblur_jax.data.types import ImagePair


class _Pairs(list):
  """An in-memory data set: a list of ImagePair with a ``scale``."""

  def __init__(self, pairs, scale):
    super().__init__(pairs)
    self.scale = scale


def _nearest_pairs(count=5, scale=2, *, same_size=False, seed=0):
  """HR is the nearest upsampling of a random LR, so aligned crops are checkable exactly."""
  rng = np.random.default_rng(seed)
  pairs = []
  for i in range(count):
    lr = rng.integers(0, 256, (10 + i, 12 + 2 * i, 3), dtype=np.uint8)
    hr = lr.repeat(scale, 0).repeat(scale, 1)
    pairs.append(ImagePair(f"img{i}", hr, 255 - hr if same_size else lr))
  return _Pairs(pairs, scale)


def _equal_batches(a, b):
  return all(np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in ("hr", "lr"))


def _take(iterator, count):
  return [next(iterator) for _ in range(count)]


def test_crops_are_aligned_and_shaped():
  data = _nearest_pairs(scale=3)
  with TrainPipeline(data, patch_size=4, batch_size=6, seed=0, num_workers=0) as pipeline:
    batch = next(pipeline)
  assert batch["hr"].shape == (6, 12, 12, 3) and batch["lr"].shape == (6, 4, 4, 3)
  assert batch["hr"].dtype == batch["lr"].dtype == np.uint8
  np.testing.assert_array_equal(batch["hr"], batch["lr"].repeat(3, 1).repeat(3, 2))
  assert len({batch["lr"][i].tobytes() for i in range(6)}) == 6


def test_crops_align_with_bicubic_lr_of_a_folder_set(tmp_path):
  rng = np.random.default_rng(1)
  for name in ("a", "b"):
    (tmp_path / "HR").mkdir(exist_ok=True)
    image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "HR" / f"{name}.png")
  data = folders.benchmark_dataset(tmp_path, scale=4, synthesize_lr=True)
  pipeline = TrainPipeline(data, patch_size=2, batch_size=4, seed=3, num_workers=0)
  pairs = load_pairs(data, num_workers=2)
  batch = pipeline.batch(0)
  for row, index in enumerate(pipeline.sample_indices(0)):
    lr = pairs[index].lr
    hr_patch, lr_patch = batch["hr"][row], batch["lr"][row]
    # Find the LR crop, then check the HR crop is the co-located 4x region.
    hits = [
      (y, x)
      for y in range(lr.shape[0] - 1)
      for x in range(lr.shape[1] - 1)
      if np.array_equal(lr[y : y + 2, x : x + 2], lr_patch)
    ]
    assert any(
      np.array_equal(pairs[index].hr[4 * y : 4 * y + 8, 4 * x : 4 * x + 8], hr_patch)
      for y, x in hits
    )


def test_same_size_pairs_crop_patch_times_scale_on_both_sides():
  data = _nearest_pairs(scale=2, same_size=True)
  pipeline = TrainPipeline(data, patch_size=3, batch_size=2, seed=0, num_workers=0)
  assert (pipeline.input_scale, pipeline.hr_patch, pipeline.lr_patch) == (1, 6, 6)
  batch = next(pipeline)
  assert batch["lr"].shape == batch["hr"].shape == (2, 6, 6, 3)
  np.testing.assert_array_equal(batch["lr"], 255 - batch["hr"])  # LR is 255 - HR pointwise.


def test_same_seed_same_batches_any_worker_count_and_different_seeds_differ():
  data = _nearest_pairs()
  kwargs = dict(patch_size=4, batch_size=4)
  serial = _take(TrainPipeline(data, seed=5, num_workers=0, **kwargs), 4)
  with TrainPipeline(data, seed=5, num_workers=2, prefetch=3, **kwargs) as threaded:
    assert _equal_batches(serial, _take(threaded, 4))
  other = _take(TrainPipeline(data, seed=6, num_workers=0, **kwargs), 4)
  assert not _equal_batches(serial, other)


def test_resume_from_json_state_continues_identically():
  data = _nearest_pairs()
  with TrainPipeline(data, patch_size=4, batch_size=3, seed=11, num_workers=2) as first:
    _take(first, 3)
    state = json.loads(json.dumps(first.get_state()))
    assert state == {
      "format": "grain-1",
      "seed": 11,
      "batch_size": 3,
      "iterator": {"next_index": 3},
    }
    expected = _take(first, 4)
  with TrainPipeline(data, patch_size=4, batch_size=3, seed=0, num_workers=2) as resumed:
    _take(resumed, 1)  # Position and seed both come from the state.
    resumed.set_state(state)
    assert _equal_batches(expected, _take(resumed, 4))
  with pytest.raises(ValueError, match="state"):
    resumed.set_state({"next_batch": 1})
  with pytest.raises(ValueError, match="batch_size 3 .* has 6"):
    TrainPipeline(data, patch_size=4, batch_size=6, num_workers=0).set_state(state)


def test_resume_of_a_threaded_pipeline_mid_prefetch():
  """k batches, state, m more; a fresh pipeline restored from the state yields the same m."""
  data = _nearest_pairs(count=3)
  kwargs = dict(patch_size=4, batch_size=4, seed=21)
  with TrainPipeline(data, num_workers=2, prefetch=4, **kwargs) as run:
    _take(run, 5)  # Batches 5..8 are already being built by the workers.
    state = run.get_state()
    expected = _take(run, 3)
  restored = TrainPipeline(data, num_workers=0, **kwargs)
  restored.set_state(state)
  assert _equal_batches(expected, _take(restored, 3))
  assert not _equal_batches(expected, [restored.batch(k) for k in range(3)])


def test_each_epoch_visits_every_image_once():
  data = _nearest_pairs(count=5)
  pipeline = TrainPipeline(data, patch_size=2, batch_size=5, seed=2, num_workers=0)
  epochs = [sorted(pipeline.sample_indices(k)) for k in range(3)]
  assert all(epoch == [0, 1, 2, 3, 4] for epoch in epochs)
  odd = TrainPipeline(data, patch_size=2, batch_size=3, seed=2, num_workers=0)
  samples = np.concatenate([odd.sample_indices(k) for k in range(5)])  # 15 samples, 3 epochs.
  assert all(sorted(samples[i : i + 5]) == [0, 1, 2, 3, 4] for i in (0, 5, 10))


def test_hosts_build_disjoint_rows_of_the_same_global_batch():
  data = _nearest_pairs()
  kwargs = dict(patch_size=4, batch_size=4, seed=9, num_workers=0)
  single = TrainPipeline(data, process_index=0, process_count=1, **kwargs).batch(2)
  hosts = [TrainPipeline(data, process_index=p, process_count=2, **kwargs).batch(2) for p in (0, 1)]
  for key in ("hr", "lr"):
    np.testing.assert_array_equal(np.concatenate([h[key] for h in hosts]), single[key])
  assert not np.array_equal(hosts[0]["lr"], hosts[1]["lr"])
  with pytest.raises(ValueError, match="divisible"):
    TrainPipeline(data, process_index=0, process_count=3, **kwargs)
  with pytest.raises(ValueError, match="process_index"):
    TrainPipeline(data, process_index=2, process_count=2, **kwargs)


def test_host_shards_are_disjoint_and_cover_every_sample():
  data = _nearest_pairs(count=7)
  kwargs = dict(patch_size=2, batch_size=8, seed=13, num_workers=0)
  single = TrainPipeline(data, process_count=1, process_index=0, **kwargs)
  hosts = [TrainPipeline(data, process_index=p, process_count=4, **kwargs) for p in range(4)]
  assert all(h.local_batch_size == 2 for h in hosts)
  for k in range(4):
    shards = [h.sample_indices(k) for h in hosts]
    np.testing.assert_array_equal(np.concatenate(shards), single.sample_indices(k))
    rows = [h.batch(k)["lr"] for h in hosts]
    # Rows of different hosts are different samples (distinct crops), all of them present.
    keys = [row.tobytes() for shard in rows for row in shard]
    assert len(set(keys)) == 8
    np.testing.assert_array_equal(np.concatenate(rows), single.batch(k)["lr"])
  # Over 7 batches (56 samples, 8 epochs of 7 images) the union is every image 8 times.
  union = np.concatenate([h.sample_indices(k) for k in range(7) for h in hosts])
  np.testing.assert_array_equal(np.bincount(union, minlength=7), [8] * 7)


def test_host_flips_keep_alignment():
  data = _nearest_pairs(scale=2)
  pipeline = TrainPipeline(
    data, patch_size=5, batch_size=8, seed=1, num_workers=0, flip_and_rotate=True
  )
  batch = pipeline.batch(0)
  np.testing.assert_array_equal(batch["hr"], batch["lr"].repeat(2, 1).repeat(2, 2))
  plain = TrainPipeline(data, patch_size=5, batch_size=8, seed=1, num_workers=0).batch(0)
  assert not np.array_equal(batch["lr"], plain["lr"])


def test_uncached_pipeline_equals_cached():
  data = _nearest_pairs()
  cached = TrainPipeline(data, patch_size=4, batch_size=4, seed=4, num_workers=0)
  lazy = TrainPipeline(data, patch_size=4, batch_size=4, seed=4, num_workers=0, cache=False)
  assert _equal_batches([cached.batch(k) for k in range(3)], [lazy.batch(k) for k in range(3)])


def test_patch_larger_than_an_image_names_the_image_and_patch_size():
  with pytest.raises(ValueError, match=r"'img0'.*patch_size=11"):
    TrainPipeline(_nearest_pairs(), patch_size=11, batch_size=2, num_workers=0)


def test_mismatched_pair_is_rejected():
  data = _nearest_pairs(count=2)
  data.append(ImagePair("odd", np.zeros((40, 40, 3), np.uint8), np.zeros((10, 10, 3), np.uint8)))
  with pytest.raises(ValueError, match="'odd'"):
    TrainPipeline(data, patch_size=2, batch_size=2, num_workers=0)


def test_prefetch_to_device_shards_batches_and_resumes_at_the_consumed_batch():
  mesh = jax.make_mesh((jax.device_count(),), ("data",))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  data = _nearest_pairs()
  pipeline = TrainPipeline(data, patch_size=4, batch_size=4, seed=3, num_workers=0)
  batches = prefetch_to_device(pipeline, sharding, size=2)
  first = next(batches)
  assert isinstance(first["hr"], jax.Array) and first["hr"].sharding == sharding
  np.testing.assert_array_equal(np.asarray(first["lr"]), pipeline.batch(0)["lr"])
  assert pipeline.get_state()["iterator"]["next_index"] == 3  # Two batches are in flight...
  state = batches.get_state()
  assert state["iterator"]["next_index"] == 1  # ...but the consumer has seen one.
  second = next(batches)
  fresh = TrainPipeline(data, patch_size=4, batch_size=4, seed=0, num_workers=0)
  resumed = prefetch_to_device(fresh, sharding)
  resumed.set_state(state)
  np.testing.assert_array_equal(np.asarray(next(resumed)["hr"]), np.asarray(second["hr"]))


def _coordinate_pairs(scale=2, height=10, width=12):
  """One image whose LR pixel holds its own (row, col) in channels 0 and 1."""
  rows, cols = np.mgrid[0:height, 0:width]
  lr = np.stack([rows, cols, np.zeros_like(rows)], -1).astype(np.uint8)
  return _Pairs([ImagePair("grid", lr.repeat(scale, 0).repeat(scale, 1), lr)], scale)


def test_crop_offsets_are_uniform():
  pipeline = TrainPipeline(
    _coordinate_pairs(), patch_size=4, batch_size=500, seed=17, num_workers=0
  )
  lr = np.concatenate([pipeline.batch(k)["lr"] for k in range(4)])  # 2000 crops
  for channel, positions in ((0, 7), (1, 9)):  # 10 - 4 + 1 rows, 12 - 4 + 1 columns.
    counts = np.bincount(lr[:, 0, 0, channel], minlength=positions)
    assert len(counts) == positions
    expected = len(lr) / positions
    assert np.all(np.abs(counts - expected) < 0.25 * expected), counts


def test_host_flips_each_fire_half_the_time():
  pipeline = TrainPipeline(
    _coordinate_pairs(), patch_size=4, batch_size=500, seed=19, num_workers=0, flip_and_rotate=True
  )
  batch = [pipeline.batch(k) for k in range(4)]
  lr = np.concatenate([b["lr"] for b in batch]).astype(int)
  hr = np.concatenate([b["hr"] for b in batch])
  np.testing.assert_array_equal(hr, lr.astype(np.uint8).repeat(2, 1).repeat(2, 2))
  transposed = lr[:, 1, 0, 0] == lr[:, 0, 0, 0]  # rows no longer change down axis 0
  vflip = np.where(transposed, lr[:, 0, 1, 0] < lr[:, 0, 0, 0], lr[:, 1, 0, 0] < lr[:, 0, 0, 0])
  hflip = np.where(transposed, lr[:, 1, 0, 1] < lr[:, 0, 0, 1], lr[:, 0, 1, 1] < lr[:, 0, 0, 1])
  for fired in (transposed, vflip, hflip):
    assert abs(fired.mean() - 0.5) < 0.05  # 4.5 standard deviations for 2000 draws


def test_an_old_pipeline_state_resumes_at_its_batch_and_image_order():
  data = _nearest_pairs()
  legacy = {"seed": 5, "next_batch": 3, "batch_size": 2}  # what version 0.1.0 saved
  with TrainPipeline(data, patch_size=4, batch_size=2, seed=0, num_workers=0) as pipeline:
    pipeline.set_state(legacy)
    assert pipeline.get_state() == {
      "format": "grain-1",
      "seed": 5,
      "batch_size": 2,
      "iterator": {"next_index": 3},
    }
    expected = TrainPipeline(data, patch_size=4, batch_size=2, seed=5, num_workers=0).batch(3)
    assert _equal_batches([next(pipeline)], [expected])


def test_crop_offsets_cover_every_position_uniformly():
  lr = np.arange(6 * 6, dtype=np.uint8).reshape(6, 6, 1).repeat(3, -1)
  data = _Pairs([ImagePair("grid", lr.repeat(2, 0).repeat(2, 1), lr)], 2)
  with TrainPipeline(data, patch_size=2, batch_size=50, seed=3, num_workers=0) as pipeline:
    corners = np.concatenate([next(pipeline)["lr"][:, 0, 0, 0] for _ in range(40)])
  counts = np.bincount(corners, minlength=36).reshape(6, 6)[:5, :5]  # 25 offsets
  assert counts.sum() == 2000 and np.all(np.abs(counts / 80 - 1) < 0.4), counts


_FOUR_DEVICE_SCRIPT = r"""
import os
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
import jax
import numpy as np
from cutblur_jax.data.pipeline import TrainPipeline
from cutblur_jax.data.prefetch import prefetch_to_device
from cutblur_jax.data.types import ImagePair

class Pairs(list):
  scale = 2

rng = np.random.default_rng(0)
data = Pairs(ImagePair(str(i), rng.integers(0, 256, (20, 24, 3), dtype=np.uint8),
                       rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)) for i in range(3))
assert jax.device_count() == 4
mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
pipeline = TrainPipeline(data, patch_size=4, batch_size=8, seed=1, num_workers=2)
batches = prefetch_to_device(pipeline, sharding)
for k in range(3):
  batch = next(batches)
  expected = pipeline.batch(k)
  for key in ("hr", "lr"):
    array = batch[key]
    assert array.sharding == sharding and array.shape[0] == 8, (key, array.sharding)
    shards = sorted(array.addressable_shards, key=lambda s: s.index[0].start)
    assert [s.data.shape[0] for s in shards] == [2, 2, 2, 2]
    assert len({s.device for s in shards}) == 4
    np.testing.assert_array_equal(np.concatenate([np.asarray(s.data) for s in shards]),
                                  expected[key])
pipeline.close()
print("OK")
"""


def test_prefetch_shards_each_batch_over_four_devices(tmp_path):
  import os  # pylint: disable=import-outside-toplevel
  import pathlib  # pylint: disable=import-outside-toplevel
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel

  script = tmp_path / "four_devices.py"
  script.write_text(_FOUR_DEVICE_SCRIPT)
  root = pathlib.Path(__file__).resolve().parents[1]
  env = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    "JAX_PLATFORMS": "cpu",
  }
  result = subprocess.run(
    [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300, check=False
  )
  assert result.returncode == 0 and result.stdout.strip().endswith("OK"), result.stderr[-3000:]
