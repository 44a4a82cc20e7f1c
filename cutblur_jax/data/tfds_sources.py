"""TensorFlow Datasets read with ``tfds.data_source`` (array_record random access, no TensorFlow).

Invariants:

* Reading never downloads or prepares: a data set must already be prepared in
  ``data_dir`` in the ``array_record`` format (``tfds.data_source`` cannot read
  TFRecord). Errors say which of the two is missing and how to fix it.
* Records hold encoded ``hr`` and ``lr`` images (TFDS ``div2k/*`` and our
  ``cutblur_folders/*``); a pair is returned as ``ImagePair`` with the same
  alignment rule as the folder data sets (``align_pair``): HR is ``scale`` or 1
  times LR, a remainder under ``scale`` pixels is cropped.
* Record order is TFDS's (it shuffles keys when writing); names come from a
  ``name`` feature when the data set has one, else ``"<split>/<index>"``.
"""

from __future__ import annotations

import collections.abc
import os
import pathlib

import numpy as np

from cutblur_jax.data.degradations import align_pair
from cutblur_jax.data.spec import DataSpec, tfds_scale
from cutblur_jax.data.types import ImagePair

_PREPARE_HINT = (
  "Prepare it in the array_record format: for TFDS's own builders run "
  "`tfds build {name} --data_dir={data_dir} --file_format=array_record` where TensorFlow is "
  "installed (TFDS's div2k builder needs TensorFlow to generate, not to read), or pack the "
  "extracted folders without TensorFlow with cutblur_jax.data.build_folder_tfds."
)

# TFDS split names to try, in order, for each of our split names.
_SPLIT_FALLBACKS = {
  "train": ("train",),
  "validation": ("validation", "test"),
  "test": ("test", "validation"),
}


class TfdsDataset(collections.abc.Sequence):
  """A prepared TFDS data set of HR/LR pairs, read by random access.

  Attributes:
    name: TFDS name, e.g. "div2k/bicubic_x4".
    split: the TFDS split read.
    scale: model scale.
    input_scale: HR size / LR size of its pairs (1 for same-size ones), from the first record.
    description: for messages.

  Examples:
    >>> data = TfdsDataset("div2k/bicubic_x4", split="validation",
    ...                    data_dir="~/tensorflow_datasets")  # doctest: +SKIP
    >>> pair = data[0]  # doctest: +SKIP
    >>> pair.name, pair.hr.shape, pair.lr.shape  # doctest: +SKIP
    ('validation/0', (1356, 2040, 3), (339, 510, 3))
  """

  def __init__(
    self,
    name: str,
    *,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    scale: int | None = None,
    hr_key: str = "hr",
    lr_key: str = "lr",
    name_key: str = "name",
  ):
    """Opens ``name`` from ``data_dir`` with ``tfds.data_source``.

    Args:
      name: TFDS name ("div2k/bicubic_x2", "cutblur_folders/realsr_canon_x4", ...).
      split: "train", "validation" or "test" (a missing validation split falls
        back to test and vice versa), or any TFDS split string such as "train[:10]".
      data_dir: TFDS data directory (default: TFDS's, ``~/tensorflow_datasets``).
      scale: model scale; defaults to the ``_x<scale>`` of the name, and must
        agree with it when both are given.
      hr_key, lr_key, name_key: feature names.
    """
    implied = tfds_scale(name)
    if scale is None:
      scale = implied if implied is not None else 1
    if implied is not None and implied != scale:
      raise ValueError(f"`scale` {scale} disagrees with TFDS data set {name!r} (x{implied}).")
    self.name, self.scale = name, int(scale)
    self.data_dir = None if data_dir is None else os.path.expanduser(os.fspath(data_dir))
    self._keys = (hr_key, lr_key, name_key)
    self.split, self._source = self._open(split)
    self.description = f"tfds:{name} {self.split}"
    # HR / LR size of every pair, from the first record (same-size pairs: 1).
    self.input_scale = self.scale
    if len(self._source):
      hr, lr = self._images(0)
      self.input_scale = 1 if hr.shape[:2] == lr.shape[:2] else self.scale

  def _open(self, split: str):
    import tensorflow_datasets as tfds  # Imported here: importing TFDS takes seconds.

    candidates = _SPLIT_FALLBACKS.get(split, (split,))
    error = None
    for candidate in candidates:
      try:
        return candidate, tfds.data_source(
          self.name, split=candidate, data_dir=self.data_dir, download=False
        )
      except (KeyError, ValueError, NotImplementedError, AssertionError, FileNotFoundError) as e:
        error = e
        if not _is_missing_split(e):
          break
    raise self._explain(error, split) from error

  def _explain(self, error: Exception, split: str) -> ValueError:
    """A ValueError that says what is missing in ``data_dir``."""
    data_dir = self.data_dir or "~/tensorflow_datasets"
    if self.name.startswith("cutblur_folders/"):
      hint = (
        "Pack it from its folders with cutblur_jax.data.build_folder_tfds(...) or "
        f"`python -m cutblur_jax.data.tfds_builders --data_dir={data_dir} ...`."
      )
    else:
      hint = _PREPARE_HINT.format(name=self.name, data_dir=data_dir)
    if _is_missing_split(error):
      return ValueError(
        f"TFDS data set {self.name!r} in {data_dir} has no split {split!r}: {error}"
      )
    prepared = self._prepared_dir()
    if isinstance(error, NotImplementedError) and prepared is not None:
      return ValueError(
        f"TFDS data set {self.name!r} is prepared at {prepared} but not as array_record, which "
        f"tfds.data_source needs. {hint}"
      )
    said = str(error).splitlines()[0] if str(error) else type(error).__name__
    return ValueError(
      f"TFDS data set {self.name!r} is not prepared in data_dir={data_dir}. {hint} "
      f"(TFDS said: {said})"
    )

  def _prepared_dir(self) -> pathlib.Path | None:
    """The version folder holding dataset_info.json, if any."""
    root = pathlib.Path(self.data_dir or os.path.expanduser("~/tensorflow_datasets"))
    folder = root.joinpath(*self.name.split(":")[0].split("/"))
    for info in sorted(folder.glob("*/dataset_info.json")):
      return info.parent
    return None

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> ImagePair:
    if not isinstance(index, (int, np.integer)):
      raise TypeError(f"TfdsDataset indices must be integers, got {type(index).__name__}.")
    if not -len(self) <= index < len(self):
      raise IndexError(f"index {index} out of range for {len(self)} records of {self.description}")
    index = int(index) % len(self)
    hr, lr, name = self._images(index, with_name=True)
    source = f"of record {index} ({name!r}) of {self.description}"
    hr, lr = align_pair(hr, lr, self.input_scale, hr_source=source, lr_source=source)
    return ImagePair(name=name, hr=np.ascontiguousarray(hr), lr=np.ascontiguousarray(lr))

  def _images(self, index: int, *, with_name: bool = False):
    """``(hr, lr)`` of a record as RGB ``uint8`` (and its name)."""
    hr_key, lr_key, name_key = self._keys
    record = self._source[index]
    for key in (hr_key, lr_key):
      if key not in record:
        raise ValueError(
          f"Record {index} of {self.description} has no feature {key!r} "
          f"(features: {sorted(record)})."
        )
    hr, lr = _as_rgb(record[hr_key]), _as_rgb(record[lr_key])
    if not with_name:
      return hr, lr
    name = record.get(name_key)
    if isinstance(name, bytes):
      name = name.decode("utf-8")
    return hr, lr, str(name) if name is not None else f"{self.split}/{index}"

  def __repr__(self) -> str:
    return (
      f"TfdsDataset({self.name!r}, split={self.split!r}, {len(self)} records, scale={self.scale})"
    )


