"""The paper's findings at CPU scale: the studies that ``experiments/reproduce.py`` runs.

* ``definitions``: the four studies (and the retired one), their data, annealed budgets,
  settings and grids of runs (``Cell``).
* ``summary``: per-setting statistics, differences paired over seeds and over test photos,
  their tests with Holm's correction, the Markdown tables.
* ``measure``: a run's final and best validated step on the test photos, and the machine.
* ``runs``: one run trained, measured and recorded (or read back), and shaped for the report.
* ``regularization``: that study's registered premise and verdict.
* ``plots``: one matplotlib figure per report (needs matplotlib).

The results, their commands and their verdicts are in docs/reproducing.md.
"""

from cutblur_jax.studies.definitions import (
  ALIASES,
  AUGMENT_FIELDS,
  BASE_FIELDS,
  BASELINE,
  SETTINGS,
  RETIRED,
  STUDIES,
  Cell,
  Study,
  cells,
  expected_seconds,
  schedule,
)
from cutblur_jax.studies.summary import format_table, format_tests, holm, summarize

__all__ = [
  "ALIASES",
  "AUGMENT_FIELDS",
  "BASE_FIELDS",
  "BASELINE",
  "Cell",
  "RETIRED",
  "SETTINGS",
  "STUDIES",
  "Study",
  "cells",
  "expected_seconds",
  "format_table",
  "format_tests",
  "holm",
  "schedule",
  "summarize",
]
