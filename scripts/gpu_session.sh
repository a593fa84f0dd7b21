#!/usr/bin/env bash
# The next GPU session's one command, at most 9 minutes: (1) benchmarks/gpu.sh (bounded to
# 4.3 min) and benchmarks/output_tolerance.py --gpu (at most 1 min), (2) every reference of
# scripts/train_references.py at once, its deadline set so that everything ends by 9 min, (3)
# the results packed into $OUT: the benchmark's md and json, summary.md, session.log and at most
# 4 archives of runs (each under 16 MiB; bench/ in them holds the other benchmark results).
# Needs runs/refdata and .whl (`bash scripts/prepare_gpu_session.sh`, then carry both).
#   OUT=/some/folder bash scripts/gpu_session.sh [--cpu-dry-run]
# --cpu-dry-run: the same steps on a CPU in a few minutes (gpu.sh's dry run, tiny training runs
# on the embedded photos); nothing is written into restorelab/weights.
# Run it with PYTHON from scripts/gpu_image_env.sh to meet the GPU image's torch and packages.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder whose files come back}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
start=$(date +%s)
total=540  # seconds: the whole session, packing included (the call: timeout_s 570)
runs=$(mktemp -d)/references
mkdir -p "$OUT"
if [ "${1:-}" = "--cpu-dry-run" ]; then
    bench=(--cpu-dry-run --budget 20) bench_limit=120 train=(--dry-run --data embedded) total=330
    check=(--pages 1 --size 64)
else
    [ -d runs/refdata ] || { echo "runs/refdata is missing: carry it (train_references.py data)"; exit 2; }
    bench=(--budget 130) bench_limit=260 train=(--data runs/refdata) check=()
fi
timeout "$bench_limit" bash benchmarks/gpu.sh "$OUT/bench" "${bench[@]}" >"$OUT/session.log" 2>&1
echo "benchmarks: exit $? after $(($(date +%s) - start)) s" | tee -a "$OUT/session.log"
# at most 8 files come back: gpu_check.{md,json} stay, the benchmark's other files go in the archive
mkdir -p "$runs/bench" && find "$OUT/bench" -mindepth 1 -maxdepth 1 ! -name 'gpu_check*' -exec mv {} "$runs/bench/" \;
# the competition's output check: a team's GPU restoration against the grader's CPU re-run
timeout 60 "$python" benchmarks/output_tolerance.py --gpu --out "$runs/bench" "${check[@]}" \
    >>"$OUT/session.log" 2>&1
echo "output check: exit $? after $(($(date +%s) - start)) s" | tee -a "$OUT/session.log"
left=$((total - ($(date +%s) - start) - 30 - 40))  # 30 s: the kill grace; 40 s: summary and pack
minutes=$(awk "BEGIN { print ($left > 60 ? $left : 60) / 60 }")
echo "training for $minutes min into $runs"
"$python" scripts/train_references.py train "${train[@]}" --out "$runs" \
    --minutes "$minutes" 2>&1 | tee -a "$OUT/session.log"
"$python" scripts/train_references.py summary --runs "$runs" | tee "$OUT/summary.md"
parts=$((8 - $(find "$OUT" -type f | wc -l)))
"$python" scripts/train_references.py pack --runs "$runs" --to "$OUT/references.tar.gz" --parts "$parts"
echo "done after $(($(date +%s) - start)) s; files back: $(find "$OUT" -type f | wc -l)"
ls -la "$OUT" "$OUT/bench" 2>/dev/null
