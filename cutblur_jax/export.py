"""Trained networks as files other tools run: serialized StableHLO (``jax.export``) and ONNX.

The exported function takes what a user has and returns what they want:

* an SR network: LR images ``float32 [N, h, w, 3]`` on [0, 255] to ``float32 [N, h*s, w*s,
  3]`` on [0, 255]; the nearest upsampling of the official pipeline happens inside;
* a same-size network (scale 1, or trained on HR-sized inputs: ``input_is_hr_size``):
  ``[N, H, W, 3]`` to ``[N, H, W, 3]``, where ``H`` and ``W`` are multiples of the
  network's scale (its space-to-depth head needs that).

The output is clipped to [0, 255], as ``inference.super_resolve`` clips before rounding,
so rounding it gives ``super_resolve``'s uint8 image (to float rounding: within one
intensity level). In StableHLO the batch, height and width are symbolic: one file serves
every image size. ``load(path)`` runs such a file in JAX; the ONNX file runs in ONNX
Runtime (``pip install -e ".[export]"``).

Examples:
  >>> params, arch = checkpoint.load_model("workdir")  # doctest: +SKIP
  >>> export.save(export.export_stablehlo(params, arch), "edsr.stablehlo")  # doctest: +SKIP
  >>> sr = export.load("edsr.stablehlo")(lr_images)  # float32 [N, 2h, 2w, 3]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import pathlib
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from cutblur_jax.paths import as_path
from cutblur_jax import image as image_lib
from cutblur_jax import models

__all__ = ["export_onnx", "export_stablehlo", "input_spec", "load", "network_function", "save"]


def network_function(
  params: Any, arch: Mapping[str, Any], *, input_is_hr_size: bool = False
) -> Callable[[jax.Array], jax.Array]:
  """``images -> SR`` with ``params`` baked in (the function both formats export).

  Args:
    params: the network's params (``checkpoint.load_model``).
    arch: its arch dict.
    input_is_hr_size: the network takes HR-sized images (same-size pairs; always so at
      scale 1), so nothing is upsampled.

  Returns:
    A function of ``float32 [N, h, w, 3]`` on [0, 255] to ``float32`` on [0, 255].
  """
  arch = models.canonical_arch(arch)
  model = models.create_model(arch)
  scale = int(arch["scale"])
  upsample = scale > 1 and not input_is_hr_size
  params = jax.tree.map(jnp.asarray, params)

  def run(images):
    images = images.astype(jnp.float32)
    if upsample:
      images = image_lib.upsample_nearest(images, scale)
    return jnp.clip(model.apply({"params": params}, images).astype(jnp.float32), 0.0, 255.0)

  return run


def _same_size(arch: Mapping[str, Any], input_is_hr_size: bool) -> bool:
  return int(arch["scale"]) == 1 or bool(input_is_hr_size)


def input_spec(
  arch: Mapping[str, Any],
  *,
  input_is_hr_size: bool = False,
  shape: tuple[int, int, int] | None = None,
) -> jax.ShapeDtypeStruct:
  """The exported input: symbolic ``(n, h, w, 3)`` (``(n, s*h, s*w, 3)`` for same-size
  networks), or the fixed ``shape = (N, h, w)`` when given."""
  scale = int(arch["scale"])
  if shape is not None:
    n, h, w = (int(v) for v in shape)
    if min(n, h, w) < 1:
      raise ValueError(f"The export shape must be positive, got {shape}.")
    if _same_size(arch, input_is_hr_size) and (h % scale or w % scale):
      raise ValueError(
        f"A same-size x{scale} network takes images whose sides are multiples of "
        f"{scale}, got {h}x{w}."
      )
    return jax.ShapeDtypeStruct((n, h, w, 3), jnp.float32)
  if _same_size(arch, input_is_hr_size) and scale > 1:
    dims = jax.export.symbolic_shape(f"n, {scale}*h, {scale}*w")
  else:
    dims = jax.export.symbolic_shape("n, h, w")
  return jax.ShapeDtypeStruct((*dims, 3), jnp.float32)


def export_stablehlo(
  params: Any,
  arch: Mapping[str, Any],
  *,
  input_is_hr_size: bool = False,
  platforms: tuple[str, ...] = ("cpu", "cuda", "tpu"),
) -> jax.export.Exported:
  """The network as a ``jax.export.Exported`` with a symbolic batch, height and width.

  Args:
    params, arch: the network.
    input_is_hr_size: see ``network_function``.
    platforms: where the artifact may run (lowered for each).

  Returns:
    The ``Exported``; ``save`` writes it, ``load`` reads and runs it.
  """
  function = network_function(params, arch, input_is_hr_size=input_is_hr_size)
  spec = input_spec(arch, input_is_hr_size=input_is_hr_size)
  return jax.export.export(jax.jit(function), platforms=platforms)(spec)


def export_onnx(
  params: Any,
  arch: Mapping[str, Any],
  *,
  input_is_hr_size: bool = False,
  shape: tuple[int, int, int] | None = None,
  opset: int = 21,
) -> bytes:
  """The network as an ONNX model (serialized bytes), through ``jax2onnx``.

  Args:
    params, arch: the network.
    input_is_hr_size: see ``network_function``.
    shape: a fixed ``(N, h, w)`` input; default: symbolic batch, height and width.
    opset: the ONNX opset.

  Raises:
    ImportError: ``jax2onnx`` and ``onnx`` are not installed (``pip install -e ".[export]"``).
    ValueError: the converter cannot handle this network or size (naming both).
  """
  try:
    import jax2onnx  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    raise ImportError(
      "ONNX export needs jax2onnx and onnx: pip install -e \".[export]\""
    ) from error
  function = network_function(params, arch, input_is_hr_size=input_is_hr_size)
  spec = input_spec(arch, input_is_hr_size=input_is_hr_size, shape=shape)
  dims = tuple(d if isinstance(d, int) else str(d) for d in spec.shape)
  # onnx_ir warns about every shape-only constant it leaves untyped: noise, not a problem.
  serde_logger = logging.getLogger("onnx_ir")
  level = serde_logger.level
  serde_logger.setLevel(logging.ERROR)
  try:
    model = jax2onnx.to_onnx(function, [spec], opset=opset, model_name=str(arch["model"]))
  except Exception as error:  # pylint: disable=broad-except  # the converter's own errors
    raise ValueError(
      f"jax2onnx cannot export {arch['model']} x{arch['scale']} at input "
      f"{dims}: {type(error).__name__}: {error}"
    ) from error
  finally:
    serde_logger.setLevel(level)
  return model.SerializeToString()


def save(
  exported: jax.export.Exported | bytes, path: str | os.PathLike, *, overwrite: bool = False
) -> pathlib.Path:
  """Writes an ``Exported`` (serialized) or ONNX bytes to ``path``, atomically."""
  from cutblur_jax.data.io import write_atomic  # pylint: disable=g-import-not-at-top

  data = exported if isinstance(exported, bytes) else bytes(exported.serialize())
  return write_atomic(path, lambda stream: stream.write(data), overwrite=overwrite)


def is_export(export_format: str, path: str | os.PathLike) -> bool:
  """Whether ``path`` is a file of ``save`` in ``export_format`` (``"stablehlo"``, ``"onnx"``)."""
  try:
    data = as_path(path).read_bytes()
    if export_format == "stablehlo":
      jax.export.deserialize(bytearray(data))
    else:
      import onnx  # pylint: disable=g-import-not-at-top

      onnx.checker.check_model(onnx.load_model_from_string(data))
  except Exception:  # pylint: disable=broad-except  # any failure to parse says no
    return False
  return True


def load(path: str | os.PathLike) -> Callable[[Any], np.ndarray]:
  """Reads a StableHLO file of ``save`` and returns ``images -> SR`` (a NumPy array).

  Raises:
    ValueError: ``path`` is not such a file (naming it).
  """
  path = as_path(path)
  try:
    exported = jax.export.deserialize(bytearray(path.read_bytes()))
  except OSError:
    raise
  except Exception as error:  # pylint: disable=broad-except  # flatbuffer errors vary
    raise ValueError(f"{str(path)!r} is not a StableHLO export of cutblur_jax: {error}") from error

  def run(images: Any) -> np.ndarray:
    return np.asarray(exported.call(jnp.asarray(images, jnp.float32)))

  return run
