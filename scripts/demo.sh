#!/usr/bin/env bash
# Set everything up, then run the main job: SRCNN x2 on the embedded photos (CPU, about 2 min).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/restorelab demo --out "${1:-runs/demo}"
