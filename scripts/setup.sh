#!/usr/bin/env bash
# Create .venv and install molvae into it. Usage: bash scripts/setup.sh [dev|notebooks|all|web]
# When no torch is present and no GPU is visible, the local CPU build of torch is installed first,
# so that the plain `torch>=2.3` requirement does not pull several GB of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
# pip's and the build backend's own output (setuptools' "Editable installation" banner among it) goes to a log
# that is shown only when the install fails: setup prints its own lines, and real errors in full.
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
pip_quiet() {
  if ! "$VPY" -m pip install --quiet "$@" >"$LOG" 2>&1; then
    cat "$LOG" >&2
    echo "setup: pip install $* failed (pip's output above)" >&2
    return 1
  fi
  grep "^ERROR" "$LOG" >&2 || true  # an error pip reports without failing (a dependency conflict) stays visible
}
"$VPY" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: GPU visible, installing torch with CUDA"
    pip_quiet "torch>=2.3"
  else
    echo "setup: no GPU visible, installing the CPU build of torch"
    "$VPY" -m pip install --quiet "torch==2.13.0" >/dev/null 2>&1 || pip_quiet "torch>=2.3"
  fi
fi
case "${1:-}" in
  dev) extras="[dev]" ;;
  notebooks) extras="[notebooks]" ;;
  all) extras="[dev,notebooks]" ;;
  web) extras="[web]" ;;
  *) extras="" ;;
esac
pip_quiet -e ".${extras}"
"$VPY" -c "import molvae" && echo "setup: molvae installed in .venv"
