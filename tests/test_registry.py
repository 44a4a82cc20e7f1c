"""Selection of data sets and pipelines by config, with the official CLI's names."""

import ml_collections
import numpy as np
import pytest
from PIL import Image

from cutblur_jax.data import registry
from cutblur_jax.data.folders import FolderDataset
from cutblur_jax.data.tfds_builders import build_folder_tfds, folder_config_name
from cutblur_jax.data.tfds_sources import TfdsDataset


def _write_pairs(hr_dir, lr_dir, names, scale, *, lr_name="{}", size=(6, 8), seed=0):
  rng = np.random.default_rng(seed)
  hr_dir.mkdir(parents=True, exist_ok=True)
  lr_dir.mkdir(parents=True, exist_ok=True)
  for name in names:
    small = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    hr = small.repeat(scale, 0).repeat(scale, 1)
    Image.fromarray(hr).save(hr_dir / f"{name}.png")
    Image.fromarray(hr if lr_name.endswith("same") else small).save(
      lr_dir / (lr_name.replace("same", "").format(name) + ".png")
    )


def _config(**fields):
  config = ml_collections.ConfigDict()
  config.model = "EDSR"  # Fields the data does not use are ignored.
  config.lr = 1e-4
  for key, value in fields.items():
    config[key] = value
  return config


def test_defaults_match_the_reference_cli():
  options = registry.data_options(None)
  assert options == {
    "dataset": "DIV2K_SR",
    "dataset_root": "",
    "scale": 4,
    "div2k_range": "1-800/801-810",
    "camera": "all",
    "sigma": 10,
    "quality": 10,
    "patch_size": 48,
    "batch_size": 16,
    "num_workers": 2,
    "seed": 1,
    "synthesize_lr": False,
    "noise_seed": 0,
  }
  nested = ml_collections.ConfigDict({"data": {"dataset": "Set5_SR", "scale": 2}, "seed": 3})
  assert registry.data_options(nested)["dataset"] == "Set5_SR"
  assert registry.data_options({"scale": 2}, scale=3)["scale"] == 3
  with pytest.raises(TypeError, match="Unknown data options"):
    registry.data_options(None, patchsize=3)


def test_div2k_tasks_by_config(tmp_path):
  _write_pairs(
    tmp_path / "DIV2K_train_HR",
    tmp_path / "DIV2K_train_LR_bicubic" / "X2",
    ["0001", "0002", "0003"],
    2,
    lr_name="{}x2",
  )
  _write_pairs(
    tmp_path / "unused",
    tmp_path / "DIV2K_train_DN" / "30",
    ["0001", "0002", "0003"],
    2,
    lr_name="{}same",
  )
  config = _config(dataset="DIV2K_SR", dataset_root=str(tmp_path), scale=2, div2k_range="1-2/3-3")
  train = registry.create_dataset(config, "train")
  valid = registry.create_dataset(config, "validation")
  assert isinstance(train, FolderDataset)
  assert train.names == ["0001", "0002"] and valid.names == ["0003"]
  config.dataset, config.scale, config.sigma = "DIV2K_DN", 1, 30
  dn = registry.create_dataset(config, "train")
  assert dn.input_scale == 1 and "DN/30" in str(dn.lr_paths[0])
  config.dataset, config.quality, config.synthesize_lr = "DIV2K_JPEG", 40, True
  jpeg = registry.create_dataset(config, "validation")
  assert jpeg.lr_paths is None and jpeg[0].lr.shape == jpeg[0].hr.shape


def test_realsr_by_config_and_its_pipeline_patch(tmp_path):
  for camera in ("Canon", "Nikon"):
    folder = tmp_path / camera / "Train" / "2"
    _write_pairs(
      folder, folder, [f"{camera}_001_HR"], 2, lr_name=f"{camera}_001_LR2same", size=(8, 8)
    )
  config = _config(
    dataset="RealSR",
    dataset_root=str(tmp_path),
    scale=2,
    camera="nikon",
    patch_size=3,
    batch_size=2,
    num_workers=0,
  )
  data = registry.create_dataset(config, "train")
  assert data.names == ["Nikon_001"] and data.input_scale == 1
  batch = next(registry.create_pipeline(config))
  assert batch["hr"].shape == batch["lr"].shape == (2, 6, 6, 3)  # patch_size * scale on both.


