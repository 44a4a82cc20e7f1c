"""Tests for cutblur_jax.data.io (read_image, write_image) and cutblur_jax.data.types."""

from __future__ import annotations

import os
import struct
import zlib

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image, ImageFile

from cutblur_jax.data.io import read_image, write_image
from cutblur_jax.data.types import ImagePair


def _load(path):
  """A fully read Pillow image whose file is closed."""
  with Image.open(path) as image:
    image.load()
    return image.copy()


def _rng(seed=0):
  return np.random.default_rng(seed)


def _write_png16(path, samples: np.ndarray) -> None:
  """Writes a 16-bit PNG by hand (Pillow cannot), cycling through all five row filters."""
  height, width, channels = samples.shape
  color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
  bpp = 2 * channels
  rows = samples.astype(">u2").reshape(height, width * bpp // 2).view(np.uint8).reshape(height, -1)
  rows = rows.astype(np.int32)
  encoded = []
  for y in range(height):
    row = rows[y]
    up = rows[y - 1] if y else np.zeros_like(row)
    left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
    up_left = np.concatenate([np.zeros(bpp, np.int32), up[:-bpp]])
    kind = y % 5
    if kind == 0:
      predictor = np.zeros_like(row)
    elif kind == 1:
      predictor = left
    elif kind == 2:
      predictor = up
    elif kind == 3:
      predictor = (left + up) // 2
    else:
      estimate = left + up - up_left
      pa, pb, pc = np.abs(estimate - left), np.abs(estimate - up), np.abs(estimate - up_left)
      predictor = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
    encoded.append(bytes([kind]) + ((row - predictor) % 256).astype(np.uint8).tobytes())

  def chunk(kind: bytes, data: bytes) -> bytes:
    return (
      struct.pack(">I", len(data))
      + kind
      + data
      + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )

  header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
  with open(path, "wb") as stream:
    stream.write(
      b"\x89PNG\r\n\x1a\n"
      + chunk(b"IHDR", header)
      + chunk(b"IDAT", zlib.compress(b"".join(encoded)))
      + chunk(b"IEND", b"")
    )


def _round_257(values: np.ndarray) -> np.ndarray:
  return np.floor(values.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)


def test_image_pair_fields():
  hr, lr = np.zeros((8, 8, 3), np.uint8), np.ones((2, 2, 3), np.uint8)
  pair = ImagePair("0001", hr, lr)
  assert pair._fields == ("name", "hr", "lr")
  name, got_hr, got_lr = pair
  assert name == "0001" and got_hr is hr and got_lr is lr


def test_rgb_round_trip(tmp_path):
  image = _rng().integers(0, 256, (13, 17, 3), dtype=np.uint8)
  path = write_image(tmp_path / "rgb.png", image)
  assert path == tmp_path / "rgb.png"
  got = read_image(path)
  np.testing.assert_array_equal(got, image)
  assert got.dtype == np.uint8 and got.flags.c_contiguous and got.flags.writeable
  with Image.open(path) as image:
    assert image.format == "PNG"


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale_is_replicated(tmp_path, mode):
  gray = _rng().integers(0, 256, (9, 11), dtype=np.uint8)
  Image.fromarray(gray).convert(mode).save(tmp_path / "gray.png")
  got = read_image(tmp_path / "gray.png")
  expected = np.asarray(_load(tmp_path / "gray.png").convert("L"))
  assert got.shape == (9, 11, 3)
  for channel in range(3):
    np.testing.assert_array_equal(got[..., channel], expected)
  if mode == "1":
    assert set(np.unique(got)) <= {0, 255}


def test_alpha_is_dropped_not_composited(tmp_path):
  rgba = _rng().integers(0, 256, (7, 8, 4), dtype=np.uint8)
  rgba[..., 3] = 0  # fully transparent: compositing would change every colour
  Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
  np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), rgba[..., :3])
  la = _rng(1).integers(0, 256, (7, 8, 2), dtype=np.uint8)
  Image.fromarray(la, "LA").save(tmp_path / "la.png")
  np.testing.assert_array_equal(read_image(tmp_path / "la.png"), np.repeat(la[..., :1], 3, -1))


def test_palette_and_cmyk_are_converted(tmp_path):
  image = _rng().integers(0, 256, (10, 12, 3), dtype=np.uint8)
  palette = Image.fromarray(image).quantize(colors=16)
  palette.info["transparency"] = 0
  palette.save(tmp_path / "palette.png")
  expected = np.asarray(_load(tmp_path / "palette.png").convert("RGB"))
  np.testing.assert_array_equal(read_image(tmp_path / "palette.png"), expected)
  assert len(np.unique(expected.reshape(-1, 3), axis=0)) > 1
  Image.fromarray(image).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
  expected = np.asarray(_load(tmp_path / "cmyk.jpg").convert("RGB"))
  np.testing.assert_array_equal(read_image(tmp_path / "cmyk.jpg"), expected)


