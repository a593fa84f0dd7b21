#!/usr/bin/env bash
# Set everything up, then run every check CI runs: lint, unit tests, labs check,
# notebooks (nbval on book/ and solutions/, papermill on labs/) and the strict book build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export PYDEVD_DISABLE_FILE_VALIDATION=1
ruff check restorelab tests benchmarks
restorelab labs check
# Agg for the unit tests only: in notebook kernels it would replace the inline backend and the
# book would be built without its figures.
MPLBACKEND=Agg pytest -q -m "not notebooks" --durations=15
pytest -q -m notebooks tests/test_notebooks.py
pytest -q --nbval-lax -p no:cacheprovider book solutions
rm -rf _build
jupyter-book build . -W -n --keep-going