@pytest.mark.parametrize("name", ["Set5", "Set14", "B100", "Urban100", "Manga109"])
def test_benchmark_sets_by_config(tmp_path, name):
  _write_pairs(tmp_path / name / "HR", tmp_path / name / "X3", ["a", "b"], 3)
  config = _config(dataset=f"{name}_SR", dataset_root=str(tmp_path), scale=3)
  data = registry.create_dataset(config, "test")
  assert len(data) == 2 and data[0].hr.shape == (18, 24, 3) and data.description.startswith(name)


def test_tfds_by_config(tmp_path):
  _write_pairs(tmp_path / "Set5" / "HR", tmp_path / "Set5" / "X2", ["a", "b"], 2)
  name = build_folder_tfds(
    "Set5_SR", manual_dir=tmp_path / "Set5", data_dir=tmp_path / "tfds", scale=2
  )
  config = _config(
    dataset=f"tfds:{name}",
    dataset_root=str(tmp_path / "tfds"),
    scale=2,
    patch_size=4,
    batch_size=2,
    num_workers=0,
  )
  data = registry.create_dataset(config, "test")
  assert isinstance(data, TfdsDataset) and len(data) == 2
  batch = next(registry.create_pipeline(config, dataset=data))
  assert batch["hr"].shape == (2, 8, 8, 3) and batch["lr"].shape == (2, 4, 4, 3)


def test_embedded_by_config_needs_no_files():
  config = _config(dataset="embedded", scale=2, patch_size=8, batch_size=2, num_workers=0)
  train = registry.create_dataset(config, "train")
  assert len(train) > 0 and train[0].hr.shape[:2] == tuple(2 * n for n in train[0].lr.shape[:2])
  batch = next(registry.create_pipeline(config, dataset=train))
  assert batch["hr"].shape == (2, 16, 16, 3) and batch["lr"].dtype == np.uint8
  valid = registry.create_dataset(config, "validation")
  test = registry.create_dataset(config, "test")
  assert valid.names == test.names and not set(valid.names) & set(train.names)


def test_embedded_denoising_by_config_is_same_size_at_any_network_scale():
  config = _config(
    dataset="embedded_DN",
    scale=4,
    sigma=30,
    noise_seed=2,
    patch_size=8,
    batch_size=2,
    num_workers=0,
  )
  train = registry.create_dataset(config, "train")
  assert train.scale == 1 and train[0].lr.shape == train[0].hr.shape
  assert train.description == "embedded DN sigma 30 train"
  batch = next(registry.create_pipeline(config, dataset=train))
  assert batch["hr"].shape == batch["lr"].shape == (2, 8, 8, 3)
  jpeg = registry.create_dataset({**config, "dataset": "embedded_JPEG"}, "validation")
  assert jpeg.description == "embedded JPEG quality 10 validation"


def test_first_images_keeps_the_data_set_attributes():
  data = registry.create_dataset(_config(dataset="embedded", scale=2), "train")
  head = registry.first_images(data, 2)
  assert len(head) == 2 and head.names == data.names[:2] and head.scale == 2
  assert [pair.name for pair in head] == data.names[:2] and head[-1] is data[1]
  assert [pair.name for pair in head[0:5]] == data.names[:2]
  with pytest.raises(IndexError):
    head[2]  # pylint: disable=pointless-statement
  assert registry.first_images(data, None) is data
  assert registry.first_images(data, len(data)) is data
  for bad in (0, -1, 2.0, True):
    with pytest.raises(ValueError, match="num_train_images"):
      registry.first_images(data, bad)
  with pytest.raises(ValueError, match="has only 7 images"):
    registry.first_images(data, 8)


