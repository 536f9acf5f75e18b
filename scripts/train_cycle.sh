#!/usr/bin/env bash
# One training cycle of the default model (docs/training.md, "Training cycles"): a full learning-rate schedule
# (200 warm-up steps, cosine to 5%) sized to a wall-clock budget of training steps on this machine, from the end
# weights of the previous cycle (committed under cycles/), or from the shipped moses-smiles for cycle 1.
# Settings: scripts/cycle_config.json (time_budget 90m); cycle N uses seed N, so each cycle sees its own batch
# order, and split_seed 0, the validation split of the shipped model (cycle 1 ran before split_seed existed: seed 1).
# Usage: nohup bash scripts/train_cycle.sh N [extra molvae train options] > runs/cycle-N.log 2>&1 &
# A variant of cycle N (a design change measured against cycle N at the same compute, from the same cycles/N-1
# and seed) is named N-LABEL and may use another config: CYCLE_CONFIG=scripts/cycle_config_cond.json
# bash scripts/train_cycle.sh 3-cond writes runs/cycle-3-cond (the conditional VAE of issue 26).
# A cycle that was interrupted is resumed by the same command (the schedule's length is kept). When it ends,
# `python scripts/save_cycle.py runs/cycle-N cycles/N` commits-ready end weights (fp16) for the next cycle.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=${1:?usage: train_cycle.sh N[-LABEL] [molvae train options]}
shift
N=${NAME%%-*}
OUT=runs/cycle-$NAME
CONFIG=${CYCLE_CONFIG:-scripts/cycle_config.json}
PREV=cycles/$((N - 1))
INIT=moses-smiles
[ -f "$PREV/model.safetensors" ] && INIT=$PREV
.venv/bin/molvae data moses
# The cycle owns the machine. With the kernel's autogroup scheduling (on by default), `nice` on other jobs does
# not protect it: each terminal session gets an equal share of the CPU whatever its nice value, which is how
# earlier runs lost half their speed to helpers' tests. Raising this session's group weight (root only) fixes
# that; without the right, it is skipped.
echo -10 > /proc/self/autogroup 2>/dev/null || true
if [ -f "$OUT/trainer_state.json" ]; then
  exec .venv/bin/molvae train --resume "$OUT" --out "$OUT" "$@"
fi
exec .venv/bin/molvae train --config "$CONFIG" --init "$INIT" --seed "$N" --out "$OUT" "$@"
