#!/usr/bin/env bash
# Set up the dev environment and run the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all
# The browser test (tests/test_web_browser.py) drives Debian's chromium with Playwright (from the dev extra):
# install chromium where apt-get can; elsewhere that test skips, saying why.
if [ -z "${MOLVAE_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
    echo "test: installing chromium (apt-get) for the browser test"
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; } >/dev/null 2>&1 \
      || echo "test: could not install chromium; tests/test_web_browser.py will be skipped"
  else
    echo "test: no chromium and no apt-get to install it; tests/test_web_browser.py will be skipped"
  fi
fi
# Two workers (pytest-xdist) use CI's two cores; tests/conftest.py gives each one thread and keeps the tests of an
# expensive session fixture on one worker. MOLVAE_TEST_WORKERS=0 runs the suite in this process.
exec .venv/bin/python -m pytest -p no:cacheprovider -n "${MOLVAE_TEST_WORKERS:-2}" --dist loadgroup "$@"
