"""A study report's statistics and its Markdown table.

``summarize`` groups the runs by setting (and, for ``regime``, network size and data
size), gives each group ``n``, the mean and the sample standard deviation of every
metric, and pairs each run with the ``none`` run of the same seed for the paired
differences. ``format_table`` prints that summary as the tables in docs/reproducing.md.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from cutblur_jax.studies.definitions import BASELINE, STUDIES


def _stats(values: Sequence[float]) -> dict[str, Any]:
  values = np.asarray(values, np.float64)
  return {
    "mean": float(values.mean()),
    "std": float(values.std(ddof=1)) if len(values) > 1 else None,
  }


def summarize(runs: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> list[dict[str, Any]]:
  """Per group (setting and, for ``regime``, size and data): ``n``, mean and sample std.

  Each group other than ``none`` also gets ``difference_vs_none``: per metric, the mean
  and sample std of its seed-by-seed difference against the ``none`` run with the same
  seed (and size and data), ``n`` and the differences themselves (``by_seed``).

  Examples:
    >>> runs = [{"setting": s, "seed": k, "psnr": p} for s, k, p in
    ...         [("none", 0, 30.0), ("none", 1, 31.0), ("moa", 0, 30.5), ("moa", 1, 31.0)]]
    >>> summary = summarize(runs, ["psnr"])
    >>> summary[1]["difference_vs_none"]["psnr"]["mean"]
    0.25
  """
  groups: dict[tuple, list[Mapping[str, Any]]] = {}
  for run in runs:
    groups.setdefault(_group_key(run), []).append(_flat(run))
  summary = []
  for key, rows in groups.items():
    entry = {**dict(key), "n": len(rows)}
    for metric in metrics:
      entry[metric] = _stats([row[metric] for row in rows])
    if entry["setting"] != BASELINE:
      base_key = tuple((name, BASELINE if name == "setting" else value) for name, value in key)
      base = {row["seed"]: row for row in groups.get(base_key, [])}
      paired = [(row["seed"], row, base[row["seed"]]) for row in rows if row["seed"] in base]
      if paired:
        entry["difference_vs_none"] = {}
        for metric in metrics:
          by_seed = {str(seed): row[metric] - other[metric] for seed, row, other in paired}
          entry["difference_vs_none"][metric] = {
            **_stats(list(by_seed.values())),
            "n": len(by_seed),
            "by_seed": by_seed,
          }
    summary.append(_nest(entry))
  return summary


def _flat(run: Mapping[str, Any]) -> dict[str, Any]:
  """``psnr_by_sigma: {"10": x}`` as a metric ``psnr_sigma10``."""
  by_sigma = run.get("psnr_by_sigma") or {}
  return {**run, **{f"psnr_sigma{sigma}": value for sigma, value in by_sigma.items()}}


def _nest(entry: dict[str, Any]) -> dict[str, Any]:
  """The inverse of ``_flat`` on a summary entry (and its paired differences)."""

  def nest(stats: dict[str, Any]) -> dict[str, Any]:
    by_sigma = {
      name[len("psnr_sigma") :]: stats.pop(name)
      for name in list(stats)
      if name.startswith("psnr_sigma")
    }
    if by_sigma:
      stats["psnr_by_sigma"] = by_sigma
    return stats

  if "difference_vs_none" in entry:
    nest(entry["difference_vs_none"])
  return nest(entry)


def _group_key(run: Mapping[str, Any]) -> tuple:
  return tuple(
    (name, run[name])
    for name in ("setting", "num_blocks", "num_channels", "num_train_images")
    if name in run
  )


def format_table(report: Mapping[str, Any]) -> str:
  """The report's summary as a Markdown table.

  One row per group (mean ± sample std over seeds), the baseline's row (bicubic, or the
  noisy input for ``denoise``) when the report has one, then the paired differences.
  """
  study = STUDIES[report["study"]]
  metrics = list(study.metrics)
  titles = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "hr_input_psnr": "HR-input PSNR (dB)",
    **{f"psnr_sigma{s}": f"PSNR σ={s} (dB)" for s in study.test_sigmas},
  }
  if study.test_sigmas:
    metrics.remove("psnr")  # psnr is psnr_sigma<training sigma>
    metrics.remove("ssim")
    metrics.append("ssim")
    titles["ssim"] = f"SSIM σ={report['config']['sigma']:g}"
  group_fields = [
    name
    for name in ("num_blocks", "num_channels", "num_train_images")
    if report["summary"] and name in report["summary"][0]
  ]
  header = ["setting"] + (["network", "photos"] if group_fields else []) + ["seeds"]
  lines = [
    "| " + " | ".join(header + [titles[m] for m in metrics]) + " |",
    "|" + "---|" * (len(header) + len(metrics)),
  ]

  def cell(stats: Mapping[str, Any], metric: str, sign: bool = False) -> str:
    if metric.startswith("psnr_sigma"):
      stats = stats["psnr_by_sigma"][metric[len("psnr_sigma") :]]
    else:
      stats = stats[metric]
    digits = 4 if metric == "ssim" else 2
    text = f"{stats['mean']:+.{digits}f}" if sign else f"{stats['mean']:.{digits}f}"
    return text + ("" if stats["std"] is None else f" ± {stats['std']:.{digits}f}")

  def label(entry: Mapping[str, Any], name: str) -> list[str]:
    if not group_fields:
      return [name]
    return [name, f"{entry['num_blocks']}x{entry['num_channels']}", str(entry["num_train_images"])]

  for entry in report["summary"]:
    lines.append(
      "| "
      + " | ".join(
        label(entry, entry["setting"]) + [str(entry["n"])] + [cell(entry, m) for m in metrics]
      )
      + " |"
    )
  baseline = report.get("baseline")
  if baseline:  # bicubic upsampling of the LR input, or the noisy input itself
    values = {
      **baseline,
      **{f"psnr_sigma{s}": v for s, v in baseline.get("psnr_by_sigma", {}).items()},
    }
    row = [f"{values[m]:.{4 if m == 'ssim' else 2}f}" if m in values else "-" for m in metrics]
    name = "noisy input" if "psnr_by_sigma" in baseline else "bicubic"
    blanks = ["-", "-"] if group_fields else []
    lines.append("| " + " | ".join([name, *blanks, "-", *row]) + " |")
  for entry in report["summary"]:
    paired = entry.get("difference_vs_none")
    if paired:
      name = f"{entry['setting']} - none"
      lines.append(
        "| "
        + " | ".join(
          label(entry, name) + [str(paired["psnr"]["n"])] + [cell(paired, m, True) for m in metrics]
        )
        + " |"
      )
  return "\n".join(lines)
