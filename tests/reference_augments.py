"""A NumPy port of the official ``augments.py`` semantics, for the tests only.

Written from reading clovaai/cutblur's ``augments.py`` (PyTorch, NCHW, global
NumPy RNG, in-place slice assignment); nothing is copied. The port keeps the
reference's way of working, in NHWC:

* boxes are Python-int slices ``x[:, top:top + h, left:left + w]`` assigned in
  place on copies, with sizes from ``int(H * ratio)``;
* every op is split like ours into ``sample_*(rng, shape, ...)``, which makes
  the reference's draws in the reference's order with a ``np.random.Generator``
  (so draw distributions can be compared with ours), and ``apply_*(params, hr,
  lr)``, which replays given draws (so outputs can be compared bit for bit);
* params are plain dicts with the field names of ``cutblur_jax.augment``'s
  NamedTuples (converted with ``to_numpy``);
* arithmetic is float32 as in the reference's CUDA/CPU tensors:
  ``v * x + (1 - v) * y`` with ``v`` a float32 scalar.

Unlike our JAX ops, the port keeps the reference's crash: a box ratio past 1
makes ``rng.integers(0, H - h + 1)`` raise ``ValueError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def to_numpy(params: Any) -> Any:
  """Converts a (nested) params NamedTuple into dicts of NumPy values."""
  if hasattr(params, "_asdict"):
    return {k: to_numpy(v) for k, v in params._asdict().items()}
  value = np.asarray(params)
  return value.item() if value.ndim == 0 else value


def _mix(v, a, b):
  v = np.float32(v)
  return (v * a + (np.float32(1) - v) * b).astype(a.dtype)


def _box_slices(box):
  top, left = int(box["top"]), int(box["left"])
  return slice(top, top + int(box["height"])), slice(left, left + int(box["width"]))


def _gate(rng, prob, alpha=1.0):
  """The reference's early return ``alpha <= 0 or np.random.rand(1) >= prob``."""
  if alpha <= 0:
    return False
  return bool(rng.random() < prob)


def _sample_box(rng, h, w, alpha):
  cut_ratio = rng.standard_normal() * 0.01 + alpha
  ch, cw = int(h * cut_ratio), int(w * cut_ratio)
  # Raises ValueError when ch > h, as the reference's randint does.
  top = int(rng.integers(0, h - ch + 1))
  left = int(rng.integers(0, w - cw + 1))
  return {"top": top, "left": left, "height": ch, "width": cw}


# ----------------------------------------------------------------------------- blend


def sample_blend(rng, shape, prob=1.0, alpha=0.6):
  n, _, _, c = shape
  if not _gate(rng, prob, alpha):
    return {"applied": False}
  colour = rng.uniform(0, 255, size=(n, c)).astype(np.float32)
  return {"applied": True, "v": np.float32(rng.uniform(alpha, 1)), "colour": colour}


def apply_blend(params, hr, lr):
  if not params["applied"]:
    return hr.copy(), lr.copy()
  colour = np.asarray(params["colour"], np.float32)[:, None, None, :]
  flat = np.broadcast_to(colour, hr.shape)
  return _mix(params["v"], hr, flat), _mix(params["v"], lr, flat)


# ----------------------------------------------------------------------------- rgb


def sample_rgb(rng, shape, prob=1.0):
  if not _gate(rng, prob):
    return {"applied": False}
  return {"applied": True, "perm": rng.permutation(3)}


def apply_rgb(params, hr, lr):
  if not params["applied"]:
    return hr.copy(), lr.copy()
  perm = np.asarray(params["perm"])
  return hr[..., perm], lr[..., perm]


# ----------------------------------------------------------------------------- mixup


def sample_mixup(rng, shape, prob=1.0, alpha=1.2):
  if not _gate(rng, prob, alpha):
    return {"applied": False}
  v = np.float32(rng.beta(alpha, alpha))
  return {"applied": True, "v": v, "partner": rng.permutation(shape[0])}


def apply_mixup(params, hr, lr):
  if not params["applied"]:
    return hr.copy(), lr.copy()
  partner = np.asarray(params["partner"])
  return (_mix(params["v"], hr, hr[partner]), _mix(params["v"], lr, lr[partner]))


# ----------------------------------------------------------------------------- cutout


def sample_cutout(rng, shape, prob=1.0, alpha=0.1):
  n, h, w, _ = shape
  if not _gate(rng, prob, alpha):
    return {"applied": False}
  keep = rng.choice([0.0, 1.0], size=(n, h, w, 1), p=[alpha, 1 - alpha])
  return {"applied": True, "keep": keep.astype(bool)}


def apply_cutout(params, hr, lr):
  n, h, w, _ = hr.shape
  if not params["applied"]:
    return hr.copy(), lr.copy(), np.ones((n, h, w, 1), hr.dtype)
  mask = np.asarray(params["keep"]).astype(hr.dtype)
  return hr.copy(), lr * mask, mask


# ----------------------------------------------------------------------------- cutmix


def sample_cutmix(rng, shape, prob=1.0, alpha=0.7):
  n, h, w, _ = shape
  if not _gate(rng, prob, alpha):
    return {"applied": False}
  box = _sample_box(rng, h, w, alpha)
  return {"applied": True, "box": box, "partner": rng.permutation(n)}


