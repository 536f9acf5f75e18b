"""Markdown results table of a model evaluation (the JSON `molvae evaluate --model ... -o` writes) beside the
published MOSES VAE, CharRNN and JTN-VAE rows; the README and model-card tables are this output.

    python scripts/results_table.py runs/evaluate_moses-selfies.json [--md out.md]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from molvae.metrics import MOSES_BASELINES  # noqa: E402

ROWS = ("Valid", "Unique@1k", "Unique@10k", "FCD/Test", "FCD/TestSF", "SNN/Test", "SNN/TestSF", "Frag/Test",
        "Frag/TestSF", "Scaf/Test", "Scaf/TestSF", "IntDiv", "IntDiv2", "Filters", "Novelty")
BASELINES = ("VAE", "CharRNN", "JTN-VAE")


def _cell(mean: float | None, std: float | None) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    digits = 3 if abs(mean) < 10 else 2
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def table(results: dict) -> str:
    model = results["model"]
    summary = model["summary"]
    n_seeds = len(model["samples"])
    head = [f"molvae ({n_seeds} seeds)", *[f"MOSES {b}" for b in BASELINES]]
    lines = ["| metric | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for m in ROWS:
        ours = summary.get(m)
        cells = [_cell(*ours) if ours else "-"]
        cells += [_cell(*MOSES_BASELINES[b].get(m, (None, None))) for b in BASELINES]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    recon, prop = model["reconstruction"], model["property_head"]
    lines += ["", f"Reconstruction (greedy, exact) of the first {recon['recon_n']} MOSES test molecules: "
                  f"{recon['recon_acc']:.3f}.",
              "Property head on the first {} MOSES test molecules (MAE / R²): ".format(prop["prop_n"])
              + ", ".join(f"{k[4:]} {prop[k]:.3f} / {prop['r2_' + k[4:]]:.2f}" for k in prop if k.startswith("mae_"))
              + "."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", type=Path)
    ap.add_argument("--md", type=Path, help="Also write the table to this file.")
    args = ap.parse_args()
    text = table(json.loads(args.json.read_text()))
    print(text)
    if args.md:
        args.md.write_text(text + "\n")


if __name__ == "__main__":
    main()
