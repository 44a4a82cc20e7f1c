"""One figure per study report (matplotlib, written as a PNG).

* ``hr_input`` and ``ablation``: each setting's paired difference against ``none``
  (mean and sample std over seeds) at the best step, and on the HR-input test
  (``hr_input``) or at the final step (``ablation``).
* ``regularization``: every run's validation curve, and MoA's paired gain on each
  training set.
* ``denoise``: each setting's paired difference against ``none`` at every test sigma.
"""

from __future__ import annotations

import pathlib
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position


def _bar_panel(axis, entries, metric: str, title: str) -> None:
  names = [entry["setting"] for entry in entries]
  stats = [entry["difference_vs_none"][metric] for entry in entries]
  means = [s["mean"] for s in stats]
  errors = [s["std"] or 0.0 for s in stats]
  colors = ["tab:green" if m > 0 else "tab:red" for m in means]
  axis.barh(range(len(names)), means, xerr=errors, color=colors, capsize=3)
  axis.set_yticks(range(len(names)), names)
  axis.axvline(0.0, color="black", linewidth=0.8)
  axis.set_xlabel(f"{title} minus none (dB)")
  axis.grid(axis="x", alpha=0.3)


def plot_report(report: Mapping[str, Any], path: str | pathlib.Path) -> pathlib.Path:
  """Draws the study's figure (module docstring) to ``path``."""
  study = report["study"]
  paired = [entry for entry in report["summary"] if "difference_vs_none" in entry]
  if not paired:
    raise ValueError(f"The {study} report has no setting paired with 'none' to plot.")
  steps = report["num_train_steps"]
  seeds = len(report["seeds"])
  if study in ("hr_input", "ablation"):
    figure, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(paired) + 1.8), sharey=True)
    _bar_panel(axes[0], paired, "best_psnr", "PSNR at the best step")
    if "hr_input_psnr" in report["metrics"]:
      _bar_panel(axes[1], paired, "hr_input_psnr", "HR-input PSNR")
    else:
      _bar_panel(axes[1], paired, "psnr", "PSNR at the final step")
    axes[0].invert_yaxis()  # the settings top down; the axes share it, so only once
  elif study == "regularization":
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for run in report["runs"]:
      curve = run.get("validation") or []
      style = "-" if run["train_set"] == "tiny" else ":"
      color = "tab:blue" if run["setting"] == "none" else "tab:orange"
      axes[0].plot(
        [step for step, _ in curve],
        [psnr for _, psnr in curve],
        style,
        color=color,
        alpha=0.7,
        label=f"{run['setting']}, {run['train_set']}"
        if run["seed"] == report["seeds"][0]
        else None,
      )
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("validation PSNR (dB)")
    axes[0].legend()
    axes[0].grid(alpha=0.3)
    labelled = [
      {**entry, "setting": f"{entry['setting']} ({entry['train_set']})"} for entry in paired
    ]
    _bar_panel(axes[1], labelled, "best_psnr", "test PSNR at the best step")
    axes[1].invert_yaxis()
  elif study == "denoise":
    figure, axis = plt.subplots(figsize=(6, 4))
    sigmas = sorted(int(m[len("best_psnr_sigma") :]) for m in report["tested"])
    for entry in paired:
      stats = [entry["difference_vs_none"][f"best_psnr_sigma{s}"] for s in sigmas]
      axis.errorbar(
        sigmas,
        [s["mean"] for s in stats],
        yerr=[s["std"] or 0.0 for s in stats],
        marker="o",
        capsize=3,
        label=entry["setting"],
      )
    axis.axhline(0.0, color="black", linewidth=0.8)
    axis.axvline(
      float(report["config"]["sigma"]), color="gray", linestyle=":", label="training sigma"
    )
    axis.set_xlabel("test noise sigma")
    axis.set_ylabel("minus none, PSNR at the best step (dB)")
    axis.legend()
    axis.grid(alpha=0.3)
  else:
    raise ValueError(f"No plot for study {study!r}.")
  figure.suptitle(f"{study}: {steps} steps per run, mean ± std over {seeds} seeds, paired")
  figure.tight_layout()
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  figure.savefig(path, dpi=100)
  plt.close(figure)
  return path
