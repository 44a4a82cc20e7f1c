r"""The HR-input comparison: ``experiments/reproduce.py --study hr_input`` under its old name.

Kept so that earlier commands still run; it passes every flag on to ``reproduce.py``
with this script's old defaults: settings ``none moa`` and the default run's 1500 steps.

Usage:

  python experiments/reproduce_hr_input.py --seeds 0 1 2 --num_train_steps 3000 --decay 2 \
      --workdir workdirs/hr_input --output workdirs/hr_input/report.json
  # the same as
  python experiments/reproduce.py --study hr_input --settings none moa --seeds 0 1 2 \
      --num_train_steps 3000 --decay 2 --workdir workdirs/hr_input \
      --output workdirs/hr_input/report.json
"""

from __future__ import annotations

import os
import pathlib
import sys
from typing import Sequence

OLD_DEFAULTS = {"--settings": ["none", "moa"], "--num_train_steps": ["1500"]}


def translate(argv: Sequence[str]) -> list[str]:
  """This script's flags as ``reproduce.py`` flags.

  Examples:
    >>> translate(["--seeds", "0"])
    ['--study', 'hr_input', '--seeds', '0', '--settings', 'none', 'moa', '--num_train_steps', '1500']
  """
  argv = [arg for arg in argv if arg != "--no-progress_bar"]
  for arg in argv:
    if arg == "--config" or arg.startswith("--config="):
      raise SystemExit(
        "error: --config is no longer taken: the runs start from the default "
        "run's network; change a field with --set FIELD=VALUE."
      )
  given = {arg.split("=", 1)[0] for arg in argv if arg.startswith("--")}
  extra = [
    item for flag, values in OLD_DEFAULTS.items() if flag not in given for item in (flag, *values)
  ]
  return ["--study", "hr_input", *argv, *extra]


def main(argv: Sequence[str] | None = None) -> None:
  """Replaces this process with ``reproduce.py`` and the translated flags."""
  script = pathlib.Path(__file__).resolve().with_name("reproduce.py")
  args = translate(sys.argv[1:] if argv is None else argv)
  os.execv(sys.executable, [sys.executable, str(script), *args])


if __name__ == "__main__":
  main()
