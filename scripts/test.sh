#!/usr/bin/env bash
# Set up the dev environment and run the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