def _is_missing_split(error: Exception | None) -> bool:
  # TFDS raises ValueError("Unknown split 'test'. Should be one of [...]").
  return isinstance(error, (KeyError, ValueError)) and "unknown split" in str(error).lower()


def _as_rgb(image) -> np.ndarray:
  image = np.asarray(image)
  if image.ndim == 2:
    image = image[..., None]
  if image.shape[-1] == 1:
    image = np.repeat(image, 3, axis=-1)
  if image.shape[-1] == 4:
    image = image[..., :3]
  if image.dtype != np.uint8:
    raise ValueError(f"TFDS image has dtype {image.dtype}; expected uint8.")
  return image


def tfds_dataset(
  name: str,
  *,
  split: str = "train",
  data_dir: str | os.PathLike | None = None,
  scale: int | None = None,
) -> TfdsDataset:
  """Opens a prepared TFDS data set of HR/LR pairs (see ``TfdsDataset``).

  Args:
    name: e.g. "div2k/bicubic_x4", "div2k/unknown_x2", "div2k/realistic_mild_x4",
      or one of ours, "cutblur_folders/<config>".
    split: "train", "validation" or "test".
    data_dir: TFDS data directory.
    scale: model scale (default: from the name).

  Returns:
    A ``TfdsDataset``.

  Examples:
    >>> valid = tfds_dataset("div2k/bicubic_x4", split="validation",
    ...                      data_dir="/data/tfds")  # doctest: +SKIP
  """
  return TfdsDataset(name, split=split, data_dir=data_dir, scale=scale)


def tfds_source(spec: DataSpec, split: str = "train") -> TfdsDataset:
  """The TFDS data set a ``DataSpec`` names (``tfds:NAME``; ``dataset_root`` is the data_dir)."""
  return TfdsDataset(
    spec.dataset.tfds_name, split=split, data_dir=spec.dataset_root or None, scale=spec.scale
  )
