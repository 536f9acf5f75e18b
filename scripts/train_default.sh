#!/usr/bin/env bash
# Retrain the shipped default model (molvae/pretrained/moses-selfies) from scratch with the same config.
# Usage: bash scripts/train_default.sh [OUT_DIR]    (resumes if OUT_DIR already holds a checkpoint)
# The interim default was trained on a 150,000-molecule random subset of MOSES train on the 2-core CPU
# machine (no GPU was lent to that session); see molvae/pretrained/moses-selfies/MODEL_CARD.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/default}
N=${MOLVAE_DEFAULT_N:-150000}
SUBSET=runs/moses_train_${N}.csv
mkdir -p runs
.venv/bin/molvae data moses
if [ ! -f "$SUBSET" ]; then
  .venv/bin/python - "$N" "$SUBSET" <<'PY'
import sys
import pandas as pd
from molvae.moses_data import fetch_moses
n, out = int(sys.argv[1]), sys.argv[2]
pd.read_csv(fetch_moses()["train"]).sample(n, random_state=0).to_csv(out, index=False)
PY
fi
if [ -f "$OUT/trainer_state.json" ]; then
  exec .venv/bin/molvae train --resume "$OUT" --out "$OUT"
fi
exec .venv/bin/molvae train --data "$SUBSET" --repr selfies --epochs 5 --batch-size 256 --seed 0 \
  --out "$OUT" --config scripts/default_config.json
