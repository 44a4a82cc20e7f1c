"""Training's periodic validation: full images through ``cutblur_jax.evaluation``.

The baseline (bicubic, or the degraded input for same-size tasks) is measured once per
run; every validation then measures the model alone, on the path ``evaluate.py`` uses,
and keeps centred LR/SR/HR crops of the first images for TensorBoard.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from cutblur_jax import evaluation
from cutblur_jax import sharding as sharding_lib
from cutblur_jax.data.spec import EvalProtocol
from cutblur_jax.image import upsample_nearest

__all__ = ["Validation", "baseline_words"]


@dataclasses.dataclass
class Validation:
  """The validation images, their metric protocol and the baseline measured once per run."""

  pairs: Sequence[Any]
  protocol: EvalProtocol
  baseline: Mapping[str, float]
  num_samples: int

  def run(
    self, params: Any, arch: Mapping[str, Any], *, with_samples: bool = True
  ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """``({"psnr", "ssim"}, images)``: the mean over the images, and LR/SR/HR sample crops."""
    outputs = {}
    keep = {pair.name for pair in self.pairs[: self.num_samples]} if with_samples else set()

    def collect(name, sr):
      if name in keep:
        outputs[name] = sr

    report = evaluation.evaluate_model(
      sharding_lib.to_local(params),
      arch,
      self.pairs,
      hr_input_test=False,
      baseline=False,
      on_output=collect,
      protocol=self.protocol,
    )
    images = {}
    for index, pair in enumerate(self.pairs[: self.num_samples] if with_samples else ()):
      images.update(_sample_crops(index, pair, outputs[pair.name]))
    return {"psnr": report["mean"]["psnr"], "ssim": report["mean"]["ssim"]}, images


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
