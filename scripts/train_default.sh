#!/usr/bin/env bash
# Retrain the shipped MOSES model from scratch with the same config: the full MOSES train set (1,584,663
# molecules), 2 epochs, batch 512, seed 0. REPR smiles -> molvae/pretrained/moses-smiles (the default);
# REPR selfies trains the SELFIES model that shipped as moses-selfies until issue 25 (no longer shipped:
# docs/training.md, "SELFIES: a training option, not a shipped model").
# Usage: bash scripts/train_default.sh [OUT_DIR] [REPR]    (defaults: runs/default smiles; resumes if OUT_DIR
#   already holds a trainer state; --n-jobs is a setting of the machine, not of the run, so the resume line
#   passes it again)
# On the 2-core CPU machine (no GPU lent) it took the time written in the model cards; on a GPU add
# --device cuda through MOLVAE_TRAIN_ARGS (bf16 autocast is automatic there).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/default}
REPR=${2:-smiles}
.venv/bin/molvae data moses
if [ -f "$OUT/trainer_state.json" ]; then
  exec .venv/bin/molvae train --resume "$OUT" --out "$OUT" --n-jobs 2 ${MOLVAE_TRAIN_ARGS:-}
fi
exec .venv/bin/molvae train --data moses --repr "$REPR" --epochs 2 --batch-size 512 --seed 0 --n-jobs 2 \
  --out "$OUT" --config configs/default.json ${MOLVAE_TRAIN_ARGS:-}
