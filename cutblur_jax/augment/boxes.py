"""Random boxes for CutMix, CutMixup and CutBlur, as static-shape masks.

The reference slices ``x[..., y:y+h, x:x+w]`` with sizes drawn at run time,
which XLA cannot compile. Here a box is four int32 scalars (or four ``[N]``
vectors in per-sample mode) and is applied as a boolean mask built from iota
comparisons, so shapes never depend on the draw and the mask fuses into the
``jnp.where`` that uses it (no full-size mask is materialised).

Draws (``sample_box``), as ``augments.py``'s ``cutblur`` and ``_cutmix`` do:

* ``ratio ~ N(alpha, 0.01^2)``, one ratio for both sides.
* ``height = int(H * ratio)``, ``width = int(W * ratio)``: truncation toward
  zero, as the reference's ``np.int`` does, computed in float32.
* **Clamping (deviation):** sizes are clipped to ``[0, H]`` and ``[0, W]``. The
  reference crashes instead when ``ratio > 1`` (``np.random.randint(0, H - h + 1)``
  with ``h > H`` raises), which happens about half the time with ``alpha = 1.0``.
  A clamped full-size box covers the whole image.
* ``top ~ U{0, ..., H - height}`` and ``left ~ U{0, ..., W - width}``, inclusive
  (``np.random.randint(0, H - h + 1)``).

The ops apply boxes through ``box_row_mask`` on the ``[N, H, W * C]`` view of
the images, where a box is a contiguous range of every row it covers.

The three draws come from three random 32-bit words (``box_from_bits``; see
``_sampling`` for the transforms: the normal by its inverse CDF, the offsets as
``floor(u * (H - height + 1))``).

Invariants: ``0 <= top``, ``top + height <= H``, ``0 <= left``,
``left + width <= W``; fields are int32 with shape ``()`` (batch mode: one box
for the whole batch, like the reference) or ``[N]`` (per-sample mode).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from cutblur_jax.augment import _checks
from cutblur_jax.augment import _sampling

# Standard deviation of the box ratio around ``alpha`` (hard-coded in augments.py).
RATIO_STDDEV = 0.01
#: Random uint32 words one box uses (see ``box_from_bits``).
BOX_WORDS = 3


class Box(NamedTuple):
  """A box ``rows [top, top + height) x columns [left, left + width)``.

  Each field is an int32 array of shape ``()`` (one box for the batch) or
  ``[N]`` (one box per image).
  """

  top: jax.Array
  left: jax.Array
  height: jax.Array
  width: jax.Array


def sample_box(
  key: jax.Array, shape: Sequence[int], *, alpha: float, per_sample: bool = False
) -> Box:
  """Draws a box whose sides are about ``alpha`` times the image's sides.

  Args:
    key: a JAX PRNG key.
    shape: the images' shape ``(N, H, W, C)``; only ``N``, ``H`` and ``W`` are used.
    alpha: the mean side ratio; values past 1 give the full image (clamped).
    per_sample: draw one box per image (fields ``[N]``) instead of one per batch.

  Returns:
    A ``Box`` inside the image, drawn as the module docstring describes.

  Examples:
    >>> box = sample_box(jax.random.key(0), (2, 100, 100, 3), alpha=0.5)
    >>> bool(45 <= box.height <= 55 and box.top + box.height <= 100)
    True
  """
  shape = _checks.check_shape(shape, op="sample_box")
  _checks.check_alpha(alpha, "alpha", op="sample_box")
  return _draw_box(key, shape=shape, alpha=alpha, per_sample=bool(per_sample))


@functools.partial(jax.jit, static_argnames=("shape", "per_sample"))
def _draw_box(key, *, shape, alpha, per_sample):
  n, h, w, _ = shape
  (bits,) = _sampling.split_bits(key, [((n,) if per_sample else ()) + (BOX_WORDS,)])
  return box_from_bits(bits, h, w, alpha=alpha)


def box_from_bits(bits: jax.Array, height: int, width: int, *, alpha: Any) -> Box:
  """The box of ``sample_box`` from ``[..., BOX_WORDS]`` random uint32 words.

  Word 0 gives the ratio (a normal draw), words 1 and 2 the top and left offsets.
  Samplers that draw all their words at once use this directly.
  """
  ratio = alpha + RATIO_STDDEV * _sampling.normal(bits[..., 0])

  def side(size: int) -> jax.Array:
    # int(size * ratio) truncates toward zero; clip where the reference would crash.
    return jnp.clip(jnp.trunc(jnp.float32(size) * ratio), 0, size).astype(jnp.int32)

  box_height, box_width = side(height), side(width)
  top = _sampling.randint(bits[..., 1], height - box_height + 1)
  left = _sampling.randint(bits[..., 2], width - box_width + 1)
  return Box(top=top, left=left, height=box_height, width=box_width)


def _per_image(value: jax.Array, ndim: int) -> jax.Array:
  """Reshapes a ``()`` or ``[N]`` field to broadcast against ``ndim``-D images."""
  value = jnp.asarray(value)
  return value if value.ndim == 0 else value.reshape((-1,) + (1,) * (ndim - 1))


def box_mask(box: Box, height: int, width: int) -> jax.Array:
  """The boolean mask of ``box`` on an ``height x width`` grid.

  Args:
    box: a ``Box`` with ``()`` or ``[N]`` fields.
    height: the image height ``H``.
    width: the image width ``W``.

  Returns:
    A bool array of shape ``[1, H, W, 1]`` (scalar fields) or ``[N, H, W, 1]``,
    True inside the box; it broadcasts against ``[N, H, W, C]`` images.

  Examples:
    >>> box = Box(*map(jnp.int32, (1, 0, 2, 3)))
    >>> box_mask(box, 4, 4)[0, :, :, 0].astype(int)
    Array([[0, 0, 0, 0],
           [1, 1, 1, 0],
           [1, 1, 1, 0],
           [0, 0, 0, 0]], dtype=int32)
  """
  rows = lax.broadcasted_iota(jnp.int32, (1, height, 1, 1), 1)
  cols = lax.broadcasted_iota(jnp.int32, (1, 1, width, 1), 2)
  top, left, box_height, box_width = (_per_image(field, 4) for field in box)
  return (rows >= top) & (rows < top + box_height) & (cols >= left) & (cols < left + box_width)


def box_row_mask(box: Box, height: int, width: int, channels: int) -> jax.Array:
  """``box_mask`` on the ``[N, H, W * C]`` view of ``[N, H, W, C]`` images.

  The ops select on that view (a free reshape): columns ``[left, left + width)``
  are the contiguous range ``[left * C, (left + width) * C)`` of a row, so the
  mask needs no division and the select vectorises along rows (measured 3x
  faster on CPU than broadcasting a ``[1, H, W, 1]`` mask over ``C = 3``).

  Returns:
    A bool array of shape ``[1, H, W * C]`` (scalar fields) or ``[N, H, W * C]``.
  """
  rows = lax.broadcasted_iota(jnp.int32, (1, height, 1), 1)
  cols = lax.broadcasted_iota(jnp.int32, (1, 1, width * channels), 2)
  top, left, box_height, box_width = (_per_image(field, 3) for field in box)
  return (
    (rows >= top)
    & (rows < top + box_height)
    & (cols >= left * channels)
    & (cols < (left + box_width) * channels)
  )
