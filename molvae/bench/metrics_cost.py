"""Acceptance run of the MOSES metric suite: 30,000 MOSES training molecules against the MOSES
test sets, every metric, wall time and peak memory.

    python -m molvae.bench.metrics_cost [--n 30000] [--seed 11] [--n-jobs 2] [--cold] [--json PATH]

The sample is ``pandas.read_csv(train.csv.gz).sample(30000, random_state=11)``. Expected (MOSES
README, "Train" row, and earlier runs): FCD/Test about 0.05 for 30k molecules (0.008 for the whole
training set), SNN/Test about 0.64, Frag and Filters >= 0.998, IntDiv about 0.857, Novelty 0.
Reference statistics (test and scaffold test: ChemNet moments, fingerprints, fragments, scaffolds,
properties) and the canonical training set are cached after the first run; ``--cold`` recomputes
them. Exits 1 if the peak resident memory of the main process or of any worker exceeds 4 GiB. Prints a
table and writes JSON (--json). `--sample-from FILE --reference embedded` runs it on other molecules
(the tests: a few embedded ones).
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any, Sequence

__all__ = ["EXPECT", "LIMIT_GIB", "main"]

LIMIT_GIB = 4.0
EXPECT = {  # metric: (low, high) bounds for a sample of the training set itself
    "FCD/Test": (0.0, 0.1), "SNN/Test": (0.62, 0.66), "Frag/Test": (0.998, 1.0), "Filters": (0.998, 1.0),
    "IntDiv": (0.85, 0.86), "Valid": (1.0, 1.0), "Novelty": (0.0, 0.0),
}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the check as the command line `argv` says; print the table, write --json; returns the report (its
    "ok": every check passed and the memory stayed under LIMIT_GIB). As a command it exits 1 when not ok."""
    ap = argparse.ArgumentParser(prog="python -m molvae.bench.metrics_cost", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=30000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--n-jobs", type=int, default=None, help="processes for RDKit work (default: all cores)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cold", action="store_true", help="ignore cached reference statistics")
    ap.add_argument("--sample-from", default=None, help="molecules to sample (default: MOSES train)")
    ap.add_argument("--reference", default="moses", help="moses, embedded or a test-set file (molvae.evaluate)")
    ap.add_argument("--json", default="runs/bench_metrics.json")
    args = ap.parse_args(argv)

    import pandas as pd
    import torch

    from molvae.data import fetch_moses
    from molvae.evaluation import evaluate, format_table

    source = args.sample_from or fetch_moses()["train"]
    gen = pd.read_csv(source).sample(args.n, random_state=args.seed)["SMILES"].tolist()
    t0 = time.perf_counter()
    result = evaluate(gen, reference=args.reference, n_jobs=args.n_jobs, device=args.device, cache=not args.cold)
    wall = time.perf_counter() - t0
    usage_self, usage_children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    rss_main = usage_self.ru_maxrss / 2**20  # KiB -> GiB (Linux)
    rss_child = usage_children.ru_maxrss / 2**20
    # CPU seconds (main + workers): on a shared machine a fairer measure of the work than wall time
    cpu = sum(u.ru_utime + u.ru_stime for u in (usage_self, usage_children))

    print(format_table(result, baselines=("Train", "VAE", "CharRNN")))
    print()
    print(f"wall time {wall:.1f} s, CPU time {cpu:.0f} s ({'cold' if args.cold else 'cache allowed'}); "
          f"peak RSS main {rss_main:.2f} GiB, "
          f"largest worker {rss_child:.2f} GiB; {torch.get_num_threads()} torch threads, n_jobs={args.n_jobs}; "
          f"{platform.processor() or platform.machine()}")
    print("stages (s):", ", ".join(f"{k} {v}" for k, v in result["details"]["seconds"].items()))
    checks = {}
    for name, (lo, hi) in EXPECT.items():
        value = result.get(name)
        checks[name] = value is not None and lo - 1e-9 <= value <= hi + 1e-9
        print(f"  {name:<10} {value if value is None else round(value, 4)!s:>8}  expected [{lo}, {hi}]  "
              f"{'ok' if checks[name] else 'UNEXPECTED'}")
    peak = max(rss_main, rss_child)
    memory_ok = peak < LIMIT_GIB
    print(f"  memory     {peak:.2f} GiB  limit {LIMIT_GIB} GiB  {'ok' if memory_ok else 'EXCEEDED'}")
    report = {"n": args.n, "seed": args.seed, "n_jobs": args.n_jobs, "device": args.device, "cold": args.cold,
              "wall_s": round(wall, 1), "cpu_s": round(cpu),
              "peak_rss_gib": {"main": round(rss_main, 3), "worker": round(rss_child, 3)},
              "checks": checks, "ok": memory_ok and all(checks.values()), "memory_ok": memory_ok, "result": result}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
        print(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    sys.exit(0 if main()["memory_ok"] else 1)
