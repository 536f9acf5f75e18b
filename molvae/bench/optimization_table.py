"""The README's optimization table: `molvae optimize` with its defaults, gradient against random at the same budget.

For each property (logP, QED) and method (gradient, random), `molvae.optimize(model, prop, seed=0)` runs with
the CLI defaults (64 starts drawn from the prior, 100 steps, a decode every 10 steps: 704 decoded molecules per
method). Reported: the RDKit value of each start's decoded molecule (start mean), of its best result (result
mean, best), how many starts improved, and the property head's prediction at the latent of the result.

    python -m molvae.bench.optimization_table [--model moses-smiles] [--seed 0] [--json runs/optimize_table.json]

Prints a markdown table and writes JSON.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Sequence

import torch

import molvae
from molvae.bench.report import write_json
from molvae.runtime import hardware_summary

__all__ = ["TASKS", "METHODS", "row", "main"]

TASKS = (("logP", "logp"), ("QED", "qed"))
METHODS = ("gradient", "random")


def row(vae: molvae.MolVAE, prop: str, method: str, seed: int, **options: Any) -> dict[str, Any]:
    """One `molvae.optimize` run with the CLI defaults: RDKit values of the starts and results (property units),
    starts improved, the head's mean prediction at the results, decoded molecules, seconds."""
    t0 = time.perf_counter()
    df = molvae.optimize(vae, prop, method=method, seed=seed, **options)
    starts = df.attrs["run"].starts
    return {"method": method, "n_starts": int(len(starts)), "n_decoded": int(df.attrs["n_decoded"]),
            "start_mean": float(df[f"{prop}_before"].mean()), "result_mean": float(df[f"{prop}_after"].mean()),
            "best": float(df[f"{prop}_after"].max()), "improved": int(starts["improved"].sum()),
            "pred_at_result": float(df[f"{prop}_pred"].mean()), "seconds": round(time.perf_counter() - t0, 1)}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the table as the command line `argv` says; print it, write --json; returns the report."""
    ap = argparse.ArgumentParser(prog="python -m molvae.bench.optimization_table", description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model name or checkpoint directory (default: shipped)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=Path("runs/optimize_table.json"))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--n-starts", type=int, default=None, help="starts per run (default: molvae.optimize's)")
    ap.add_argument("--steps", type=int, default=None, help="steps per start (default: molvae.optimize's)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    vae = molvae.load(args.model, device=args.device)
    rows = []
    print("| task | method | start mean | result mean | best | starts improved | head's prediction at the result "
          "| decoded | s |\n|---|---|---|---|---|---|---|---|---|")
    for label, prop in TASKS:
        for method in METHODS:
            options = {k: v for k, v in (("n_starts", args.n_starts), ("steps", args.steps)) if v is not None}
            r = {"task": label, **row(vae, prop, method, args.seed, **options)}
            rows.append(r)
            print(f"| {label} | {method} | {r['start_mean']:.3f} | {r['result_mean']:.3f} | {r['best']:.3f} | "
                  f"{r['improved']}/{r['n_starts']} | {r['pred_at_result']:.2f} | {r['n_decoded']} | {r['seconds']} |",
                  flush=True)
    report = {"model": vae.name, "model_path": str(vae.path), "seed": args.seed, "rows": rows,
              "hardware": hardware_summary(vae.device)}
    write_json(args.json, report, indent=1)
    return report


if __name__ == "__main__":
    main()
