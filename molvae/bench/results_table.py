"""Markdown results table of a model evaluation (the JSON `molvae evaluate --model ... -o` writes) beside the
published MOSES VAE, CharRNN and JTN-VAE rows; the README and model-card tables are this output.

    python -m molvae.bench.results_table runs/evaluate_moses-smiles.json [--md out.md]

With several evaluations, one column per model (mean ± std over its seeds), labelled by --labels:

    python -m molvae.bench.results_table a.json b.json --labels "SELFIES" "SMILES" [--md out.md]
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Sequence

from molvae.evaluation import MOSES_BASELINES

__all__ = ["ROWS", "BASELINES", "table", "main"]

ROWS = ("Valid", "Unique@1k", "Unique@10k", "FCD/Test", "FCD/TestSF", "SNN/Test", "SNN/TestSF", "Frag/Test",
        "Frag/TestSF", "Scaf/Test", "Scaf/TestSF", "IntDiv", "IntDiv2", "Filters", "Novelty")
BASELINES = ("VAE", "CharRNN", "JTN-VAE")


def _cell(mean: float | None, std: float | None) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    digits = 3 if abs(mean) < 10 else 2
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def _seeds(model: dict) -> str:
    n = len(model["samples"])
    return f"{n} seed" + ("s" if n != 1 else "")


def _ours(model: dict, metric: str) -> str:
    """One evaluation's cell: mean ± std over its seeds; a single seed has no spread to show."""
    if metric not in model["summary"]:
        return "-"
    mean, std = model["summary"][metric]
    return _cell(mean, std if len(model["samples"]) > 1 else None)


def _model_lines(label: str, model: dict) -> list[str]:
    recon, prop = model["reconstruction"], model["property_head"]
    prefix = f"{label}: " if label else ""
    return [f"{prefix}Reconstruction (greedy, exact) of the first {recon['recon_n']} MOSES test molecules: "
            f"{recon['recon_acc']:.3f}.",
            f"{prefix}Property head on the first {prop['prop_n']} MOSES test molecules (MAE / R²): "
            + ", ".join(f"{k[4:]} {prop[k]:.3f} / {prop['r2_' + k[4:]]:.2f}" for k in prop if k.startswith("mae_"))
            + "."]


def table(results: dict[str, Any] | list[dict[str, Any]], labels: list[str] | None = None) -> str:
    """A markdown table: one column per evaluation (a single one is headed "molvae (k seeds)"), then the
    published rows; below it each model's reconstruction and property-head lines."""
    models = [r["model"] for r in (results if isinstance(results, list) else [results])]
    if labels is None:
        labels = ["molvae"] if len(models) == 1 else [f"model {i + 1}" for i in range(len(models))]
    if len(labels) != len(models):
        raise SystemExit(f"{len(models)} evaluations but {len(labels)} labels")
    head = [f"{lab} ({_seeds(m)})" for lab, m in zip(labels, models)] + [f"MOSES {b}" for b in BASELINES]
    lines = ["| metric | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for m in ROWS:
        cells = [_ours(model, m) for model in models]
        cells += [_cell(*MOSES_BASELINES[b].get(m, (None, None))) for b in BASELINES]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines.append("")
    for lab, model in zip(labels, models):
        lines += _model_lines(lab if len(models) > 1 else "", model)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    """Print the table of the evaluations `argv` names (and write it to --md); returns it."""
    ap = argparse.ArgumentParser(prog="python -m molvae.bench.results_table", description=__doc__.splitlines()[0])
    ap.add_argument("json", type=Path, nargs="+")
    ap.add_argument("--labels", nargs="+", help="Column labels, one per JSON file.")
    ap.add_argument("--md", type=Path, help="Also write the table to this file.")
    args = ap.parse_args(argv)
    results = [json.loads(p.read_text()) for p in args.json]
    text = table(results, args.labels)
    print(text)
    if args.md:
        args.md.write_text(text + "\n")
    return text


if __name__ == "__main__":
    main()
