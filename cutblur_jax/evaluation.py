"""Evaluation as papers report it: model vs bicubic PSNR/SSIM, and the HR-input test.

``evaluate_model(params, arch, dataset)`` super-resolves every LR image of a data set
(``inference.super_resolve``: nearest upsampling, the network, ``uint8`` rounding as
the official code), measures PSNR and SSIM against HR with ``cutblur_jax.metrics``
(``crop_border``/``y_only``/``round_y``: the data set's ``EvalProtocol``), and
measures plain bicubic upsampling of the same LR images the same way: MATLAB
``imresize(lr, scale)`` rounded to ``uint8``. For same-size tasks (``scale == 1``:
denoising, JPEG) the baseline is the degraded input itself.

The HR-input test (from the paper): the network is given the HR image itself where it
normally gets the nearest-upsampled LR image (both are HR-sized), and PSNR(output,
HR input) is reported. A model that has learned *where* to super-resolve returns the
image nearly unchanged (high PSNR); models trained without CutBlur over-sharpen it.

The report is a plain dict, also what ``experiments/evaluate.py --json`` writes::

  {"images": [{"name", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim",
               "hr_input_psnr"}, ...],
   "mean": {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim", "hr_input_psnr"},
   "scale": int, "crop_border": int, "y_only": bool, "round_y": bool}

(``hr_input_psnr`` only when the test ran.) PSNR of identical images is ``inf``; a
mean over images that contains one is ``inf`` too. Standard JSON has no ``inf``, so
``write_report`` writes such values as ``null``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from cutblur_jax import metrics
from cutblur_jax.data.bicubic import imresize
from cutblur_jax.data.degradations import center_crop_pair
from cutblur_jax.data.image_folders import hr_pairs
from cutblur_jax.data.io import write_json
from cutblur_jax.data.spec import EvalProtocol, parse_dataset
from cutblur_jax.data.types import ImagePair, input_scale_of
from cutblur_jax.paths import as_path

# center_crop_pair, hr_pairs and input_scale_of live in cutblur_jax.data; they are
# re-exported here, where evaluate.py and users first found them.
__all__ = [
  "EvalProtocol",
  "METRIC_KEYS",
  "baseline_metrics",
  "bicubic_upscale",
  "center_crop_pair",
  "evaluate_images",
  "evaluate_model",
  "format_report",
  "hr_input_forward",
  "hr_pairs",
  "input_scale_of",
  "write_report",
]

METRIC_KEYS = ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim", "hr_input_psnr")


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
  """The bicubic baseline: MATLAB ``imresize(lr, scale)``, ``uint8`` (half away from zero).

  For ``scale == 1`` (same-size tasks) the input itself is the baseline.

  Examples:
    >>> bicubic_upscale(np.full((3, 5, 3), 7, np.uint8), 4).shape
    (12, 20, 3)
  """
  lr = metrics.to_uint8(lr, "lr")
  return lr.copy() if scale == 1 else imresize(lr, int(scale))


def hr_input_forward(
  params: Any,
  arch: Mapping[str, Any],
  hr: np.ndarray,
  *,
  tile: int | None = -1,
  dtype: Any = jnp.float32,
) -> np.ndarray:
  """Runs the network on the HR image itself (the HR-input test); returns ``uint8``.

  The network normally sees the LR image upsampled to HR size; here it sees HR,
  through ``inference.super_resolve(..., input_is_hr_size=True)`` (size buckets
  and tiles as there, exact for EDSR and CARN).

  Args:
    params: network params.
    arch: its arch dict (``scale`` must divide the HR height and width).
    hr: ``uint8 [H, W, 3]`` (or float on [0, 255]).
    tile: ``inference.super_resolve``'s tile option.
    dtype: computation dtype.

  Returns:
    ``uint8 [H, W, 3]``.
  """
  from cutblur_jax import inference, models  # pylint: disable=g-import-not-at-top

  scale = models.canonical_arch(arch)["scale"]
  hr = np.asarray(hr)
  if hr.ndim != 3 or hr.shape[-1] != 3:
    raise ValueError(f"`hr` must be [H, W, 3], got shape {hr.shape}.")
  height, width = hr.shape[:2]
  if height % scale or width % scale:
    raise ValueError(
      f"`hr` of size {height}x{width} is not a multiple of the model's "
      f"scale {scale}; mod-crop it first."
    )
  return inference.super_resolve(params, arch, hr, input_is_hr_size=True, tile=tile, dtype=dtype)


def _mean(values: Iterable[float]) -> float:
  values = list(values)
  return float(np.mean(values)) if values else math.nan


def evaluate_images(
  dataset: Sequence[ImagePair],
  super_resolve: Callable[[np.ndarray], Any],
  *,
  scale: int,
  crop_border: int,
  y_only: bool,
  round_y: bool = True,
  input_scale: int | None = None,
  hr_input: Callable[[np.ndarray], Any] | None = None,
  baseline: bool = True,
  progress: Callable[[Iterable], Iterable] | None = None,
  on_output: Callable[[str, np.ndarray], Any] | None = None,
) -> dict[str, Any]:
  """Measures any super-resolution function against HR, beside bicubic.

  This is the one evaluation path: ``evaluate_model``, ``baseline_metrics``, training's
  periodic validation and ``experiments/evaluate.py`` all measure through it.

  Args:
    dataset: a sequence of ``ImagePair`` (HR ``input_scale`` times LR).
    super_resolve: ``lr uint8 [h, w, 3] -> sr`` of HR's size (uint8, or float on
      [0, 255], rounded before measuring).
    scale: the super-resolution factor (1 for same-size tasks).
    crop_border, y_only, round_y: the metric protocol (``metrics.psnr``).
    input_scale: HR size / LR size (default ``scale``); 1 for same-size pairs of an SR
      task (RealSR v1, whose LR is already upscaled), whose baseline is the input itself.
    hr_input: optional ``hr -> output`` for the HR-input test.
    baseline: also measure the bicubic baseline (``bicubic_psnr``, ``bicubic_ssim``).
    progress: optional wrapper of the image loop (e.g. ``tqdm``).
    on_output: optional ``(name, sr uint8) -> None``, called with each output as measured
      (``evaluate.py --save_images`` writes it).

  Returns:
    The report dict described in the module docstring.

  Raises:
    ValueError: an output or LR image has the wrong size (naming the image).
  """
  options = dict(crop_border=crop_border, y_only=y_only, round_y=round_y)
  input_scale = scale if input_scale is None else input_scale
  indices = range(len(dataset))
  rows = []
  for index in progress(indices) if progress else indices:
    pair = dataset[index]
    hr, lr = metrics.to_uint8(pair.hr, "hr"), metrics.to_uint8(pair.lr, "lr")
    expected = (lr.shape[0] * input_scale, lr.shape[1] * input_scale)
    if hr.shape[:2] != expected:
      raise ValueError(
        f"Image {pair.name!r}: HR is {hr.shape[0]}x{hr.shape[1]} but LR is "
        f"{lr.shape[0]}x{lr.shape[1]}; expected HR {input_scale} times LR."
      )
    sr = np.asarray(super_resolve(lr))
    if sr.shape != hr.shape:
      raise ValueError(
        f"Image {pair.name!r}: the model output has shape {sr.shape}, HR has {hr.shape}."
      )
    try:
      row = {
        "name": str(pair.name),
        "psnr": metrics.psnr(sr, hr, **options),
        "ssim": metrics.ssim(sr, hr, **options),
      }
    except ValueError as error:  # e.g. an image too small for SSIM after the crop
      raise ValueError(f"Image {pair.name!r} ({hr.shape[0]}x{hr.shape[1]}): {error}") from error
    if baseline:
      bicubic = bicubic_upscale(lr, input_scale)
      row["bicubic_psnr"] = metrics.psnr(bicubic, hr, **options)
      row["bicubic_ssim"] = metrics.ssim(bicubic, hr, **options)
    if hr_input is not None:
      row["hr_input_psnr"] = metrics.psnr(np.asarray(hr_input(hr)), hr, **options)
    if on_output is not None:
      on_output(str(pair.name), metrics.to_uint8(sr, "sr"))
    rows.append(row)
  if not rows:
    raise ValueError("The data set has no images to evaluate.")
  keys = [key for key in METRIC_KEYS if key in rows[0]]
  return {
    "images": rows,
    "mean": {key: _mean(row[key] for row in rows) for key in keys},
    "scale": int(scale),
    "crop_border": int(crop_border),
    "y_only": bool(y_only),
    "round_y": bool(round_y),
  }


def baseline_metrics(
  dataset: Sequence[ImagePair], protocol: EvalProtocol, *, per_image: bool = False
) -> dict[str, float] | list[dict[str, float]]:
  """Mean PSNR/SSIM of the input alone: bicubic ``imresize`` of LR, or LR itself when same-size.

  Returns:
    ``{"bicubic_psnr", "bicubic_ssim"}`` for super-resolution pairs, ``{"input_psnr",
    "input_ssim"}`` for same-size pairs (denoising, JPEG): the names training logs; with
    ``per_image``, one such dict per image instead of the mean.
  """
  input_scale = input_scale_of(dataset)
  report = evaluate_images(
    dataset,
    lambda lr: bicubic_upscale(lr, input_scale),
    scale=input_scale,
    **protocol.options(),
    input_scale=input_scale,
    baseline=False,
  )
  name = "input" if input_scale == 1 else "bicubic"
  rows = [{f"{name}_psnr": row["psnr"], f"{name}_ssim": row["ssim"]} for row in report["images"]]
  if per_image:
    return rows
  return {key: _mean(row[key] for row in rows) for key in rows[0]}


def evaluate_model(
  params: Any,
  arch: Mapping[str, Any],
  dataset: Sequence[ImagePair],
  *,
  protocol: EvalProtocol | str | None = None,
  crop_border: int | None = None,
  y_only: bool | None = None,
  round_y: bool | None = None,
  hr_input_test: bool = True,
  baseline: bool = True,
  tile: int | None = -1,
  dtype: Any = jnp.float32,
  progress: Callable[[Iterable], Iterable] | None = None,
  on_output: Callable[[str, np.ndarray], Any] | None = None,
) -> dict[str, Any]:
  """Evaluates a network on a data set: model vs bicubic, plus the HR-input test.

  Args:
    params: network params (``checkpoint.load_model``).
    arch: its arch dict; ``arch["scale"]`` is the evaluation scale.
    dataset: a sequence of ``ImagePair`` at that scale.
    protocol: the ``EvalProtocol`` (e.g. ``DataSpec.eval_protocol``), or a data set name
      whose protocol to use (e.g. "Set5_SR", "DIV2K_SR"); default: an SR benchmark's at
      this scale (crop ``scale``, Y channel), a denoising one's at scale 1.
    crop_border, y_only, round_y: override the protocol's fields (``round_y``: Y rounded
      to integers, official, or float, BasicSR).
    hr_input_test: also run the HR-input test.
    baseline: also measure bicubic (``evaluate_images``).
    tile: ``inference.super_resolve``'s tile option.
    dtype: computation dtype.
    progress: optional wrapper of the image loop (e.g. ``tqdm``).
    on_output: optional ``(name, sr uint8) -> None`` for each output (``evaluate_images``).

  Returns:
    The report dict (module docstring).

  Examples:
    >>> params, arch = checkpoint.load_model("workdir")  # doctest: +SKIP
    >>> report = evaluate_model(params, arch, embedded_dataset("validation", arch["scale"]))
    ... # doctest: +SKIP
    >>> report["mean"]["psnr"] - report["mean"]["bicubic_psnr"]  # doctest: +SKIP
  """
  from cutblur_jax import inference, models  # pylint: disable=g-import-not-at-top

  arch = models.canonical_arch(arch)
  scale = arch["scale"]
  protocol = _protocol(protocol, scale, crop_border=crop_border, y_only=y_only, round_y=round_y)

  # Same-size pairs of an SR task (RealSR v1) feed the network their LR as it is.
  input_scale = input_scale_of(dataset)

  def run(lr):
    return inference.super_resolve(
      params, arch, lr, input_is_hr_size=input_scale == 1, tile=tile, dtype=dtype
    )

  def run_hr(hr):
    return hr_input_forward(params, arch, hr, tile=tile, dtype=dtype)

  return evaluate_images(
    dataset,
    run,
    scale=scale,
    **protocol.options(),
    input_scale=input_scale,
    hr_input=run_hr if hr_input_test else None,
    baseline=baseline,
    progress=progress,
    on_output=on_output,
  )


def _protocol(protocol: EvalProtocol | str | None, scale: int, **overrides: Any) -> EvalProtocol:
  """The ``EvalProtocol`` ``evaluate_model`` measures with, its fields overridden."""
  if protocol is None:  # an SR (or, at scale 1, denoising) benchmark
    protocol = EvalProtocol.of("SR" if scale > 1 else "DN", scale)
  elif isinstance(protocol, str):
    protocol = parse_dataset(protocol).eval_protocol(scale)
  elif not isinstance(protocol, EvalProtocol):
    raise TypeError(
      f"`protocol` must be an EvalProtocol or a data set name, got {type(protocol).__name__}."
    )
  changes = {key: value for key, value in overrides.items() if value is not None}
  return dataclasses.replace(protocol, **changes) if changes else protocol


def _fmt(value: float, digits: int) -> str:
  return "inf" if value == math.inf else f"{value:.{digits}f}"


def format_report(report: Mapping[str, Any]) -> str:
  """The report as a text table: one row per image and the mean.

  Examples:
    >>> report = {"images": [{"name": "a", "psnr": 30.0, "ssim": 0.9, "bicubic_psnr": 28.0,
    ...                       "bicubic_ssim": 0.85}],
    ...           "mean": {"psnr": 30.0, "ssim": 0.9, "bicubic_psnr": 28.0, "bicubic_ssim": 0.85}}
    >>> print(format_report(report))  # doctest: +NORMALIZE_WHITESPACE
    image  PSNR   SSIM    bicubic PSNR  bicubic SSIM
    a      30.00  0.9000  28.00         0.8500
    mean   30.00  0.9000  28.00         0.8500
  """
  columns = [
    ("psnr", "PSNR", 2),
    ("ssim", "SSIM", 4),
    ("bicubic_psnr", "bicubic PSNR", 2),
    ("bicubic_ssim", "bicubic SSIM", 4),
    ("hr_input_psnr", "HR-input PSNR", 2),
  ]
  columns = [c for c in columns if c[0] in report["mean"]]
  table = [["image"] + [title for _, title, _ in columns]]
  for row in list(report["images"]) + [dict(report["mean"], name="mean")]:
    table.append([str(row["name"])] + [_fmt(row[key], digits) for key, _, digits in columns])
  widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
  return "\n".join(
    "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in table
  )


def _json_safe(value: Any) -> Any:
  """``value`` with every non-finite float (an identical image's ``inf`` PSNR) as None."""
  if isinstance(value, Mapping):
    return {key: _json_safe(item) for key, item in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_safe(item) for item in value]
  if isinstance(value, (float, np.floating)):
    return float(value) if math.isfinite(value) else None
  return value


def write_report(report: Mapping[str, Any], path: str | os.PathLike) -> pathlib.Path:
  """Writes the report as standard JSON, atomically (temporary file, then rename).

  A non-finite number (the ``inf`` PSNR of an output identical to HR, and a mean
  over such images) is written as ``null``: ``Infinity`` is not JSON, and
  parsers other than Python's reject it.

  Examples:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...   path = write_report({"mean": {"psnr": math.inf, "ssim": 1.0}}, f"{folder}/r.json")
    ...   print(path.read_text().split())
    ['{', '"mean":', '{', '"psnr":', 'null,', '"ssim":', '1.0', '}', '}']
  """
  path = as_path(path)
  if path.is_dir():
    raise ValueError(f"--json path {str(path)!r} is a directory.")
  parent = path.parent
  if not parent.is_dir():
    raise ValueError(f"Folder {str(parent)!r} for {str(path)!r} does not exist.")
  return write_json(path, _json_safe(report), sort_keys=False, allow_nan=False, default=None)
