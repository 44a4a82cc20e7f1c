#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this), in two fresh environments:
#
#   1. .venv: the default install plus the test extras (`pip install -e ".[test,torch]"`),
#      so today's newest orbax-checkpoint, the one a user gets: every test but the ONNX ones.
#   2. .venv-export: the same plus the export extra, whose jax2onnx pins orbax-checkpoint
#      below 0.11.37: the ONNX export tests, and the checkpoint-format tests again on that
#      older orbax.
#
# Before the tests, `ruff format --check` and `ruff check` (pyproject.toml's [tool.ruff]).
#
# Usage (from anywhere): bash tests/run.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

install() {  # install VENV EXTRAS
  python3 -m venv "$1"
  "$1/bin/pip" install -q --upgrade pip
  "$1/bin/pip" install -q -e ".[$2]" torch==2.13.0
  "$1/bin/python" -c "import jax, orbax.checkpoint as o; print(f'$1: jax {jax.__version__}, orbax-checkpoint {o.__version__}')"
}

install .venv test,torch
# The formatter and linter first (ruff, configured in pyproject.toml): unformatted code or a
# lint error fails the run. `ruff format . && ruff check --fix .` mends most of it.
.venv/bin/ruff format --check .
.venv/bin/ruff check .
# test_export.py needs the export extra from its first line: not even collected here.
.venv/bin/pytest -n 2 --durations=15 -m "not onnx" --ignore=tests/test_export.py "$@" tests

install .venv-export test,torch,export
.venv-export/bin/pytest -n 2 --durations=5 -m "onnx or checkpoint_format" "$@" tests
