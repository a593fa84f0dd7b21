#!/usr/bin/env bash
# Set everything up, then run every check CI runs. Each notebook is executed once:
#   lint                ruff on the package, tests, benchmarks and the site's Sphinx extension
#   actionlint          the GitHub Actions workflow that tests and publishes the book
#   labs check          labs/ is exactly what solutions/ generates
#   unit tests          the package's tests, in parallel (pytest-xdist)
#   labs                labs/ run with papermill: only exercise cells raise, the checks report
#                       the unfinished exercises
#   solutions           solutions/ run with nbval: their check cells print what they stored
#   book execution      book/ executed into Jupyter Book's cache, one chapter per core
#                       (scripts/execute_book.py)
#   book build          the strict build takes those outputs; a chapter that raised there (its
#                       QUICK numbers no longer matching restorelab/comparison.csv, say) is
#                       executed by the build again and fails it
#   browser             the built site in headless Chromium: no JavaScript error, tables are
#                       tables, every image loads; screenshots in _build/screenshots/
# The wall and CPU time of each stage are printed at the end, also when a stage fails.
set -euo pipefail
cd "$(dirname "$0")/.."

TIMES=()
TIMES_FILE=$(mktemp)
children_cpu() {  # CPU=user + system seconds of the finished child processes so far
    times >"$TIMES_FILE"  # in this shell: a $(...) subshell would count its own children
    CPU=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/);
                         printf "%d", u[1] * 60 + u[2] + s[1] * 60 + s[2] + 0.5 }' "$TIMES_FILE")
}

report_times() {
    local rc=$?
    children_cpu
    echo
    echo "== stage times: wall and CPU seconds (the CPU of all its processes; 2 cores: 2 s/s)"
    printf '%s\n' "${TIMES[@]}"
    printf '%-18s %5ds %6ss\n' "total" "$SECONDS" "$CPU"
    rm -f "$TIMES_FILE"
    return "$rc"
}
trap report_times EXIT

stage() {  # stage NAME COMMAND...: run it, record its times and whether it passed
    local name=$1 start=$SECONDS cpu_before rc=0
    shift
    children_cpu
    cpu_before=$CPU
    echo "== $name: $*"
    "$@" || rc=$?
    children_cpu
    TIMES+=("$(printf '%-18s %5ds %6ss  %s' "$name" $((SECONDS - start)) $((CPU - cpu_before)) \
        "$([ "$rc" = 0 ] && echo ok || echo "FAILED (exit $rc)")")")
    return "$rc"
}

stage setup bash scripts/setup.sh
. .venv/bin/activate
export PYDEVD_DISABLE_FILE_VALIDATION=1
stage lint ruff check restorelab tests benchmarks _ext
stage actionlint actionlint .github/workflows/book.yml
stage "labs check" restorelab labs check
# Agg for the unit tests only: in notebook kernels it would replace the inline backend and the
# book would be built without its figures.
stage "unit tests" env MPLBACKEND=Agg pytest -q -n 2 --dist loadgroup -m "not notebooks and not site" \
    --durations=15
# From here on two notebook kernels run at once, each with torch's default of a thread per core:
# on 2 cores the four threads' spinning made chapter 1 take 208 s instead of 79 s. One core each.
export OMP_NUM_THREADS=$(( $(nproc) / 2 > 1 ? $(nproc) / 2 : 1 ))
stage labs pytest -q -n 2 -m notebooks tests/test_notebooks.py
# nbval runs a notebook's cells in one kernel: --dist loadfile keeps each notebook on one worker
stage solutions pytest -q -n 2 --dist loadfile --nbval-lax -p no:cacheprovider solutions
rm -rf _build
stage "book execution" python scripts/execute_book.py
stage "book build" jupyter-book build . -W -n --keep-going
stage browser pytest -q -m site -rs tests/test_site.py
