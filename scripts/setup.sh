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

# optional_apt COMMAND PACKAGE WHAT_SKIPS_WITHOUT_IT: install a Debian package that a test or
# tool uses when it is missing and apt-get runs as root. Optional: setup never fails for it.
optional_apt() {
    if command -v "$1" >/dev/null; then
        return
    elif command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "setup: installing Debian's $2 (apt-get)"
        { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" \
            ; } >/dev/null 2>&1 || echo "setup: apt-get could not install $2; $3"
    else
        echo "setup: no $2 and no apt-get as root; $3 (install $2 to change that)"
    fi
}
# The browser test (tests/test_site.py) opens the built site in headless Chromium.
optional_apt chromium chromium "the browser test will skip"
# The competition's grading sandbox (restorelab.competition.sandbox) uses bubblewrap; without it
# grading falls back to resource limits with a warning and its tests skip the sandbox cases.
optional_apt bwrap bubblewrap "grading will use the weaker fallback"
