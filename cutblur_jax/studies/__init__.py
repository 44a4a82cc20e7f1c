"""The paper's findings at CPU scale: the studies that ``experiments/reproduce.py`` runs.

* ``definitions``: the four studies, their settings and their grids of runs (``Cell``).
* ``summary``: per-setting statistics over seeds, paired differences, the Markdown table.
* ``plots``: one matplotlib figure per report (needs matplotlib).

The results, their commands and their verdicts are in docs/reproducing.md.
"""

from cutblur_jax.studies.definitions import (
  AUGMENT_FIELDS,
  BASE_FIELDS,
  BASELINE,
  SETTINGS,
  STUDIES,
  Cell,
  Study,
  cells,
  expected_seconds,
)
from cutblur_jax.studies.summary import format_table, summarize

__all__ = [
  "AUGMENT_FIELDS",
  "BASE_FIELDS",
  "BASELINE",
  "Cell",
  "SETTINGS",
  "STUDIES",
  "Study",
  "cells",
  "expected_seconds",
  "format_table",
  "summarize",
]