def test_reference_dataset_name_maps_tfds_names_to_the_data_they_hold():
  for name in ("DIV2K_SR", "RealSR", "Set5_SR", "embedded", "tfds:something/else"):
    assert registry.reference_dataset_name(name) == name
  assert registry.reference_dataset_name("tfds:div2k/bicubic_x4") == "DIV2K_SR"
  assert registry.reference_dataset_name("tfds:div2k/realistic_wild_x4:2.0.0") == "DIV2K_SR"
  for dataset, options, expected in [
    ("DIV2K_SR", dict(scale=2, div2k_range="1-10/11-12"), "DIV2K_SR"),
    ("DIV2K_DN", dict(scale=1, sigma=30, synthesize_lr=True), "DIV2K_DN"),
    ("DIV2K_JPEG", dict(scale=1, quality=20), "DIV2K_JPEG"),
    ("RealSR", dict(camera="canon"), "RealSR"),
    ("Urban100_SR", dict(scale=4), "Urban100_SR"),
    ("CBSD68_DN", dict(scale=1, sigma=15), "CBSD68_DN"),
  ]:
    name = f"tfds:cutblur_folders/{folder_config_name(dataset, **options)}"
    assert registry.reference_dataset_name(name) == expected, name
  with pytest.raises(ValueError, match="Unknown dataset"):  # not a name the folders can read
    folder_config_name("My_Set_DN", scale=1)


def test_unknown_dataset_lists_the_names():
  with pytest.raises(ValueError, match=r"Unknown dataset 'DIV3K'.*DIV2K_SR.*tfds:NAME.*embedded"):
    registry.create_dataset({"dataset": "DIV3K"})
  with pytest.raises(ValueError, match="dataset_root"):
    registry.create_dataset({"dataset": "Set5_SR"})


def test_pipeline_by_config_is_deterministic_and_takes_overrides(tmp_path):
  _write_pairs(
    tmp_path / "Set14" / "HR", tmp_path / "Set14" / "X2", ["a", "b", "c"], 2, size=(10, 12)
  )
  config = _config(
    dataset="Set14_SR",
    dataset_root=str(tmp_path),
    scale=2,
    patch_size=4,
    batch_size=3,
    num_workers=0,
    seed=5,
  )
  first = registry.create_pipeline(config)
  lazy = registry.create_pipeline(config, cache=False, num_workers=2)
  assert (first.seed, first.batch_size, first.patch_size, first.num_workers) == (5, 3, 4, 0)
  assert lazy.num_workers == 2
  for _ in range(2):
    a, b = next(first), next(lazy)
    np.testing.assert_array_equal(a["hr"], b["hr"])
    np.testing.assert_array_equal(a["lr"], b["lr"])
  lazy.close()
  other = registry.create_pipeline(config, seed=6)
  assert not np.array_equal(next(other)["lr"], registry.create_pipeline(config).batch(0)["lr"])


def test_same_size_task_at_an_sr_scale_reads_same_size_pairs(tmp_path):
  _write_pairs(tmp_path / "DIV2K_train_HR", tmp_path / "DIV2K_train_DN" / "10", ["0001"], 1)
  data = registry.create_dataset(
    {"dataset": "DIV2K_DN", "dataset_root": str(tmp_path), "scale": 4, "div2k_range": "1-1/1-1"}
  )
  assert data.scale == 1 and data[0].hr.shape == data[0].lr.shape


def test_every_public_name_resolves():
  import cutblur_jax.data as data  # pylint: disable=import-outside-toplevel

  assert sorted(data._EXPORTS) == data.__all__  # pylint: disable=protected-access
  for name in data.__all__:
    getattr(data, name)
    assert name in dir(data)
  with pytest.raises(AttributeError, match="no_such_name"):
    getattr(data, "no_such_name")  # noqa: B009  # the lookup is what is tested
