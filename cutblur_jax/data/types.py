"""The record every cutblur-jax data set yields.

A data set (folder, TFDS, embedded) is a ``Sequence[ImagePair]``; a pair holds
one whole image, not a patch. Invariants:

* ``hr`` and ``lr`` are C-contiguous ``uint8`` arrays of shape ``[H, W, 3]`` and
  ``[h, w, 3]``.
* For super-resolution ``H == h * scale`` and ``W == w * scale``; for
  same-size tasks (denoising, JPEG, RealSR v1) ``(H, W) == (h, w)``.
* ``name`` identifies the image within its data set (the HR file's stem for
  folder sets, e.g. ``"0801"``), so evaluation can name its outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class ImagePair(NamedTuple):
  """One high-quality image and its degraded counterpart.

  Attributes:
    name: identifier of the image inside its data set.
    hr: ``uint8 [H, W, 3]`` ground truth.
    lr: ``uint8 [h, w, 3]`` degraded input (``h = H / scale`` for SR, ``h = H``
      for same-size tasks).

  Examples:
    >>> import numpy as np
    >>> pair = ImagePair("0001", np.zeros((8, 8, 3), np.uint8), np.zeros((2, 2, 3), np.uint8))
    >>> pair.hr.shape[0] // pair.lr.shape[0]
    4
  """

  name: str
  hr: np.ndarray
  lr: np.ndarray


def input_scale_of(dataset: Sequence[ImagePair]) -> int:
  """HR size over LR size of a data set's pairs: ``scale``, or 1 for same-size pairs.

  Every cutblur-jax source computes its ``input_scale`` when it is built, so this reads
  that attribute; for any other sequence it rounds the first pair's height ratio (an HR
  image a few pixels off ``scale`` times LR still gives ``scale``).

  Raises:
    ValueError: if the sequence has no ``input_scale`` attribute and no pairs.

  Examples:
    >>> import numpy as np
    >>> pairs = [ImagePair("0001", np.zeros((9, 8, 3), np.uint8), np.zeros((2, 2, 3), np.uint8))]
    >>> input_scale_of(pairs)
    4
  """
  if hasattr(dataset, "input_scale"):
    return int(dataset.input_scale)
  if not len(dataset):
    raise ValueError("The data set has no image pairs.")
  pair = dataset[0]
  return max(1, round(int(np.shape(pair.hr)[0]) / max(1, int(np.shape(pair.lr)[0]))))
