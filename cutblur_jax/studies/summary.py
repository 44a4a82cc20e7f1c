"""A study report's statistics and its Markdown tables.

``summarize`` groups the runs by setting (and, for ``regularization``, training set), gives
each group ``n`` and the mean and sample standard deviation of every metric, and pairs each
run with the ``none`` run of the same seed. A paired difference is taken two ways:

* **over seeds**: each seed's difference of the mean over the test photos: mean, sample
  std, the seeds that move each way, and a two-sided paired t-test (``p_seeds``, uncorrected);
* **over test photos**: each photo's difference averaged over the seeds: the photos that
  move each way, and a two-sided exact Wilcoxon signed-rank test (``p_photos``).

The study's claims (``Study.tested``) are its comparisons: every ``p_photos`` of a tested
metric is Holm-corrected over all of them (``p_holm``, and ``comparisons`` says how many).
``effect`` is ``"+"`` or ``"-"`` when every seed moves that way and ``p_holm < 0.05``, else
``"0"``: what docs/reproducing.md reads its verdicts from.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats as scipy_stats

from cutblur_jax.studies.definitions import BASELINE

GROUP_FIELDS = ("setting", "train_set")
ALPHA = 0.05


def _stats(values: Sequence[float]) -> dict[str, Any]:
  values = np.asarray(values, np.float64)
  return {
    "mean": float(values.mean()),
    "std": float(values.std(ddof=1)) if len(values) > 1 else None,
  }


def _t_test(values: Sequence[float]) -> float | None:
  """Two-sided one-sample t-test of mean 0 (None below 2 values or with no spread)."""
  values = np.asarray(values, np.float64)
  if len(values) < 2:
    return None
  if np.all(values == values[0]):  # no spread: t is undefined unless every value is 0
    return 1.0 if values[0] == 0 else None
  return float(scipy_stats.ttest_1samp(values, 0.0).pvalue)


def _signed_rank(values: Sequence[float]) -> float:
  """Two-sided exact Wilcoxon signed-rank p of median 0 (zero differences dropped)."""
  values = np.asarray([v for v in values if v != 0.0], np.float64)
  if len(values) == 0:
    return 1.0
  return float(scipy_stats.wilcoxon(values, method="exact").pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
  """Holm's step-down correction of ``p_values`` (family-wise error), in their order.

  Examples:
    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
  """
  order = np.argsort(p_values, kind="stable")
  corrected, running = [0.0] * len(p_values), 0.0
  for rank, index in enumerate(order):
    running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
    corrected[index] = round(running, 12)
  return corrected


def _group_key(run: Mapping[str, Any]) -> tuple:
  return tuple((name, run[name]) for name in GROUP_FIELDS if run.get(name) is not None)


def _paired(
  rows: Sequence[Mapping[str, Any]], base: Mapping[int, Mapping[str, Any]], metric: str
) -> dict[str, Any] | None:
  pairs = [(row, base[row["seed"]]) for row in rows if row["seed"] in base]
  if not pairs:
    return None
  by_seed = {str(row["seed"]): row[metric] - other[metric] for row, other in pairs}
  values = list(by_seed.values())
  result = {
    **_stats(values),
    "n": len(values),
    "by_seed": by_seed,
    "seeds_up": sum(v > 0 for v in values),
    "seeds_down": sum(v < 0 for v in values),
    "p_seeds": _t_test(values),
  }
  images = [
    (row.get("per_image", {}).get(metric), o.get("per_image", {}).get(metric)) for row, o in pairs
  ]
  if all(mine and theirs for mine, theirs in images):
    names = sorted(set.intersection(*(set(mine) & set(theirs) for mine, theirs in images)))
    by_photo = {
      name: float(np.mean([mine[name] - theirs[name] for mine, theirs in images])) for name in names
    }
    result.update(
      by_photo=by_photo,
      photos_up=sum(v > 0 for v in by_photo.values()),
      photos_down=sum(v < 0 for v in by_photo.values()),
      p_photos=_signed_rank(list(by_photo.values())),
    )
  return result


def summarize(
  runs: Sequence[Mapping[str, Any]], metrics: Sequence[str], tested: Sequence[str] = ()
) -> list[dict[str, Any]]:
  """Per group: ``n``, the mean and sample std of each metric and, against ``none``, the
  paired differences (module docstring); ``tested`` metrics get Holm-corrected p-values.

  Examples:
    >>> runs = [{"setting": s, "seed": k, "psnr": p} for s, k, p in
    ...         [("none", 0, 30.0), ("none", 1, 31.0), ("moa", 0, 30.5), ("moa", 1, 31.0)]]
    >>> summary = summarize(runs, ["psnr"])
    >>> summary[1]["difference_vs_none"]["psnr"]["mean"]
    0.25
  """
  groups: dict[tuple, list[Mapping[str, Any]]] = {}
  for run in runs:
    groups.setdefault(_group_key(run), []).append(run)
  summary = []
  for key, rows in groups.items():
    entry = {**dict(key), "n": len(rows)}
    for metric in metrics:
      entry[metric] = _stats([row[metric] for row in rows])
    if entry["setting"] != BASELINE:
      base_key = tuple((name, BASELINE if name == "setting" else value) for name, value in key)
      base = {row["seed"]: row for row in groups.get(base_key, [])}
      paired = {metric: _paired(rows, base, metric) for metric in metrics}
      if any(paired.values()):
        entry["difference_vs_none"] = {m: d for m, d in paired.items() if d is not None}
    summary.append(entry)
  _correct(summary, tested)
  return summary


def _correct(summary: list[dict[str, Any]], tested: Sequence[str]) -> None:
  """Holm over every tested comparison's ``p_photos``; then each one's ``effect``."""
  family = [
    entry["difference_vs_none"][metric]
    for entry in summary
    for metric in tested
    if metric in entry.get("difference_vs_none", {})
    and "p_photos" in entry["difference_vs_none"][metric]
  ]
  for paired, corrected in zip(family, holm([p["p_photos"] for p in family])):
    paired["p_holm"], paired["comparisons"] = corrected, len(family)
    every_seed = paired["seeds_up"] == paired["n"] or paired["seeds_down"] == paired["n"]
    if every_seed and corrected < ALPHA:
      paired["effect"] = "+" if paired["mean"] > 0 else "-"
    else:
      paired["effect"] = "0"


TITLES = {"psnr": "PSNR (dB)", "ssim": "SSIM", "hr_input_psnr": "HR-input PSNR (dB)"}


def _title(metric: str) -> str:
  best = metric.startswith("best_")
  base = metric[len("best_") :] if best else metric
  if base.startswith("psnr_sigma"):
    text = f"PSNR σ={base[len('psnr_sigma') :]} (dB)"
  else:
    text = TITLES.get(base, base)
  return f"{text}, {'best' if best else 'final'}"


def _label(entry: Mapping[str, Any], name: str) -> list[str]:
  if "train_set" in entry:
    return [name, entry["train_set"]]
  return [name]


def format_table(report: Mapping[str, Any], metrics: Sequence[str] | None = None) -> str:
  """The report's summary as Markdown: one row per group (mean ± sample std over seeds),
  the baseline (bicubic, or the noisy input), the paired differences, then the tests."""
  summary = report["summary"]
  metrics = list(
    metrics
    or report.get("metrics")
    or [m for m in summary[0] if m not in (*GROUP_FIELDS, "n", "difference_vs_none")]
  )
  extra = ["train set"] if "train_set" in summary[0] else []
  lines = [
    "| " + " | ".join(["setting", *extra, "seeds"] + [_title(m) for m in metrics]) + " |",
    "|" + "---|" * (len(extra) + 2 + len(metrics)),
  ]

  def cell(stats: Mapping[str, Any], sign: bool, metric: str) -> str:
    digits = 4 if "ssim" in metric else 2
    text = f"{stats['mean']:+.{digits}f}" if sign else f"{stats['mean']:.{digits}f}"
    return text + ("" if stats["std"] is None else f" ± {stats['std']:.{digits}f}")

  for entry in summary:
    row = _label(entry, entry["setting"]) + [str(entry["n"])]
    lines.append("| " + " | ".join(row + [cell(entry[m], False, m) for m in metrics]) + " |")
  baseline = report.get("baseline") or {}
  if baseline:
    name = "noisy input" if any("sigma" in key for key in baseline) else "bicubic"
    values = [baseline.get(m[len("best_") :] if m.startswith("best_") else m) for m in metrics]
    text = [
      ("-" if v is None else f"{v:.{4 if 'ssim' in m else 2}f}") for v, m in zip(values, metrics)
    ]
    lines.append("| " + " | ".join([name, *["-"] * len(extra), "-", *text]) + " |")
  for entry in summary:
    paired = entry.get("difference_vs_none")
    if paired:
      row = _label(entry, f"{entry['setting']} - none") + [str(next(iter(paired.values()))["n"])]
      cells = [cell(paired[m], True, m) if m in paired else "-" for m in metrics]
      lines.append("| " + " | ".join(row + cells) + " |")
  return "\n".join(lines)


def format_tests(report: Mapping[str, Any]) -> str:
  """The tested comparisons: seeds and photos that move each way, p-values, the effect."""
  lines = [
    "| comparison | metric | mean | seeds +/- | p seeds (t) | photos +/- | p photos (Wilcoxon) "
    "| p Holm | effect |",
    "|---|---|---|---|---|---|---|---|---|",
  ]
  for entry in report["summary"]:
    for metric, paired in entry.get("difference_vs_none", {}).items():
      if "p_holm" not in paired:
        continue
      name = " ".join(_label(entry, f"{entry['setting']} - none"))
      p_seeds = "-" if paired["p_seeds"] is None else f"{paired['p_seeds']:.3f}"
      lines.append(
        f"| {name} | {_title(metric)} | {paired['mean']:+.3f} | {paired['seeds_up']}/"
        f"{paired['seeds_down']} | {p_seeds} | {paired['photos_up']}/{paired['photos_down']} | "
        f"{paired['p_photos']:.4f} | {paired['p_holm']:.4f} | {paired['effect']} |"
      )
  return "\n".join(lines)
