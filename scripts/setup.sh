#!/usr/bin/env bash
# Create .venv with the exact versions of requirements.txt and restorelab installed editable,
# and install Debian's chromium (the site's browser test) and bubblewrap (the competition's
# grading sandbox) where apt is available.
# Safe to run again: an existing .venv is reused and only what is missing is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -r requirements.txt
python -m pip install --quiet --no-deps -e .
python -m ipykernel install --sys-prefix --name python3 >/dev/null

# The browser test (tests/test_site.py) opens the built site in headless Chromium. Optional: the
# test skips with the reason without it, so setup never fails because of it.
if command -v chromium >/dev/null; then
    :
elif command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian's chromium for the browser test (apt-get)"
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
        ; } >/dev/null 2>&1 || echo "setup: apt-get could not install chromium; the browser test will skip"
else
    echo "setup: no chromium and no apt-get as root; the browser test will skip (install chromium to run it)"
fi

# The competition's grading sandbox (restorelab.competition.sandbox) uses bubblewrap. Optional:
# without it grading falls back to resource limits with a warning, and its tests skip the
# sandbox cases with the reason, so setup never fails because of it.
if command -v bwrap >/dev/null; then
    :
elif command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian's bubblewrap for the grading sandbox (apt-get)"
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bubblewrap \
        ; } >/dev/null 2>&1 || echo "setup: apt-get could not install bubblewrap; grading will use the weaker fallback"
else
    echo "setup: no bubblewrap and no apt-get as root; grading will use the weaker fallback (install bubblewrap)"
fi
