#!/usr/bin/env bash
# The first GPU check (smoke tests of every CUDA path, Trainer throughput per model, a 1-GPU
# torchrun run), about 4 minutes on one GPU. Needs only python3 with torch, torchvision, numpy,
# scikit-image, tqdm and tensorboard: restorelab runs from this checkout.
#   bash benchmarks/gpu.sh [OUT_DIR] [--cpu-dry-run] [--budget SECONDS]
# Results: OUT_DIR/gpu_check.{json,md} (default OUT_DIR: benchmarks/results).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-benchmarks/results}"
shift || true
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec python3 benchmarks/gpu_check.py --out "$out" "$@"