def test_16_bit_grayscale_rounds(tmp_path):
  edge_values = np.array([0, 1, 128, 129, 385, 386, 32767, 65407, 65408, 65535], np.uint16)
  samples = np.concatenate([edge_values, _rng().integers(0, 65536, 90, dtype=np.uint16)])
  samples = samples.reshape(10, 10)
  Image.fromarray(samples).save(tmp_path / "gray16.png")
  assert _load(tmp_path / "gray16.png").mode.startswith("I;16")
  got = read_image(tmp_path / "gray16.png")
  np.testing.assert_array_equal(got, np.repeat(_round_257(samples)[..., None], 3, -1))
  # Hand-checked: 128/257 = 0.498 -> 0, 129/257 = 0.502 -> 1, 65535 -> 255.
  np.testing.assert_array_equal(got[0, :4, 0], [0, 0, 0, 1])
  assert got[0, 9, 0] == 255


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16_bit_png_all_filters(tmp_path, channels):
  samples = _rng(channels).integers(0, 65536, (11, 6, channels), dtype=np.uint16)
  samples[0, 0] = 128  # rounds down: truncating to the high byte would also give 0
  samples[0, 1] = 65407  # 254.5 -> 254 vs high byte 255
  path = tmp_path / f"c{channels}.png"
  _write_png16(path, samples)
  expected = _round_257(samples)
  expected = np.repeat(expected[..., :1], 3, -1) if channels <= 2 else expected[..., :3]
  got = read_image(path)
  np.testing.assert_array_equal(got, expected)
  # Differs from the high byte (what Pillow alone, and the reference, would give).
  high = (samples >> 8).astype(np.uint8)
  high = np.repeat(high[..., :1], 3, -1) if channels <= 2 else high[..., :3]
  assert got.shape == high.shape and not np.array_equal(got, high)


def test_unsupported_modes_name_the_path(tmp_path):
  Image.fromarray(np.zeros((3, 3), np.float32)).save(tmp_path / "float.tiff")
  with pytest.raises(ValueError, match="float.tiff.*unsupported mode 'F'"):
    read_image(tmp_path / "float.tiff")
  Image.fromarray(np.full((3, 3), -5, np.int32)).save(tmp_path / "negative.tiff")
  with pytest.raises(ValueError, match="negative.tiff"):
    read_image(tmp_path / "negative.tiff")


def test_bad_files_raise_value_error_with_path(tmp_path):
  with pytest.raises(ValueError, match="not found.*missing.png"):
    read_image(tmp_path / "missing.png")
  with pytest.raises(ValueError, match="directory"):
    read_image(tmp_path)
  (tmp_path / "text.png").write_text("not an image")
  with pytest.raises(ValueError, match="text.png"):
    read_image(tmp_path / "text.png")


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_truncated_file_is_rejected(tmp_path, suffix):
  assert not ImageFile.LOAD_TRUNCATED_IMAGES
  image = _rng().integers(0, 256, (64, 64, 3), dtype=np.uint8)
  Image.fromarray(image).save(tmp_path / f"full.{suffix}")
  data = (tmp_path / f"full.{suffix}").read_bytes()
  (tmp_path / f"cut.{suffix}").write_bytes(data[: len(data) // 2])
  with pytest.raises(ValueError, match=f"cut.{suffix}"):
    read_image(tmp_path / f"cut.{suffix}")
  assert not ImageFile.LOAD_TRUNCATED_IMAGES


def test_write_image_shapes_and_types(tmp_path):
  gray = _rng().integers(0, 256, (5, 6), dtype=np.uint8)
  write_image(tmp_path / "a" / "b" / "gray.png", gray[..., None])  # creates parents
  np.testing.assert_array_equal(read_image(tmp_path / "a" / "b" / "gray.png")[..., 1], gray)
  write_image(tmp_path / "jax.png", jnp.full((4, 4, 3), 7, jnp.uint8), compress_level=0)
  assert (read_image(tmp_path / "jax.png") == 7).all()
  with pytest.raises(TypeError, match="uint8"):
    write_image(tmp_path / "f.png", np.zeros((4, 4, 3), np.float32))
  with pytest.raises(ValueError, match="shape"):
    write_image(tmp_path / "f.png", np.zeros((4, 4, 2), np.uint8))
  with pytest.raises(ValueError, match="compress_level"):
    write_image(tmp_path / "f.png", np.zeros((4, 4, 3), np.uint8), compress_level=10)
  assert not (tmp_path / "f.png").exists()


def test_write_image_is_atomic(tmp_path, monkeypatch):
  target = tmp_path / "out.png"
  original = np.full((4, 4, 3), 9, np.uint8)
  write_image(target, original)

  def failing_save(self, stream, *args, **kwargs):
    stream.write(b"\x89PNG partial")
    raise OSError("disk full")

  monkeypatch.setattr(Image.Image, "save", failing_save)
  with pytest.raises(OSError, match="disk full"):
    write_image(target, np.zeros((4, 4, 3), np.uint8))
  monkeypatch.undo()
  assert os.listdir(tmp_path) == ["out.png"]  # no temporary file left behind
  np.testing.assert_array_equal(read_image(target), original)


def test_module_exports():
  import cutblur_jax.data as data  # pylint: disable=import-outside-toplevel

  assert data.read_image is read_image and data.write_image is write_image
  assert data.ImagePair is ImagePair
  assert "read_image" in data.__all__ and "ImagePair" in dir(data)
