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
