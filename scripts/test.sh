#!/usr/bin/env bash
# Set everything up, then run every check CI runs. Each notebook is executed once:
#   lint                ruff on the package, tests, benchmarks and the site's Sphinx extension
#   labs check          labs/ is exactly what solutions/ generates
#   unit tests          the package's tests, in parallel (pytest-xdist)
#   labs + solutions    labs/ run with papermill (only exercise cells raise); solutions/ run with
#                       nbval (their check cells print what they stored)
#   book build          the strict build executes book/: a cell that raises (a chapter's QUICK
#                       numbers no longer matching restorelab/comparison.csv) fails it
#   browser             the built site in headless Chromium: no JavaScript error, tables are
#                       tables, every image loads; screenshots in _build/screenshots/
# The wall time of each stage is printed at the end, also when a stage fails.
set -euo pipefail
cd "$(dirname "$0")/.."

TIMES=()
report_times() {
    local rc=$?
    echo
    echo "== stage times (wall, seconds) =="
    printf '%s\n' "${TIMES[@]}"
    printf '%-18s %5ds\n' "total" "$SECONDS"
    return "$rc"
}
trap report_times EXIT

stage() {  # stage NAME COMMAND...: run it, record its wall time and whether it passed
    local name=$1 start=$SECONDS rc=0
    shift
    echo "== $name: $*"
    "$@" || rc=$?
    TIMES+=("$(printf '%-18s %5ds  %s' "$name" $((SECONDS - start)) \
        "$([ "$rc" = 0 ] && echo ok || echo "FAILED (exit $rc)")")")
    return "$rc"
}

stage setup bash scripts/setup.sh
. .venv/bin/activate
export PYDEVD_DISABLE_FILE_VALIDATION=1
stage lint ruff check restorelab tests benchmarks _ext
stage "labs check" restorelab labs check
# Agg for the unit tests only: in notebook kernels it would replace the inline backend and the
# book would be built without its figures.
stage "unit tests" env MPLBACKEND=Agg pytest -q -n 2 -m "not notebooks and not site" --durations=15
stage "labs + solutions" pytest -q -n 2 --dist loadfile --nbval-lax -p no:cacheprovider \
    tests/test_notebooks.py solutions
rm -rf _build
stage "book build" jupyter-book build . -W -n --keep-going
stage browser pytest -q -m site -rs tests/test_site.py
