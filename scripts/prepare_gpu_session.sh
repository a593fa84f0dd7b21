#!/usr/bin/env bash
# Build here what the GPU call carries (the GPU machine is offline): runs/refdata (the reference
# runs' training images, from ../shared/datasets and the embedded photos) and .whl/ (BasicSR's
# wheel for the peer benchmark; PyPI has only its source). Both are git-ignored.
#   bash scripts/prepare_gpu_session.sh
# Then, on the GPU: OUT=... bash scripts/gpu_session.sh, carrying runs/refdata and .whl
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
[ -d runs/refdata ] || "$python" scripts/train_references.py data --out runs/refdata
mkdir -p .whl
ls .whl/basicsr-1.4.2-*.whl >/dev/null 2>&1 || "$python" -m pip wheel -q --no-deps basicsr==1.4.2 -w .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
du -sh runs/refdata .whl
