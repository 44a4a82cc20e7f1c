"""Training's periodic validation: full images through ``cutblur_jax.evaluation``.

The images are split over the processes (process ``p`` of ``n`` reads and measures images
``p, p + n, ...``) and, within a process, over its local devices (one thread per device,
each with its own copy of the parameters). The per-image numbers are gathered on every
process in image order (``sharding.gather_rows``, float64 bits), so the mean is the one a
single process computes, bit for bit, and every process holds the same numbers: "best" is
decided once for all of them.

The baseline (bicubic, or the degraded input for same-size tasks) is measured once per
run; every validation then measures the model alone, on the path ``evaluate.py`` uses,
and keeps centred LR/SR/HR crops of process 0's first images for TensorBoard.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from cutblur_jax import evaluation
from cutblur_jax import sharding as sharding_lib
from cutblur_jax.data.prefetch import LoadedPairs
from cutblur_jax.data.spec import EvalProtocol
from cutblur_jax.image import upsample_nearest

__all__ = ["Validation", "baseline_words", "process_share"]

_SCORES = ("psnr", "ssim")


def process_share(count: int, process_index: int, process_count: int) -> list[int]:
  """The validation images one process reads and measures: ``p, p + n, ...`` of ``count``."""
  return list(range(process_index, count, process_count))


def _mean_rows(rows: np.ndarray, names: Sequence[str]) -> dict[str, float]:
  return {name: float(np.mean(rows[:, i].tolist())) for i, name in enumerate(names)}


@dataclasses.dataclass
class Validation:
  """This process's share of the validation images, their protocol and the run's baseline.

  Attributes:
    pairs: this process's images (``process_share`` of the validation set).
    protocol: how they are measured.
    baseline: the mean baseline over every process's images (``measure_baseline``).
    num_samples: LR/SR/HR crops kept per validation (of process 0's first images).
    count: the number of validation images over every process.
  """

  pairs: Sequence[Any]
  protocol: EvalProtocol
  baseline: Mapping[str, float]
  num_samples: int
  count: int | None = None

  def __post_init__(self):
    if self.count is None:
      self.count = len(self.pairs)

  def _gathered(self, rows: list[list[float]], names: Sequence[str]) -> dict[str, float]:
    """The mean of every process's per-image ``rows``, in image order, on every process."""
    local = np.asarray(rows, np.float64).reshape(len(self.pairs), len(names))
    return _mean_rows(sharding_lib.gather_rows(local, self.count), names)

  @classmethod
  def measure_baseline(
    cls, pairs: Sequence[Any], protocol: EvalProtocol, *, count: int, **kw
  ) -> "Validation":
    """A ``Validation`` whose baseline is measured over every process's ``pairs`` (a
    ``LoadedPairs``, which knows its ``input_scale`` even when this process has no image)."""
    name = "input" if evaluation.input_scale_of(pairs) == 1 else "bicubic"
    names = (f"{name}_psnr", f"{name}_ssim")
    rows = evaluation.baseline_metrics(pairs, protocol, per_image=True) if len(pairs) else []
    validation = cls(pairs, protocol, {}, count=count, **kw)
    validation.baseline = validation._gathered([[row[n] for n in names] for row in rows], names)
    return validation

  def run(
    self, params: Any, arch: Mapping[str, Any], *, with_samples: bool = True
  ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """``({"psnr", "ssim"}, images)``: the mean over every process's images, and LR/SR/HR
    sample crops of this process's first images."""
    params = sharding_lib.to_local(params)
    devices = jax.local_devices()
    groups = [list(range(d, len(self.pairs), len(devices))) for d in range(len(devices))]
    keep = {pair.name for pair in self.pairs[: self.num_samples]} if with_samples else set()
    outputs = {}

    def collect(name, sr):
      if name in keep:
        outputs[name] = sr

    def measure(device_index: int) -> list[dict[str, Any]]:
      positions = groups[device_index]
      if not positions:
        return []
      device_params = params
      if len(devices) > 1:
        device_params = jax.device_put(params, devices[device_index])
      pairs = LoadedPairs(
        [self.pairs[i] for i in positions],
        scale=getattr(self.pairs, "scale", None),
        input_scale=getattr(self.pairs, "input_scale", None),
      )
      report = evaluation.evaluate_model(
        device_params,
        arch,
        pairs,
        hr_input_test=False,
        baseline=False,
        on_output=collect,
        protocol=self.protocol,
      )
      return report["images"]

    rows: list[list[float]] = [[]] * len(self.pairs)
    if len(devices) == 1:
      reports = [measure(0)]
    else:
      with concurrent.futures.ThreadPoolExecutor(len(devices), "validation") as pool:
        reports = list(pool.map(measure, range(len(devices))))
    for positions, images in zip(groups, reports):
      for position, image in zip(positions, images):
        rows[position] = [image[key] for key in _SCORES]
    scores = self._gathered(rows, _SCORES)
    images = {}
    for index, pair in enumerate(self.pairs[: self.num_samples] if with_samples else ()):
      images.update(_sample_crops(index, pair, outputs[pair.name]))
    return scores, images


def _sample_crops(index: int, pair: Any, sr: np.ndarray, size: int = 256) -> dict[str, np.ndarray]:
  """Centred LR (nearest-upsampled), SR and HR crops of one image, for TensorBoard."""
  scale = pair.hr.shape[0] // pair.lr.shape[0]
  height, width = pair.hr.shape[:2]
  side_y, side_x = min(size, height) // scale * scale, min(size, width) // scale * scale
  y0, x0 = (height - side_y) // 2 // scale * scale, (width - side_x) // 2 // scale * scale
  crop = (slice(y0, y0 + side_y), slice(x0, x0 + side_x))
  lr = pair.lr[y0 // scale : (y0 + side_y) // scale, x0 // scale : (x0 + side_x) // scale]
  lr = np.asarray(upsample_nearest(lr, scale)) if scale > 1 else lr
  return {f"{index}/lr": lr, f"{index}/sr": sr[crop], f"{index}/hr": pair.hr[crop]}


def baseline_words(baseline: Mapping[str, float]) -> str:
  return ", ".join(
    f"{name.split('_')[0]} {name.split('_')[1].upper()} {value:.4g}"
    for name, value in baseline.items()
  )
