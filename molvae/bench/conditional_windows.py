"""Sampling in the three property windows of issue 26's goal: hits per decode and distinct hits, 500 each.

    flock /tmp/molvae-bench.lock .venv/bin/python -m molvae.bench.conditional_windows [--model M] [--n 500]
        [--seed 0] [--max-decodes N] [--out runs/bench_conditional_windows_MODEL.json]

For each window ("logp>=4,logp<=5"; "mw>=300,mw<=350,tpsa<=60,qed>=0.85"; "logp>=5") the model (default: the
shipped default) is asked `MolVAE.sample(n, where=WINDOW, seed=SEED, max_decodes=...)`, as the issue measured
it: unique_valid off, so a molecule decoded twice is two hits and the distinct share shows the repeats. A
conditional model draws c from training molecules' property vectors inside the window; a model without
conditioning steers its prior with the property head (`df.attrs["conditioned"]` names the conditions used,
empty when steered; `df.attrs["conditioning"]`, their diagnostics, is kept in the JSON). --max-decodes
bounds the decoded latents (default: the library's, 20 n + 1000).

Per window: hits per decode (`df.attrs["hit_rate"]`: molecules inside the window by RDKit values, per decoded
latent), distinct (distinct canonical SMILES / hits returned), validity (valid / decoded), novelty (distinct
hits not in the training set / distinct hits), seconds, and the conditions used. The goals (issue 26: >= .70
hits per decode, >= .95 distinct) are shown as pass/fail. Prints a table and writes JSON (after every window,
so a run cut short keeps what it measured) with the model, seed, hardware and command.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

__all__ = ["WINDOWS", "GOALS", "measure", "main"]

WINDOWS = ("logp>=4,logp<=5", "mw>=300,mw<=350,tpsa<=60,qed>=0.85", "logp>=5")
GOALS = {"hit_rate": 0.70, "distinct": 0.95}  # issue 26: per window, hits per decode and distinct share of hits
_COLUMNS = ["where", "conditioned", "returned", "decodes", "hit_rate", "hit_rate_goal", "distinct", "distinct_goal",
            "validity", "novelty", "seconds"]


def _goal(value: float, goal: float) -> str:
    return "pass" if value >= goal else "fail"  # NaN (no hits) fails


def measure(vae: Any, where: str, n: int, seed: int, max_decodes: int | None) -> dict[str, Any]:
    """One window: `vae.sample(n, where=where, seed=seed, max_decodes=max_decodes)` and its row."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # fewer hits than asked: the row's `returned` says so
        warnings.simplefilter("ignore", RuntimeWarning)
        df = vae.sample(n, where=where, seed=seed, max_decodes=max_decodes)
    seconds = time.perf_counter() - t0
    a = df.attrs
    distinct = df.loc[df["valid"]].drop_duplicates("canonical")
    novel = float(distinct["novel"].mean()) if "novel" in df and len(distinct) else float("nan")
    share = len(distinct) / len(df) if len(df) else float("nan")
    return {"where": where, "asked": n, "returned": len(df), "hits": int(a["hits"]), "decodes": int(a["n_drawn"]),
            "hit_rate": float(a["hit_rate"]), "hit_rate_goal": _goal(float(a["hit_rate"]), GOALS["hit_rate"]),
            "distinct": share, "distinct_goal": _goal(share, GOALS["distinct"]),
            "validity": a["n_valid"] / max(a["n_drawn"], 1), "novelty": novel, "seconds": seconds,
            "conditioned": list(a["conditioned"]), "uses_conditions": bool(a["conditioned"]),
            "conditioning": a.get("conditioning", {})}  # the library's diagnostics of the conditioned draws


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m molvae.bench.conditional_windows",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model name or checkpoint directory (default: the shipped default)")
    ap.add_argument("--n", type=int, default=500, help="molecules asked per window")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-decodes", type=int, default=None, help="decoded latents per window at most "
                    "(default: the library's, 20 n + 1000)")
    ap.add_argument("--windows", nargs="+", default=list(WINDOWS), help="conditions to measure (default: the issue's)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--n-jobs", type=int, default=1, help="processes for RDKit work")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON report (default: runs/bench_conditional_windows_MODEL.json)")
    return ap


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure the windows the command line `argv` names; print the table, write --out; returns the report."""
    args = _parser().parse_args(argv)

    import molvae
    from molvae.bench.report import torch_threads, write_json
    from molvae.runtime import hardware_summary

    t0 = time.perf_counter()
    with torch_threads(args.threads):
        vae = molvae.load(args.model, device=args.device, n_jobs=args.n_jobs)
        out = args.out or Path("runs") / f"bench_conditional_windows_{Path(vae.name).name}.json"
        report: dict[str, Any] = {
            "model": vae.name, "model_path": str(vae.path), "is_conditional": bool(vae.is_conditional),
            "cond_names": list(vae.cond_names), "n": args.n, "seed": args.seed, "max_decodes": args.max_decodes,
            "goals": GOALS, "threads": args.threads, "device": str(vae.device),
            "hardware": hardware_summary(vae.device),
            "command": "python -m molvae.bench.conditional_windows " + " ".join(sys.argv[1:] if argv is None else argv),
            "rows": []}
        for where in args.windows:
            row = measure(vae, where, args.n, args.seed, args.max_decodes)
            report["rows"].append(row)
            report["seconds"] = time.perf_counter() - t0
            print(f"{where}: {row['hit_rate']:.3f} hits per decode, {row['distinct']:.3f} distinct, "
                  f"{row['returned']} of {args.n} in {row['decodes']} decodes ({row['seconds']:.0f} s)", flush=True)
            write_json(out, report)
    table = pd.DataFrame(report["rows"])[_COLUMNS]
    table["conditioned"] = table["conditioned"].map(lambda names: ",".join(names) or "steered")
    with pd.option_context("display.width", 220, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    return report


if __name__ == "__main__":
    main()
