#!/usr/bin/env bash
# Create .venv with the exact versions of requirements.txt and restorelab installed editable.
# Safe to run again: an existing .venv is reused and only what is missing is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -r requirements.txt
python -m pip install --quiet --no-deps -e .
python -m ipykernel install --sys-prefix --name python3 >/dev/null
