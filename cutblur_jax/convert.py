"""Official PyTorch ``state_dict`` <-> Flax params, strictly checked.

The official networks (``clovaai/cutblur``, ``model/{edsr,rcan,carn}.py``) save
``net.state_dict()``: conv weights ``[out, in, kh, kw]`` (OIHW) and biases ``[out]`` under
dotted names, plus the frozen mean shifts ``sub_mean.{weight,bias}`` and
``add_mean.{weight,bias}``. Invariants:

* Every conv weight maps to a Flax ``kernel`` by OIHW -> HWIO and nothing else: our
  ``space_to_depth`` and ``pixel_shuffle`` keep the official channel orders.
* ``torch_to_flax`` refuses a missing, extra, mis-shaped or non-finite tensor and a mean
  shift that is not the standard DIV2K one (our networks hold it as a constant), each
  error naming the tensor. A DataParallel ``module.`` prefix on every name is removed.
* ``flax_to_torch(torch_to_flax(sd, arch), arch) == sd`` for every valid ``sd``.

Torch is needed only by ``load_torch_state_dict``; the mappings take any arrays.

Examples:
  >>> arch = models.model_arch("EDSR", 2, num_blocks=1, num_channels=4)
  >>> sorted(torch_parameter_names(arch))[:3]
  ['body.0.body.0.bias', 'body.0.body.0.weight', 'body.0.body.2.bias']
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np
from flax import traverse_util

from cutblur_jax import models
from cutblur_jax.models.layers import RGB_MEAN_255

MEAN_SHIFT_NAMES = ("sub_mean.weight", "sub_mean.bias", "add_mean.weight", "add_mean.bias")
_DATA_PARALLEL_PREFIX = "module."
# The official bias is float32(sign * 255 * float32(mean)); allow for other float rounding.
_MEAN_SHIFT_TOLERANCE = 1e-4


def torch_parameter_names(arch: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
  """Official ``state_dict`` name -> Flax params path (``models.torch_parameter_names``).

  The mean-shift tensors (``MEAN_SHIFT_NAMES``) have no Flax counterpart.
  """
  return models.torch_parameter_names(arch)


def mean_shift_state() -> dict[str, np.ndarray]:
  """The four official MeanShift tensors (float32), as every official checkpoint holds them."""
  eye = np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1)
  return {
    "sub_mean.weight": eye,
    "sub_mean.bias": -RGB_MEAN_255,
    "add_mean.weight": eye.copy(),
    "add_mean.bias": RGB_MEAN_255.copy(),
  }


def _to_numpy(name: str, value: Any) -> np.ndarray:
  if hasattr(value, "detach"):  # A torch tensor (bfloat16 has no NumPy dtype: upcast first).
    value = value.detach().cpu()
    if not value.is_floating_point():
      raise ValueError(f"Tensor {name!r} has dtype {value.dtype}, expected floating point.")
    return value.float().numpy()
  array = np.asarray(value)
  if not np.issubdtype(array.dtype, np.floating):
    raise ValueError(f"Tensor {name!r} has dtype {array.dtype}, expected floating point.")
  return array.astype(np.float32)


def _flax_shape(torch_shape: tuple[int, ...]) -> tuple[int, ...]:
  return tuple(torch_shape[i] for i in (2, 3, 1, 0)) if len(torch_shape) == 4 else torch_shape


def _torch_shape(flax_shape: tuple[int, ...]) -> tuple[int, ...]:
  return tuple(flax_shape[i] for i in (3, 2, 0, 1)) if len(flax_shape) == 4 else flax_shape


def _list(names) -> str:
  names = sorted(names)
  shown = ", ".join(repr(n) for n in names[:8])
  return shown + (f", ... ({len(names)} in all)" if len(names) > 8 else "")


def strip_data_parallel_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
  """Removes ``module.`` from every name when every name has it (``nn.DataParallel``)."""
  if state_dict and all(k.startswith(_DATA_PARALLEL_PREFIX) for k in state_dict):
    return {k[len(_DATA_PARALLEL_PREFIX) :]: v for k, v in state_dict.items()}
  return dict(state_dict)


def torch_to_flax(state_dict: Mapping[str, Any], arch: Mapping[str, Any]) -> dict[str, Any]:
  """Official ``state_dict`` -> Flax params (NumPy float32 leaves) for the network ``arch``.

  Args:
    state_dict: name -> torch tensor or array, e.g. ``torch.load(path, weights_only=True)``.
    arch: the network the checkpoint was trained as (``models.model_arch``).

  Returns:
    The params pytree for ``models.create_model(arch)``.

  Raises:
    ValueError: a tensor is missing, extra (both listed by name), mis-shaped, non-finite or
      not floating point, or a mean shift is not the standard one (each naming the tensor);
      or ``arch`` is a CARN with ``res_scale`` other than 1 (which the official CARN
      ignores).
  """
  arch = models.canonical_arch(arch)
  state_dict = strip_data_parallel_prefix(state_dict)
  names = torch_parameter_names(arch)
  expected = set(names) | set(MEAN_SHIFT_NAMES)
  missing, extra = expected - set(state_dict), set(state_dict) - expected
  network = f"{arch['model']} {arch}"
  if missing or extra:
    problems = []
    if missing:
      problems.append(f"lacks tensor(s) {_list(missing)} of {network}")
    if extra:
      problems.append(f"has tensor(s) {_list(extra)} that {network} does not have")
    raise ValueError(
      f"The checkpoint {' and '.join(problems)}. Is the architecture "
      "(--model, --scale, sizes) the checkpoint's?"
    )
  for field, fixed in models.network(arch).fixed_for_torch.items():
    if arch[field] != fixed:
      raise ValueError(
        f"The official {arch['model']} ignores {field} (it always uses "
        f"{fixed}), so {field} {arch[field]} would compute another network."
      )
  for name, standard in mean_shift_state().items():
    value = _to_numpy(name, state_dict[name])
    if value.shape != standard.shape:
      raise ValueError(f"Tensor {name!r} has shape {value.shape}, expected {standard.shape}.")
    if not np.allclose(value, standard, rtol=0, atol=_MEAN_SHIFT_TOLERANCE):
      raise ValueError(
        f"Tensor {name!r} is {value.ravel().tolist()}, not the standard DIV2K mean shift "
        f"{standard.ravel().tolist()}; the Flax networks hold the mean shift as a constant."
      )
  shapes = traverse_util.flatten_dict(models.abstract_params(arch))
  params: dict[tuple[str, ...], Any] = {}
  for name, path in names.items():
    value = _to_numpy(name, state_dict[name])
    flax_shape = tuple(shapes[path].shape)
    if value.ndim != len(flax_shape) or _flax_shape(value.shape) != flax_shape:
      raise ValueError(
        f"Tensor {name!r} has shape {tuple(value.shape)}, expected "
        f"{_torch_shape(flax_shape)} for {network}."
      )
    if not np.all(np.isfinite(value)):
      raise ValueError(f"Tensor {name!r} has non-finite values.")
    if value.ndim == 4:
      value = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    params[path] = np.ascontiguousarray(value, np.float32)
  return traverse_util.unflatten_dict(params)


def flax_to_torch(params: Mapping[str, Any], arch: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """Flax params -> an official ``state_dict`` (NumPy float32 values, mean shifts included).

  ``{k: torch.from_numpy(v) for k, v in flax_to_torch(params, arch).items()}`` loads into
  the official network with ``strict=True``.

  Raises:
    ValueError: ``params`` lacks a tensor of ``arch`` or has one of the wrong shape.
  """
  arch = models.canonical_arch(arch)
  shapes = traverse_util.flatten_dict(models.abstract_params(arch))
  try:
    given = traverse_util.flatten_dict(dict(params))
  except (TypeError, ValueError) as error:
    raise ValueError(f"`params` must be a nested mapping of arrays, got {type(params)}.") from error
  state = {}
  for name, path in torch_parameter_names(arch).items():
    if path not in given:
      raise ValueError(f"`params` lacks {'/'.join(path)} (torch {name!r}).")
    value = np.asarray(given[path], np.float32)
    expected = tuple(shapes[path].shape)
    if value.shape != expected:
      raise ValueError(f"`params` {'/'.join(path)} has shape {value.shape}, expected {expected}.")
    state[name] = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value  # HWIO -> OIHW
  state.update(mean_shift_state())
  return state


def load_torch_state_dict(path: str | os.PathLike) -> dict[str, Any]:
  """Reads an official ``.pt`` checkpoint on the CPU with ``weights_only=True``.

  Raises:
    ImportError: torch is not installed (it is the optional extra ``[torch]``).
    ValueError: the file is missing, not a torch checkpoint, or not a ``state_dict``.
  """
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    raise ImportError(
      "Reading PyTorch checkpoints needs torch: pip install torch "
      "(the optional extra cutblur-jax[torch])."
    ) from error
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ValueError(f"Checkpoint file not found: {path!r}.")
  try:
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as error:  # torch raises many types for a bad file.
    # Its first line says why; what follows is advice about unpickling untrusted code.
    cause = (str(error).strip().split(". ")[0].splitlines() or [type(error).__name__])[0][:200]
    raise ValueError(
      f"Could not read {path!r} as a PyTorch state_dict (torch.save of model.state_dict()): {cause}"
    ) from error
  if not isinstance(state_dict, Mapping) or not all(
    isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()
  ):
    raise ValueError(f"{path!r} does not hold a state_dict (a mapping of names to tensors).")
  return dict(state_dict)