def apply_cutmix(params, hr, lr):
  hr, lr = hr.copy(), lr.copy()
  if not params["applied"]:
    return hr, lr
  rows, cols = _box_slices(params["box"])
  partner = np.asarray(params["partner"])
  # The reference reads the partner's box before writing, from the same images.
  lr[:, rows, cols] = lr[partner][:, rows, cols]
  hr[:, rows, cols] = hr[partner][:, rows, cols]
  return hr, lr


# ----------------------------------------------------------------------------- cutmixup


def sample_cutmixup(rng, shape, mixup_prob=1.0, mixup_alpha=1.2, cutmix_prob=1.0, cutmix_alpha=0.7):
  n, h, w, _ = shape
  if not _gate(rng, cutmix_prob, cutmix_alpha):
    return {"applied": False}
  box = _sample_box(rng, h, w, cutmix_alpha)
  partner = rng.permutation(n)
  v = np.float32(rng.beta(mixup_alpha, mixup_alpha))  # drawn before the mixup gate
  mixup_applied = not (mixup_alpha <= 0 or rng.random() >= mixup_prob)
  inside = bool(rng.random() > 0.5)
  return {
    "applied": True,
    "box": box,
    "partner": partner,
    "mixup_applied": mixup_applied,
    "v": v,
    "inside": inside,
  }


def apply_cutmixup(params, hr, lr):
  hr, lr = hr.copy(), lr.copy()
  if not params["applied"]:
    return hr, lr
  rows, cols = _box_slices(params["box"])
  partner = np.asarray(params["partner"])
  if params["mixup_applied"]:
    hr_aug, lr_aug = _mix(params["v"], hr, hr[partner]), _mix(params["v"], lr, lr[partner])
  else:
    hr_aug, lr_aug = hr[partner], lr[partner]
  if params["inside"]:
    lr[:, rows, cols] = lr_aug[:, rows, cols]
    hr[:, rows, cols] = hr_aug[:, rows, cols]
    return hr, lr
  lr_aug[:, rows, cols] = lr[:, rows, cols]
  hr_aug[:, rows, cols] = hr[:, rows, cols]
  return hr_aug, lr_aug


# ----------------------------------------------------------------------------- cutblur


def sample_cutblur(rng, shape, prob=1.0, alpha=0.7):
  _, h, w, _ = shape
  if not _gate(rng, prob, alpha):
    return {"applied": False}
  box = _sample_box(rng, h, w, alpha)
  return {"applied": True, "box": box, "inside": bool(rng.random() > 0.5)}


def apply_cutblur(params, hr, lr):
  if hr.shape != lr.shape:
    raise ValueError("hr and lr must have the same resolution.")
  hr, lr = hr.copy(), lr.copy()
  if not params["applied"]:
    return hr, lr
  rows, cols = _box_slices(params["box"])
  if params["inside"]:
    lr[:, rows, cols] = hr[:, rows, cols]
    return hr, lr
  lr_aug = hr.copy()
  lr_aug[:, rows, cols] = lr[:, rows, cols]
  return hr, lr_aug


# ----------------------------------------------------------------------------- the new ops


def apply_soft_cutblur(params, hr, lr):
  """CutBlur with the pasted region blended: ``v * hr + (1 - v) * lr`` there."""
  hr, lr = hr.copy(), lr.copy()
  if not params["applied"]:
    return hr, lr
  rows, cols = _box_slices(params["box"])
  blended = _mix(params["v"], hr, lr)
  if params["inside"]:
    lr[:, rows, cols] = blended[:, rows, cols]
    return hr, lr
  blended[:, rows, cols] = lr[:, rows, cols]
  return hr, blended


def apply_degradation_mixup(params, hr, lr):
  if not params["applied"]:
    return hr.copy(), lr.copy()
  return hr.copy(), _mix(params["v"], lr, hr)


def apply_box_cutout(params, hr, lr):
  """The original Cutout: LR zeroed in the box, and the loss mask of cutout (0 there)."""
  n, h, w, _ = hr.shape
  mask = np.ones((n, h, w, 1), hr.dtype)
  if params["applied"]:
    rows, cols = _box_slices(params["box"])
    mask[:, rows, cols] = 0
  return hr.copy(), lr * mask, mask


# ----------------------------------------------------------------------------- policy


def sample_op_index(rng, count, mix_p=None):
  """``np.random.choice(len(augs), p=mix_p)``, as the reference's ``apply_augment``."""
  return int(rng.choice(count, p=mix_p))


def moa_template(dataset="DIV2K_SR", model="EDSR"):
  """The augmentation part of ``option.py``'s ``make_template`` with ``--use_moa``.

  Returns the reference's ``(augs, prob, alpha, aux_prob, aux_alpha, mix_p)``,
  applying the same substring tests in the same order.
  """
  augs = ["blend", "rgb", "mixup", "cutout", "cutmix", "cutmixup", "cutblur"]
  prob = [1.0] * 7
  alpha = [0.6, 1.0, 1.2, 0.001, 0.7, 0.7, 0.7]
  aux_prob, aux_alpha = 1.0, 1.2
  mix_p = None
  if "RealSR" in dataset:
    mix_p = [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.4]
  if "DN" in dataset or "JPEG" in dataset:
    prob = [0.6] * 7
  if "CARN" in model and "RealSR" not in dataset:
    prob = [0.2] * 7
  return augs, prob, alpha, aux_prob, aux_alpha, mix_p
