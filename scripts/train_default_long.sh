#!/usr/bin/env bash
# Continue training the shipped default (moses-smiles) on full MOSES in slices, across sessions and machines:
# the first call warm-starts from the shipped weights (--init) with the settings of configs/default_long.json
# (6 epochs, lr 5e-4 cosine, KL weight 0.5 constant, the shipped model's 99/1 split and seed, a mid-epoch
# checkpoint every 10 minutes); every later call resumes the run where it stopped, to the same weights as
# one uninterrupted run. Ship a checkpoint with `python scripts/ship_default.py OUT_DIR`.
# Usage: nohup bash scripts/train_default_long.sh [OUT_DIR] > OUT_DIR.log 2>&1 &    (default runs/default_long)
# Extra options (e.g. --device cuda on a GPU, --stop-after N, --init runs/long1 to start from the weights of
# an earlier run instead of the shipped ones) through MOLVAE_TRAIN_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/default_long}
.venv/bin/molvae data moses
if [ -f "$OUT/trainer_state.json" ]; then
  exec .venv/bin/molvae train --resume "$OUT" --out "$OUT" --n-jobs 2 --checkpoint-every 10m ${MOLVAE_TRAIN_ARGS:-}
fi
exec .venv/bin/molvae train --config configs/default_long.json --out "$OUT" ${MOLVAE_TRAIN_ARGS:-}
