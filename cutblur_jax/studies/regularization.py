"""The ``regularization`` study's premise and verdict, as docs/reproducing.md registered them
before the study ran.

* **Premise** (``premise``): without augmentation, on the tiny set, the network overfits:
  on every seed, the final validation PSNR is at least ``DROP_DB`` below the run's peak.
* **Claim** (``verdict``): MoA's gain over none at the best validated step is positive on
  the tiny set on every seed and on most test photos, and larger than on the medium set.

The verdict is ``"outside the paper's regime"`` when the premise does not hold (no network
here overfits, so the claim has nothing to act on), ``"agrees"`` when every part of the claim
holds, ``"disagrees"`` when MoA loses on the tiny set on every seed and on most test photos,
and ``"inconclusive"`` otherwise.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

DROP_DB = 0.10  # "clearly below its peak"
METRIC = "best_psnr"  # the claim is about the best validated step, as solver.py keeps it


def premise(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
  """Whether every ``none`` run on the tiny set ends ``DROP_DB`` below its validation peak.

  Examples:
    >>> run = {"setting": "none", "train_set": "tiny", "seed": 0,
    ...        "validation": [[100, 30.0], [200, 30.5], [300, 30.2]]}
    >>> premise([run])["held"]
    True
  """
  rows = []
  for run in runs:
    if run.get("setting") != "none" or run.get("train_set") != "tiny" or not run.get("validation"):
      continue
    curve = run["validation"]
    peak_step, peak = max(curve, key=lambda point: point[1])
    final_step, final = curve[-1]
    rows.append(
      {
        "seed": run["seed"],
        "peak_psnr": peak,
        "peak_step": peak_step,
        "final_psnr": final,
        "final_step": final_step,
        "drop_db": peak - final,
      }
    )
  held = bool(rows) and all(row["drop_db"] >= DROP_DB for row in rows)
  return {"held": held, "threshold_db": DROP_DB, "metric": "validation PSNR", "runs": rows}


def _gain(summary: Sequence[Mapping[str, Any]], train_set: str) -> Mapping[str, Any] | None:
  for entry in summary:
    if entry.get("setting") == "moa" and entry.get("train_set") == train_set:
      return entry.get("difference_vs_none", {}).get(METRIC)
  return None


def verdict(summary: Sequence[Mapping[str, Any]], premise_result: Mapping[str, Any]) -> str:
  """The registered verdict (module docstring) from the summary and the premise."""
  if not premise_result["held"]:
    return "outside the paper's regime"
  tiny, medium = _gain(summary, "tiny"), _gain(summary, "medium")
  if tiny is None or "photos_up" not in tiny:
    return "inconclusive"
  photos = tiny["photos_up"] + tiny["photos_down"]
  larger = medium is not None and tiny["mean"] > medium["mean"]
  if tiny["seeds_up"] == tiny["n"] and 2 * tiny["photos_up"] > photos and larger:
    return "agrees"
  if tiny["seeds_down"] == tiny["n"] and 2 * tiny["photos_down"] > photos:
    return "disagrees"
  return "inconclusive"
