"""TFDS sources (tfds.data_source, no TensorFlow) and our array_record builder."""

import sys
from unittest import mock

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from cutblur_jax.data import folders
from cutblur_jax.data.pipeline import TrainPipeline
from cutblur_jax.data.tfds_builders import build_folder_tfds, folder_config_name, main
from cutblur_jax.data.spec import tfds_scale
from cutblur_jax.data.tfds_sources import tfds_dataset


def _fixed_shape_info(scale):
  """DIV2K's features with fixed shapes, so mock_data's random records are x``scale`` pairs."""

  def info(self):
    return tfds.core.DatasetInfo(
      builder=self,
      features=tfds.features.FeaturesDict(
        {
          "lr": tfds.features.Image(shape=(6, 8, 3)),
          "hr": tfds.features.Image(shape=(6 * scale, 8 * scale, 3)),
        }
      ),
      supervised_keys=("lr", "hr"),
    )

  return info


@pytest.mark.parametrize(
  "name", ["div2k/bicubic_x2", "div2k/unknown_x3", "div2k/realistic_mild_x4"]
)
def test_mocked_div2k_reads_through_data_source_without_tensorflow(tmp_path, name):
  scale = int(name[-1])
  with (
    mock.patch.object(tfds.builder_cls("div2k"), "_info", _fixed_shape_info(scale)),
    tfds.testing.mock_data(num_examples=5),
  ):
    data = tfds_dataset(name, split="validation", data_dir=tmp_path)
    assert len(data) == 5 and data.scale == scale and data.split == "validation"
    pair = data[3]
    assert pair.name == "validation/3"
    assert pair.hr.shape == (6 * scale, 8 * scale, 3) and pair.lr.shape == (6, 8, 3)
    assert pair.hr.dtype == np.uint8
    with TrainPipeline(data, patch_size=4, batch_size=2, seed=0, num_workers=2) as pipeline:
      batch = next(pipeline)
  assert batch["hr"].shape == (2, 4 * scale, 4 * scale, 3) and batch["lr"].shape == (2, 4, 4, 3)
  assert "tensorflow" not in sys.modules


def test_mocked_records_that_are_not_pairs_are_rejected_naming_the_record(tmp_path):
  with tfds.testing.mock_data(num_examples=2):  # Random, unrelated HR and LR sizes.
    data = tfds_dataset("div2k/unknown_x4", split="train", data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"record 0 .*tfds:div2k/unknown_x4 train"):
      data[0]


def test_scale_comes_from_the_name_and_must_agree(tmp_path):
  assert tfds_scale("div2k/bicubic_x3") == 3
  assert tfds_scale("div2k/realistic_wild_x4:2.0.0") == 4
  assert tfds_scale("cutblur_folders/div2k_dn_sigma30") is None
  with pytest.raises(ValueError, match="disagrees"):
    tfds_dataset("div2k/bicubic_x2", scale=4, data_dir=tmp_path)


def test_unprepared_data_set_says_how_to_prepare_it(tmp_path):
  with pytest.raises(ValueError, match=r"not prepared.*array_record"):
    tfds_dataset("div2k/bicubic_x4", split="train", data_dir=tmp_path)
  with pytest.raises(ValueError, match="build_folder_tfds"):
    tfds_dataset("cutblur_folders/set5_sr_x4", split="test", data_dir=tmp_path)


def _benchmark(root, scale=2, count=3):
  rng = np.random.default_rng(0)
  for i in range(count):
    lr = rng.integers(0, 256, (5 + i, 7, 3), dtype=np.uint8)
    (root / "HR").mkdir(parents=True, exist_ok=True)
    (root / f"X{scale}").mkdir(parents=True, exist_ok=True)
    Image.fromarray(lr.repeat(scale, 0).repeat(scale, 1)).save(root / "HR" / f"im{i}.png")
    Image.fromarray(lr).save(root / f"X{scale}" / f"im{i}x{scale}.png")


def test_builder_packs_folders_into_array_record_and_reads_back(tmp_path):
  _benchmark(tmp_path / "Set5")
  name = build_folder_tfds(
    "Set5_SR", manual_dir=tmp_path / "Set5", data_dir=tmp_path / "tfds", scale=2
  )
  assert name == "cutblur_folders/set5_sr_x2"
  version_dir = tmp_path / "tfds" / "cutblur_folders" / "set5_sr_x2" / "1.0.0"
  assert list(version_dir.glob("*.array_record*"))
  packed = tfds_dataset(name, split="validation", data_dir=tmp_path / "tfds")  # falls back to test
  assert packed.split == "test"
  expected = {pair.name: pair for pair in folders.benchmark_dataset(tmp_path / "Set5", scale=2)}
  assert sorted(packed[i].name for i in range(len(packed))) == sorted(expected)
  for pair in packed:
    np.testing.assert_array_equal(pair.hr, expected[pair.name].hr)
    np.testing.assert_array_equal(pair.lr, expected[pair.name].lr)
  assert "tensorflow" not in sys.modules


def test_builder_stores_synthesised_and_cropped_images_and_custom_ranges(tmp_path):
  rng = np.random.default_rng(1)
  (tmp_path / "DIV2K_train_HR").mkdir()
  for i in range(1, 4):
    Image.fromarray(rng.integers(0, 256, (9, 13), dtype=np.uint8)).save(
      tmp_path / "DIV2K_train_HR" / f"{i:04d}.png"
    )  # grayscale, not mod-cropped
  main(
    [
      "--dataset",
      "DIV2K_SR",
      "--dataset_root",
      str(tmp_path),
      "--data_dir",
      str(tmp_path / "tfds"),
      "--scale",
      "2",
      "--div2k_range",
      "1-2/3-3",
      "--synthesize_lr",
    ]
  )
  name = "cutblur_folders/" + folder_config_name(
    "DIV2K_SR", scale=2, div2k_range="1-2/3-3", synthesize_lr=True
  )
  assert name.endswith("div2k_sr_x2_r1-2_3-3_synth")
  train = tfds_dataset(name, split="train", data_dir=tmp_path / "tfds")
  source = folders.div2k_dataset(tmp_path, scale=2, div2k_range="1-2/3-3", synthesize_lr=True)
  by_name = {pair.name: pair for pair in train}
  assert sorted(by_name) == ["0001", "0002"]
  np.testing.assert_array_equal(by_name["0002"].hr, source[1].hr)
  np.testing.assert_array_equal(by_name["0002"].lr, source[1].lr)
  assert by_name["0002"].hr.shape == (8, 12, 3)


def test_builder_reencodes_16_bit_png_instead_of_copying_it(tmp_path):
  from test_io import _write_png16  # pylint: disable=import-outside-toplevel

  root = tmp_path / "Set14"
  samples = np.random.default_rng(2).integers(0, 65536, (8, 10, 3), dtype=np.uint16)
  (root / "HR").mkdir(parents=True)
  _write_png16(root / "HR" / "a.png", samples)
  Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(_mkdir(root / "X2") / "a.png")
  name = build_folder_tfds("Set14_SR", manual_dir=root, data_dir=tmp_path / "tfds", scale=2)
  (pair,) = list(tfds_dataset(name, split="test", data_dir=tmp_path / "tfds"))
  np.testing.assert_array_equal(pair.hr, folders.benchmark_dataset(root, scale=2)[0].hr)
  np.testing.assert_array_equal(pair.hr, np.floor(samples / 257 + 0.5).astype(np.uint8))


def _mkdir(path):
  path.mkdir(parents=True, exist_ok=True)
  return path
