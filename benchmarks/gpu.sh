#!/usr/bin/env bash
# Issue 18's GPU check: smoke tests of every CUDA path, Trainer speed per model and setting
# against fp32 eager (benchmarks/gpu_check.py), then BasicSR's training loop beside the
# Trainer's (benchmarks/basicsr_peer.py); about 4 minutes on one H100. Needs only python3 with
# torch, torchvision, numpy, scikit-image, OpenCV, tqdm and tensorboard: restorelab runs from
# this checkout. The peer needs basicsr 1.4.2: installed from the wheel folder .whl/ when that
# holds one (the GPU machine is offline), else it must be importable already, else it is skipped.
#   bash benchmarks/gpu.sh [OUT_DIR] [--cpu-dry-run] [--budget SECONDS]
# --budget: seconds for the throughput part (default 150 on CUDA). PYTHON: the interpreter
# (default python3). Results: OUT_DIR/gpu_check.{json,md} and OUT_DIR/basicsr_peer.{json,md}
# (gpu_check_dry_run.* and basicsr_peer_cpu.* on the CPU); default OUT_DIR: benchmarks/results.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-benchmarks/results}"
shift || true
python="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
started=$SECONDS
status=0
"$python" benchmarks/gpu_check.py --out "$out" "$@" || status=$?

peer=(--out "$out")
for arg in "$@"; do
  if [[ $arg == --cpu-dry-run ]]; then peer+=(--cpu-only); fi
done
wheels=(.whl/basicsr-*.whl)
if [[ -e ${wheels[0]} ]]; then
  site=$(mktemp -d)
  "$python" -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl
  export PYTHONPATH="$PYTHONPATH:$site"
  echo "peer: basicsr from ${wheels[0]}"
else
  echo "peer: no basicsr wheel in .whl/ (see benchmarks/basicsr_peer.py); using an installed basicsr if any"
fi
"$python" benchmarks/basicsr_peer.py "${peer[@]}" || status=$?
echo "gpu.sh: $((SECONDS - started)) s in all; results in $out"
exit "$status"
