"""The embedded data set: offline photos, fixed split, MATLAB-bicubic LR, caching."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from cutblur_jax.data import embedded
from cutblur_jax.data.degradations import Degradation
from cutblur_jax.data.embedded import TRAIN_IMAGES, VALIDATION_IMAGES, embedded_dataset, load_photo
from cutblur_jax.data.bicubic import imresize
from cutblur_jax.data.types import ImagePair


def test_every_photo_loads_without_network(monkeypatch):
  def refuse(*args, **kwargs):
    raise OSError("network disabled in this test")

  monkeypatch.setattr(socket.socket, "connect", refuse)
  monkeypatch.setattr(socket, "create_connection", refuse)
  load_photo.cache_clear()
  embedded._pairs.cache_clear()
  for name in TRAIN_IMAGES + VALIDATION_IMAGES:
    image = load_photo(name)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3
    assert min(image.shape[:2]) >= 300, name
    assert image.std() > 10, name  # A real picture, not a blank.


def test_split_is_fixed_and_disjoint():
  assert set(TRAIN_IMAGES).isdisjoint(VALIDATION_IMAGES)
  assert len(TRAIN_IMAGES) == 7 and len(VALIDATION_IMAGES) == 2
  assert embedded_dataset("train", 4).names == list(TRAIN_IMAGES)
  assert embedded_dataset("validation", 4).names == list(VALIDATION_IMAGES)
  assert (
    embedded_dataset("test", 4).names
    == embedded_dataset("valid", 4).names
    == list(VALIDATION_IMAGES)
  )
  assert embedded_dataset("valid", 4).split == "validation"


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_pairs_are_modcropped_hr_and_matlab_bicubic_lr(scale):
  data = embedded_dataset("validation", scale)
  assert data.scale == data.input_scale == scale and len(data) == 2
  for pair, name in zip(data, VALIDATION_IMAGES):
    assert isinstance(pair, ImagePair) and pair.name == name
    full = load_photo(name)
    h, w = pair.hr.shape[:2]
    assert h % scale == 0 and w % scale == 0
    assert 0 <= full.shape[0] - h < scale and 0 <= full.shape[1] - w < scale
    np.testing.assert_array_equal(pair.hr, full[:h, :w])
    assert pair.lr.shape == (h // scale, w // scale, 3) and pair.lr.dtype == np.uint8
    np.testing.assert_array_equal(pair.lr, imresize(pair.hr, 1 / scale))
    assert pair.hr.flags.c_contiguous and pair.lr.flags.c_contiguous


def test_lr_is_a_faithful_downscale():
  pair = embedded_dataset("validation", 2)[0]
  block_mean = pair.hr.reshape(pair.lr.shape[0], 2, pair.lr.shape[1], 2, 3).mean(axis=(1, 3))
  assert np.abs(block_mean - pair.lr).mean() < 4


def test_max_size_centre_crops_before_modcrop():
  data = embedded_dataset("validation", 3, max_size=200)
  assert data.max_size == 200
  for pair in data:
    assert pair.hr.shape == (198, 198, 3) and pair.lr.shape == (66, 66, 3)
  full = load_photo("chelsea")
  top, left = (300 - 200) // 2, (451 - 200) // 2
  np.testing.assert_array_equal(data[0].hr, full[top : top + 198, left : left + 198])
  big = embedded_dataset("validation", 4, max_size=10_000)
  np.testing.assert_array_equal(big[0].hr, embedded_dataset("validation", 4)[0].hr)


def test_cached_and_read_only():
  first = embedded_dataset("train", 2)
  second = embedded_dataset("train", 2)
  assert first[0].hr is second[0].hr  # Built once.
  with pytest.raises(ValueError):
    first[0].lr[0, 0, 0] = 1


def test_sequence_protocol():
  data = embedded_dataset("train", 4)
  assert len(data) == 7 and data[-1].name == "rocket"
  assert [pair.name for pair in data[1:3]] == ["coffee", "colorwheel"]
  assert [pair.name for pair in data] == data.names
  with pytest.raises(IndexError):
    data[7]
  assert "embedded x4 train" in repr(data)


def test_bad_arguments():
  with pytest.raises(ValueError, match="`split`"):
    embedded_dataset("training")
  for scale in (0, 2.0, True):
    with pytest.raises(ValueError, match="`scale`"):
      embedded_dataset("train", scale)
  with pytest.raises(ValueError, match="`max_size`"):
    embedded_dataset("train", 4, max_size=3)
  with pytest.raises(ValueError, match="Unknown embedded photo 'lena'"):
    load_photo("lena")


@pytest.mark.parametrize("sigma", [10, 50])
def test_noisy_pairs_hold_seeded_gaussian_noise_of_sigma(sigma):
  noise = Degradation("noise", sigma=sigma, noise_seed=3)
  data = embedded_dataset("validation", 1, degradation=noise)
  assert data.scale == data.input_scale == 1 and data.names == list(VALIDATION_IMAGES)
  assert data.description == f"embedded DN sigma {sigma} validation"
  for pair, clean in zip(data, embedded_dataset("validation", 1)):
    np.testing.assert_array_equal(pair.hr, clean.hr)
    assert pair.lr.shape == pair.hr.shape and pair.lr.dtype == np.uint8
    inside = (pair.hr > 60) & (pair.hr < 195)  # away from the clipping at 0 and 255
    residual = pair.lr.astype(float)[inside] - pair.hr.astype(float)[inside]
    assert abs(residual.mean()) < 0.5 and residual.std() == pytest.approx(sigma, rel=0.05)
  again = embedded_dataset("validation", 1, degradation=noise)
  np.testing.assert_array_equal(again[0].lr, data[0].lr)
  other = embedded_dataset(
    "validation", 1, degradation=Degradation("noise", sigma=sigma, noise_seed=4)
  )
  assert not np.array_equal(other[0].lr, data[0].lr)


def test_jpeg_pairs_and_degradation_checks():
  data = embedded_dataset("validation", 1, degradation=Degradation("jpeg", quality=10))
  pair = data[0]
  assert pair.lr.shape == pair.hr.shape and not np.array_equal(pair.lr, pair.hr)
  with pytest.raises(ValueError, match="keeps the image size"):
    embedded_dataset("train", 2, degradation=Degradation("noise", sigma=30))
  with pytest.raises(ValueError, match="does not match"):
    embedded_dataset("train", 2, degradation=Degradation("bicubic", scale=4))
  with pytest.raises(TypeError, match="Degradation"):
    embedded_dataset("train", 1, degradation="noise")
  bicubic = embedded_dataset("train", 2, degradation=Degradation("bicubic", scale=2))
  assert bicubic[0] is embedded_dataset("train", 2)[0]  # the default, one cache entry


def test_public_api():
  assert set(embedded.__all__) == {
    "EmbeddedDataset",
    "TRAIN_IMAGES",
    "VALIDATION_IMAGES",
    "embedded_dataset",
    "embedded_source",
    "load_photo",
  }


def test_docstring_examples_run():
  import doctest  # pylint: disable=g-import-not-at-top

  results = doctest.testmod(embedded, optionflags=doctest.NORMALIZE_WHITESPACE)
  assert results.attempted > 0 and results.failed == 0
