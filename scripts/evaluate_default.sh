#!/usr/bin/env bash
# Regenerate a shipped model's results table (protocol: docs/benchmarks.md): reconstruction on the first 1,000
# MOSES test molecules, property-head MAE/R^2 on the first 5,000, and MOSES metrics of N samples for each seed.
# Usage: bash scripts/evaluate_default.sh [MODEL] [N_SAMPLES] [SEEDS...]
#   defaults: moses-smiles 30000 0 1 2  (the full protocol; 11-14 min on the 2-core CPU with cached reference
#   statistics; the first run adds about 75 min (measured under load) to build them for the two 176k test sets)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-moses-smiles}
N=${2:-30000}
shift $(( $# > 2 ? 2 : $# ))
SEEDS=("${@:-0 1 2}")
args=()
for s in ${SEEDS[@]}; do args+=(--seed "$s"); done
mkdir -p runs
.venv/bin/molvae evaluate --model "$MODEL" --n-samples "$N" "${args[@]}" -o "runs/evaluate_${MODEL//\//_}.json"
.venv/bin/python -m molvae.bench.results_table "runs/evaluate_${MODEL//\//_}.json" --md "runs/results_${MODEL//\//_}.md"
