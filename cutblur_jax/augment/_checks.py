"""Trace-time validation shared by the augmentations.

Every check runs on static information (shapes, dtypes, Python numbers), so bad
input fails when a function is traced, with a ``ValueError`` or ``TypeError``
that names the offending argument. Options that arrive as tracers (an ``alpha``
that a user vmaps over, say) cannot be range-checked and are passed through.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def check_images(hr: Any, lr: Any, *, op: str) -> tuple[jax.Array, jax.Array]:
  """Checks an ``(hr, lr)`` pair: 4-D NHWC, the same shape and floating dtype.

  Args:
    hr: the high-resolution batch.
    lr: the low-resolution batch, already brought to HR size.
    op: the calling function's name, for the error messages.

  Returns:
    ``hr`` and ``lr`` as JAX arrays (unchanged values and dtypes).

  Raises:
    TypeError: an argument is not an array or has a non-floating dtype.
    ValueError: an argument is not 4-D or is empty, or the shapes differ.
  """
  arrays = []
  for name, value in (("hr", hr), ("lr", lr)):
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
      raise TypeError(
        f"{op}: `{name}` must be a jax.Array or np.ndarray, got {type(value).__name__}."
      )
    if not jnp.issubdtype(value.dtype, jnp.floating):
      raise TypeError(
        f"{op}: `{name}` must have a floating dtype (float32, bfloat16, ...) with values in "
        f"[0, 255], got dtype {value.dtype}; convert it first, e.g. "
        f"`{name}.astype(jnp.float32)`."
      )
    if len(value.shape) != 4:
      raise ValueError(
        f"{op}: `{name}` must be a 4-D [N, H, W, C] batch, got shape {tuple(value.shape)}; "
        f"add a batch axis with `{name}[None]` for a single image."
      )
    if 0 in value.shape:
      raise ValueError(f"{op}: `{name}` must not be empty, got shape {tuple(value.shape)}.")
    arrays.append(jnp.asarray(value))
  hr, lr = arrays
  if hr.shape != lr.shape:
    raise ValueError(
      f"{op}: `hr` and `lr` must have the same shape, got hr {hr.shape} and lr {lr.shape}. "
      "Bring LR to HR size first, as the reference does, e.g. "
      "`lr = cutblur_jax.image.upsample_nearest(lr, scale)`."
    )
  if hr.dtype != lr.dtype:
    raise TypeError(
      f"{op}: `hr` and `lr` must have the same dtype, got hr {hr.dtype} and lr {lr.dtype}."
    )
  return hr, lr


def check_shape(shape: Any, *, op: str) -> tuple[int, int, int, int]:
  """Checks a batch shape ``(N, H, W, C)`` of positive Python integers."""
  try:
    dims = tuple(int(d) for d in shape)
    valid = len(dims) == 4 and all(d >= 1 and d == s for d, s in zip(dims, shape))
  except (TypeError, ValueError):
    valid = False
  if not valid:
    raise ValueError(
      f"{op}: `shape` must be the images' shape (N, H, W, C) of positive integers, got {shape!r}."
    )
  return dims


def _concrete_float(value: Any, name: str, op: str) -> float | None:
  """Returns ``value`` as a Python float, or None when it is a tracer."""
  # float("0.5") would accept a string, which then fails deep inside jit.
  if isinstance(value, (bool, str, bytes)) or np.ndim(value) != 0:
    raise ValueError(f"{op}: `{name}` must be a real scalar, got {value!r}.")
  try:
    return float(value)
  except jax.errors.ConcretizationTypeError:
    return None
  except (TypeError, ValueError) as error:
    raise ValueError(f"{op}: `{name}` must be a real scalar, got {value!r}.") from error


def check_prob(value: Any, name: str, *, op: str) -> Any:
  """Checks a probability in [0, 1] (skipped for tracers); returns it unchanged."""
  number = _concrete_float(value, name, op)
  if number is not None and not 0.0 <= number <= 1.0:
    raise ValueError(f"{op}: `{name}` must be a probability in [0, 1], got {number!r}.")
  return value


def check_alpha(value: Any, name: str, *, op: str, upper: float | None = None) -> Any:
  """Checks a finite ``alpha`` (at most ``upper`` when given); returns it unchanged.

  ``alpha <= 0`` is valid everywhere: it turns the op into the identity.
  """
  number = _concrete_float(value, name, op)
  if number is not None:
    if not math.isfinite(number):
      raise ValueError(f"{op}: `{name}` must be finite, got {number!r}.")
    if upper is not None and number > upper:
      raise ValueError(f"{op}: `{name}` must be at most {upper}, got {number!r}.")
  return value


def check_distribution(
  values: Sequence[float] | None, name: str, length: int, *, op: str
) -> tuple[float, ...] | None:
  """Checks op-choice probabilities: ``length`` non-negative numbers summing to 1."""
  if values is None:
    return None
  if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
    raise ValueError(
      f"{op}: `{name}` must be a sequence of {length} probabilities, got {values!r}."
    )
  if len(values) != length:
    raise ValueError(
      f"{op}: `{name}` must have one probability per op ({length}), "
      f"got {len(values)}: {tuple(values)!r}."
    )
  probs = tuple(_concrete_float(v, name, op) for v in values)
  if any(p is None for p in probs):
    raise TypeError(f"{op}: `{name}` must hold Python numbers, not traced values.")
  if any(not math.isfinite(p) or p < 0 for p in probs):
    raise ValueError(f"{op}: `{name}` must be non-negative, got {probs!r}.")
  if abs(sum(probs) - 1.0) > 1e-6:
    raise ValueError(f"{op}: `{name}` must sum to 1, got {probs!r} (sum {sum(probs)!r}).")
  return probs
