"""Folder data sets: published layouts, pairing, LR synthesis and bad input."""

import pathlib

import numpy as np
import pytest
from PIL import Image

from cutblur_jax.data import degradations, folders
from cutblur_jax.data.bicubic import imresize


def _load(path):
  """A fully read Pillow image whose file is closed."""
  with Image.open(path) as image:
    image.load()
    return image.copy()


def _save(path: pathlib.Path, image: np.ndarray) -> np.ndarray:
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(image).save(path)
  return image


def _random(rng, shape):
  return rng.integers(0, 256, shape, dtype=np.uint8)


def _div2k(
  root: pathlib.Path,
  count: int = 6,
  scale: int = 2,
  *,
  lr: bool = True,
  valid_from: int | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """Writes DIV2K-layout images 0001..; HR is the nearest upsampling of a random LR."""
  rng = np.random.default_rng(0)
  images = {}
  for i in range(1, count + 1):
    part = "valid" if valid_from is not None and i >= valid_from else "train"
    small = _random(rng, (6, 8, 3))
    hr = small.repeat(scale, 0).repeat(scale, 1)
    _save(root / f"DIV2K_{part}_HR" / f"{i:04d}.png", hr)
    if lr:
      _save(root / f"DIV2K_{part}_LR_bicubic" / f"X{scale}" / f"{i:04d}x{scale}.png", small)
    images[f"{i:04d}"] = (hr, small)
  return images


def test_div2k_pairs_by_range_and_split(tmp_path):
  images = _div2k(tmp_path, count=6, scale=2)
  train = folders.div2k_dataset(tmp_path, split="train", scale=2, div2k_range="2-4/5-6")
  valid = folders.div2k_dataset(tmp_path, split="validation", scale=2, div2k_range="2-4/5-6")
  assert train.names == ["0002", "0003", "0004"] and valid.names == ["0005", "0006"]
  assert (train.scale, train.input_scale) == (2, 2)
  for data in (train, valid):
    for pair in data:
      np.testing.assert_array_equal(pair.hr, images[pair.name][0])
      np.testing.assert_array_equal(pair.lr, images[pair.name][1])


def test_div2k_appends_the_official_valid_folders(tmp_path):
  _div2k(tmp_path, count=5, scale=2, valid_from=4)
  valid = folders.div2k_dataset(tmp_path, split="validation", scale=2, div2k_range="1-3/4-5")
  assert valid.names == ["0004", "0005"]
  assert "DIV2K_valid_LR_bicubic" in str(valid.lr_paths[0])


def test_missing_lr_folder_suggests_synthesis_and_synthesises_with_imresize(tmp_path):
  images = _div2k(tmp_path, count=3, scale=2, lr=False)
  with pytest.raises(ValueError, match=r"DIV2K_train_LR_bicubic/X2.*synthesize_lr=True"):
    folders.div2k_dataset(tmp_path, scale=2, div2k_range="1-2/3-3")
  data = folders.div2k_dataset(tmp_path, scale=2, div2k_range="1-2/3-3", synthesize_lr=True)
  pair = data[1]
  hr = images["0002"][0]
  expected = np.floor(np.clip(np.asarray(imresize(hr, 0.5), np.float64), 0, 255) + 0.5)
  np.testing.assert_array_equal(pair.hr, hr)
  np.testing.assert_array_equal(pair.lr, expected.astype(np.uint8))
  assert data.lr_paths is None and data.input_scale == 2


def test_bicubic_downsample_modcrops_hr_first():
  hr = np.random.default_rng(1).integers(0, 256, (13, 10, 3), dtype=np.uint8)
  cropped, lr = degradations.bicubic_downsample(hr, 4)
  assert cropped.shape == (12, 8, 3) and lr.shape == (3, 2, 3) and lr.dtype == np.uint8


def test_denoising_synthesis_is_seeded_per_image_and_prepared_folder_wins(tmp_path):
  images = _div2k(tmp_path, count=4, scale=1, lr=False)
  kwargs = dict(task="DN", scale=1, sigma=25, synthesize_lr=True, noise_seed=7)
  a = folders.div2k_dataset(tmp_path, div2k_range="1-3/4-4", **kwargs)
  b = folders.div2k_dataset(tmp_path, div2k_range="2-3/1-1", **kwargs)
  np.testing.assert_array_equal(a[1].lr, b[0].lr)  # "0002" gets the same noise in both.
  assert not np.array_equal(
    a[0].lr,
    folders.div2k_dataset(tmp_path, div2k_range="1-3/4-4", **{**kwargs, "noise_seed": 8})[0].lr,
  )
  noise = a[0].lr.astype(float) - images["0001"][0]
  assert 15 < noise.std() < 35
  noisy = _save(tmp_path / "DIV2K_train_DN" / "25" / "0001.png", images["0002"][0])
  _save(tmp_path / "DIV2K_train_DN" / "25" / "0002.png", images["0001"][0])
  prepared = folders.div2k_dataset(tmp_path, div2k_range="1-2/3-3", task="DN", scale=1, sigma=25)
  np.testing.assert_array_equal(prepared[0].lr, noisy)
  assert prepared.input_scale == 1


def test_jpeg_synthesis_uses_pillow_quality_and_reads_prepared_jpg(tmp_path):
  images = _div2k(tmp_path, count=2, scale=1, lr=False)
  data = folders.div2k_dataset(
    tmp_path, div2k_range="1-1/2-2", task="JPEG", scale=1, quality=10, synthesize_lr=True
  )
  np.testing.assert_array_equal(data[0].lr, degradations.jpeg_compress(images["0001"][0], 10))
  assert not np.array_equal(data[0].lr, images["0001"][0])
  for name, (hr, _) in images.items():
    folder = _mkdir(tmp_path / "DIV2K_train_JPEG" / "20")
    Image.fromarray(hr).save(folder / f"{name}.jpg", quality=20)
  prepared = folders.div2k_dataset(
    tmp_path, div2k_range="1-1/2-2", task="JPEG", scale=1, quality=20
  )
  assert prepared.lr_paths[0].suffix == ".jpg" and prepared[0].lr.shape == images["0001"][0].shape


def _mkdir(path):
  path.mkdir(parents=True, exist_ok=True)
  return path


@pytest.mark.parametrize("task", ["DN", "JPEG"])
def test_same_size_tasks_are_same_size_pairs_whatever_the_network_scale(tmp_path, task):
  # The official DN/JPEG network has the default scale 4; its data are same-size pairs.
  _div2k(tmp_path, count=1, scale=1, lr=False)
  data = folders.div2k_dataset(
    tmp_path, task=task, scale=4, div2k_range="1-1/1-1", synthesize_lr=True
  )
  assert data.scale == 1
  pair = data[0]
  assert pair.hr.shape == pair.lr.shape and not np.array_equal(pair.hr, pair.lr)


def _realsr(root, scale, *, same_size, cameras=("Canon", "Nikon"), split="Train"):
  rng = np.random.default_rng(2)
  for camera in cameras:
    for i in (1, 2):
      small = _random(rng, (5, 6, 3))
      hr = small.repeat(scale, 0).repeat(scale, 1)
      folder = root / camera / split / str(scale)
      _save(folder / f"{camera}_{i:03d}_HR.png", hr)
      _save(folder / f"{camera}_{i:03d}_LR{scale}.png", hr[::-1].copy() if same_size else small)


@pytest.mark.parametrize("same_size", [True, False], ids=["v1", "v3"])
def test_realsr_versions_and_cameras(tmp_path, same_size):
  _realsr(tmp_path, 3, same_size=same_size)
  both = folders.realsr_dataset(tmp_path, split="train", scale=3, camera="all")
  assert both.names == ["Canon_001", "Canon_002", "Nikon_001", "Nikon_002"]
  assert both.input_scale == (1 if same_size else 3)
  assert both[2].hr.shape == (15, 18, 3)
  assert both[2].lr.shape == ((15, 18, 3) if same_size else (5, 6, 3))
  nikon = folders.realsr_dataset(tmp_path, scale=3, camera="nikon")
  assert nikon.names == ["Nikon_001", "Nikon_002"]
  with pytest.raises(ValueError, match="camera"):
    folders.realsr_dataset(tmp_path, scale=3, camera="sony")
  with pytest.raises(ValueError, match=r"Canon/Test/3"):
    folders.realsr_dataset(tmp_path, split="test", scale=3)


@pytest.mark.parametrize("layout", ["official", "edsr", "basicsr"])
def test_benchmark_layouts(tmp_path, layout):
  hr_dir, lr_dir, lr_name = {
    "official": ("HR", "X4", "{}.png"),
    "edsr": ("HR", "LR_bicubic/X4", "{}x4.png"),
    "basicsr": ("GTmod12", "LRbicx4", "{}.png"),
  }[layout]
  rng = np.random.default_rng(3)
  for name in ("baby", "bird"):
    small = _random(rng, (4, 5, 3))
    _save(tmp_path / "Set5" / hr_dir / f"{name}.png", small.repeat(4, 0).repeat(4, 1))
    _save(tmp_path / "Set5" / lr_dir / lr_name.format(name), small)
  for root in (tmp_path, tmp_path / "Set5"):
    data = folders.folder_dataset("Set5_SR", root, split="test", scale=4)
    assert data.names == ["baby", "bird"] and data[1].hr.shape == (16, 20, 3)


def test_benchmark_alias_and_synthesis(tmp_path):
  hr = _save(tmp_path / "BSD100" / "HR" / "3096.png", _random(np.random.default_rng(4), (12, 8, 3)))
  with pytest.raises(ValueError, match="synthesize_lr=True"):
    folders.folder_dataset("B100_SR", tmp_path, scale=2)
  data = folders.folder_dataset("B100_SR", tmp_path, scale=2, synthesize_lr=True)
  assert data[0].lr.shape == (6, 4, 3) and np.array_equal(data[0].hr, hr)


def test_hr_within_scale_is_cropped_else_rejected_with_paths(tmp_path):
  rng = np.random.default_rng(5)
  _save(tmp_path / "HR" / "a.png", _random(rng, (10, 9, 3)))  # not mod-cropped for x4
  _save(tmp_path / "X4" / "a.png", _random(rng, (2, 2, 3)))
  pair = folders.benchmark_dataset(tmp_path, scale=4)[0]
  assert pair.hr.shape == (8, 8, 3) and pair.lr.shape == (2, 2, 3)
  _save(tmp_path / "X4" / "a.png", _random(rng, (3, 2, 3)))  # ceil rule: 10 / 4 -> 3 rows
  pair = folders.benchmark_dataset(tmp_path, scale=4)[0]
  assert pair.hr.shape == (8, 8, 3) and pair.lr.shape == (2, 2, 3)
  _save(tmp_path / "X4" / "a.png", _random(rng, (5, 2, 3)))
  with pytest.raises(ValueError, match=r"HR/a.png.*X4/a.png"):
    folders.benchmark_dataset(tmp_path, scale=4)


def test_bad_folders_name_the_path(tmp_path):
  with pytest.raises(ValueError, match=str(tmp_path / "DIV2K_train_HR")):
    folders.div2k_dataset(tmp_path)
  with pytest.raises(ValueError, match="dataset_root"):
    folders.folder_dataset("DIV2K_SR", "")
  rng = np.random.default_rng(6)
  for name in ("a", "b"):
    _save(tmp_path / "HR" / f"{name}.png", _random(rng, (8, 8, 3)))
  _save(tmp_path / "X2" / "a.png", _random(rng, (4, 4, 3)))
  with pytest.raises(ValueError, match=r"2 HR images .* 1 LR images"):
    folders.benchmark_dataset(tmp_path, scale=2)
  _save(tmp_path / "X2" / "c.png", _random(rng, (4, 4, 3)))
  with pytest.raises(ValueError, match=r"HR/b.png has no LR image"):
    folders.benchmark_dataset(tmp_path, scale=2)
  with pytest.raises(ValueError, match="div2k_range"):
    folders.parse_div2k_range("1-800")
  with pytest.raises(ValueError, match="Unknown dataset .Foo."):
    folders.folder_dataset("Foo", tmp_path)


def test_unreadable_and_truncated_files_name_the_path(tmp_path):
  rng = np.random.default_rng(7)
  _save(tmp_path / "HR" / "a.png", _random(rng, (8, 8, 3)))
  (tmp_path / "X2").mkdir()
  (tmp_path / "X2" / "a.png").write_bytes(b"not an image")
  with pytest.raises(ValueError, match=r"X2/a.png"):
    folders.benchmark_dataset(tmp_path, scale=2)
  _save(tmp_path / "X2" / "a.png", _random(rng, (4, 4, 3)))
  data = (tmp_path / "HR" / "a.png").read_bytes()
  (tmp_path / "HR" / "a.png").write_bytes(data[: len(data) // 2])
  dataset = folders.benchmark_dataset(tmp_path, scale=2)  # The header is intact.
  with pytest.raises(ValueError, match=r"HR/a.png"):
    dataset[0]


def test_grayscale_rgba_and_16_bit_files_become_rgb_uint8(tmp_path):
  rng = np.random.default_rng(8)
  gray = _random(rng, (8, 8))
  Image.fromarray(gray).save(_mkdir(tmp_path / "HR") / "a.png")
  rgba = _random(rng, (4, 4, 4))
  Image.fromarray(rgba, "RGBA").save(_mkdir(tmp_path / "X2") / "a.png")
  Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "HR" / "b.png")
  Image.fromarray(rgba[..., :3]).save(tmp_path / "X2" / "b.png")
  data = folders.benchmark_dataset(tmp_path, scale=2)
  a, b = data[0], data[1]
  np.testing.assert_array_equal(a.hr, np.repeat(gray[..., None], 3, -1))
  np.testing.assert_array_equal(a.lr, rgba[..., :3])
  np.testing.assert_array_equal(b.hr, a.hr)
  assert a.hr.dtype == b.hr.dtype == np.uint8


def test_div2k_names_in_both_merged_and_official_valid_folders_count_once(tmp_path):
  images = _div2k(tmp_path, count=5, scale=2)  # the reference's merged DIV2K_train_HR
  for name in ("0004", "0005"):  # ...and the official valid zip extracted beside it
    _save(tmp_path / "DIV2K_valid_HR" / f"{name}.png", images[name][0])
    _save(tmp_path / "DIV2K_valid_LR_bicubic" / "X2" / f"{name}x2.png", images[name][1])
  valid = folders.div2k_dataset(tmp_path, split="validation", scale=2, div2k_range="1-3/4-5")
  assert valid.names == ["0004", "0005"]
  assert all("DIV2K_train" in str(p) for p in valid.hr_paths + valid.lr_paths)
  with pytest.raises(ValueError, match="asks for image 6 .* hold 5"):
    folders.div2k_dataset(tmp_path, split="validation", scale=2, div2k_range="1-3/4-6")


def test_write_lr_folder_prepares_a_folder_that_reads_back(tmp_path):
  _div2k(tmp_path, count=3, scale=2, lr=False)
  synthesised = folders.div2k_dataset(tmp_path, scale=2, div2k_range="1-3/1-1", synthesize_lr=True)
  folder = tmp_path / "DIV2K_train_LR_bicubic" / "X2"
  paths = folders.write_lr_folder(synthesised, folder)
  assert [p.name for p in paths] == ["0001x2.png", "0002x2.png", "0003x2.png"]
  prepared = folders.div2k_dataset(tmp_path, scale=2, div2k_range="1-3/1-1")
  assert prepared.lr_paths == paths
  for a, b in zip(prepared, synthesised):
    np.testing.assert_array_equal(a.lr, b.lr)
    np.testing.assert_array_equal(a.hr, b.hr)
  # Existing files are kept unless overwrite=True (an interrupted run resumes).
  _save(paths[0], np.zeros((6, 8, 3), np.uint8))
  folders.write_lr_folder(synthesised, folder, num_workers=0)
  assert not _load(paths[0]).getextrema()[0][1]
  folders.write_lr_folder(synthesised, folder, overwrite=True)
  np.testing.assert_array_equal(np.asarray(_load(paths[0])), synthesised[0].lr)
  noisy = folders.div2k_dataset(
    tmp_path, task="DN", scale=1, sigma=5, div2k_range="1-1/2-2", synthesize_lr=True
  )
  (path,) = folders.write_lr_folder(noisy, tmp_path / "DIV2K_train_DN" / "5")
  assert path.name == "0001.png"
  np.testing.assert_array_equal(
    folders.div2k_dataset(tmp_path, task="DN", scale=1, sigma=5, div2k_range="1-1/2-2")[0].lr,
    noisy[0].lr,
  )


def test_realsr_hr_lr_count_mismatch_names_the_folder(tmp_path):
  _realsr(tmp_path, 2, same_size=True, cameras=("Canon",))
  (tmp_path / "Canon" / "Train" / "2" / "Canon_002_LR2.png").unlink()
  with pytest.raises(ValueError, match=r"2 HR images in .*Canon/Train/2 but 1 LR"):
    folders.realsr_dataset(tmp_path, scale=2, camera="canon")


@pytest.mark.parametrize("subfolder", ["", "Flickr2K"])
def test_df2k_trains_on_div2k_plus_flickr2k_and_validates_on_div2k(tmp_path, subfolder):
  images = _div2k(tmp_path, count=5, scale=2)
  rng = np.random.default_rng(7)
  flickr = tmp_path / subfolder if subfolder else tmp_path
  for i in (1, 2):
    small = _random(rng, (6, 8, 3))
    images[f"{i:06d}"] = (small.repeat(2, 0).repeat(2, 1), small)
    _save(flickr / "Flickr2K_HR" / f"{i:06d}.png", images[f"{i:06d}"][0])
    _save(flickr / "Flickr2K_LR_bicubic" / "X2" / f"{i:06d}x2.png", small)
  train = folders.folder_dataset("DF2K_SR", tmp_path, split="train", scale=2, div2k_range="1-3/4-5")
  valid = folders.folder_dataset(
    "DF2K_SR", tmp_path, split="validation", scale=2, div2k_range="1-3/4-5"
  )
  assert train.names == ["0001", "0002", "0003", "000001", "000002"]
  assert valid.names == ["0004", "0005"]  # never a Flickr2K image, never the training set
  for pair in [*train, *valid]:
    np.testing.assert_array_equal(pair.hr, images[pair.name][0])
    np.testing.assert_array_equal(pair.lr, images[pair.name][1])


def test_df2k_without_flickr2k_or_its_lr_says_what_is_missing(tmp_path):
  _div2k(tmp_path, count=3, scale=2)
  with pytest.raises(ValueError, match="Flickr2K HR folder not found"):
    folders.folder_dataset("DF2K_SR", tmp_path, scale=2, div2k_range="1-2/3-3")
  _save(tmp_path / "Flickr2K_HR" / "000001.png", _random(np.random.default_rng(8), (12, 16, 3)))
  with pytest.raises(ValueError, match="Flickr2K_LR_bicubic.*synthesize_lr"):
    folders.folder_dataset("DF2K_SR", tmp_path, scale=2, div2k_range="1-2/3-3")
  synthesised = folders.folder_dataset(
    "DF2K_SR", tmp_path, scale=2, div2k_range="1-2/3-3", synthesize_lr=True
  )
  assert synthesised.lr_paths is None and synthesised[2].lr.shape == (6, 8, 3)
