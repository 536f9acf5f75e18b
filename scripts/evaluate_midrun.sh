#!/usr/bin/env bash
# A learning-curve point of a training run that is still going (docs/training.md): the weights of its latest
# mid-epoch checkpoint, with a posterior-mixture density fitted on the embedded 20,000 MOSES train molecules,
# evaluated on 10,000 samples (seed 0) against the full MOSES test sets, with reconstruction and head accuracy;
# and, once, the shipped default evaluated the same way, so that the two compare.
# Usage: bash scripts/evaluate_midrun.sh RUN_DIR OUT_DIR      (e.g. runs/default_long runs/eval_midrun)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=$1
OUT=$2
D=$OUT/step_$(.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['step'])" "$RUN/trainer_state.json")
mkdir -p "$D"
.venv/bin/python - "$RUN" "$D" <<'PY'
import shutil, sys
from pathlib import Path
from safetensors.torch import load_file, save_file
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
state = load_file(src / "trainer_state.safetensors")
save_file({k[len("model."):]: v.contiguous() for k, v in state.items() if k.startswith("model.")},
          dst / "model.safetensors", metadata={"format": "molvae"})
for name in ("config.json", "vocab.json", "train_hashes.npy"):
    shutil.copyfile(src / name, dst / name)
PY
evaluate() {
  .venv/bin/molvae density --model "$1" --data embedded --n 20000 --seed 0
  .venv/bin/molvae evaluate --model "$1" --n-samples 10000 --seed 0 --n-jobs 1 -o "$1/eval.json" --json > "$1/eval.out"
}
evaluate "$D"
S=$OUT/shipped
if [ ! -f "$S/eval.json" ]; then
  rm -rf "$S" && cp -r molvae/pretrained/moses-smiles "$S"
  evaluate "$S"
fi
echo "wrote $D/eval.json and $S/eval.json"
