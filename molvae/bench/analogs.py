"""Analogs one logP unit higher (issue 26's analog benchmark): `MolVAE.sample(near=...)` for 30 MOSES molecules.

    flock /tmp/molvae-bench.lock .venv/bin/python -m molvae.bench.analogs [--model M] [--molecules moses]
        [--n-molecules 30] [--per-molecule 5] [--max-decodes 200] [--similarity 0.4] [--tolerance 0.25]
        [--seed 0] [--out runs/bench_analogs_MODEL.json]

Start molecules: --n-molecules molecules with RDKit 1.5 <= logP <= 2.5 from MOSES test_scaffolds (`--molecules
moses`: the split `molvae data moses` fetches once and caches), or from `embedded` (the 2,000 MOSES test molecules
shipped in data/, offline; test_scaffolds is not embedded) or a molecule file, taken in the order of a shuffle
by --seed (the same seed, the same molecules). For each, with logP0 its RDKit logP, the model (default: the
shipped default) is asked

    sample(per_molecule, near=SMILES, similarity=0.4, where="logp>=LO,logp<=HI", max_decodes=200, seed=SEED,
           unique_valid=True)

with LO, HI = logP0 + 1 -/+ --tolerance (default 0.25, rounded to 3 decimals): one logP unit higher. Every
analog returned is checked again here with RDKit (logP inside the window, Morgan r=2 2048-bit Tanimoto to the
start >= --similarity); a molecule succeeds with >= --per-molecule distinct checked analogs. A start the model
cannot encode (a token or a length it lacks) is a failure with its message. Per molecule: analogs, hits and
decodes (`df.attrs`), hits per decode, mean similarity of its analogs, seconds; overall: the share of
molecules that succeed (goal >= .90), the mean of the hits per decode, and the mean similarity of all
analogs. Prints a table and writes JSON (after every molecule) with the model, seed, hardware and command.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["LOGP_RANGE", "GOAL", "start_molecules", "analogs_of", "summary", "main"]

LOGP_RANGE = (1.5, 2.5)  # RDKit logP of the start molecules
GOAL = 0.90  # issue 26: share of start molecules with per_molecule distinct analogs
_CHUNK = 256  # start candidates whose logP is computed at a time


def _smiles_of(source: str) -> list[str]:
    """SMILES of MOSES test_scaffolds ("moses"), the embedded MOSES test molecules ("embedded") or a file."""
    from molvae.data.datasets import dataset_path, embedded_path
    from molvae.data.read import read_table

    name = source.lower()
    path = dataset_path("moses", "test_scaffolds") if name == "moses" else (
        embedded_path("test") if name == "embedded" else Path(source))
    df, col = read_table(path)
    return df[col].astype(str).tolist()


def start_molecules(source: str, n: int, seed: int, logp_range: tuple[float, float] = LOGP_RANGE
                    ) -> list[tuple[str, float]]:
    """The first `n` molecules of `source` (see `_smiles_of`), in the order of a shuffle by `seed`, whose
    RDKit logP lies in `logp_range`, each with that logP; fewer when the source has fewer."""
    from molvae import chem

    smiles = _smiles_of(source)
    order = np.random.default_rng(seed).permutation(len(smiles))
    chosen: list[tuple[str, float]] = []
    for start in range(0, len(order), _CHUNK):
        chunk = [smiles[i] for i in order[start:start + _CHUNK]]
        logp = chem.properties(chunk, ["logp"], n_jobs=1)["logp"].to_numpy()
        chosen += [(s, float(v)) for s, v in zip(chunk, logp) if logp_range[0] <= v <= logp_range[1]]
        if len(chosen) >= n:
            break
    return chosen[:n]


def _checked(df: pd.DataFrame, smiles: str, lo: float, hi: float, floor: float) -> np.ndarray:
    """Similarities of the distinct valid analogs in `df` that RDKit puts inside [lo, hi] at Tanimoto >= floor."""
    from molvae import chem

    canon = df.loc[df["valid"], "canonical"].drop_duplicates().tolist()
    if not canon:
        return np.zeros(0)
    logp = chem.properties(canon, ["logp"], n_jobs=1)["logp"].to_numpy()
    sim = chem.bulk_tanimoto(smiles, canon)
    return sim[(logp >= lo) & (logp <= hi) & (sim >= floor)]


def analogs_of(vae: Any, smiles: str, logp0: float, args: argparse.Namespace) -> dict[str, Any]:
    """Ask `vae` for args.per_molecule analogs of `smiles` one logP unit above `logp0`; the molecule's row."""
    from molvae.errors import DataError

    lo, hi = round(logp0 + 1 - args.tolerance, 3), round(logp0 + 1 + args.tolerance, 3)
    row: dict[str, Any] = {"smiles": smiles, "logp0": logp0, "where": f"logp>={lo},logp<={hi}"}
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():  # fewer analogs than asked: the row says so
            warnings.simplefilter("ignore", RuntimeWarning)
            df = vae.sample(args.per_molecule, near=smiles, similarity=args.similarity, where=row["where"],
                            max_decodes=args.max_decodes, seed=args.seed, unique_valid=True)
    except DataError as exc:  # a start the model cannot encode
        return {**row, "returned": 0, "analogs": 0, "hits": 0, "decodes": 0, "hit_rate": float("nan"),
                "similarities": [], "mean_similarity": float("nan"), "seconds": time.perf_counter() - t0,
                "success": False, "error": str(exc)}
    sims = _checked(df, smiles, lo, hi, args.similarity)
    return {**row, "returned": len(df), "analogs": len(sims), "hits": int(df.attrs["hits"]),
            "decodes": int(df.attrs["n_drawn"]), "hit_rate": float(df.attrs["hit_rate"]),
            "similarities": [float(s) for s in sims],
            "mean_similarity": float(sims.mean()) if len(sims) else float("nan"),
            "seconds": time.perf_counter() - t0, "success": len(sims) >= args.per_molecule, "error": None}


def summary(rows: Sequence[dict[str, Any]], asked: int) -> dict[str, Any]:
    """Overall figures of the per-molecule rows; `asked` is --n-molecules (a shortfall of starts counts as failures)."""
    sims = [s for r in rows for s in r["similarities"]]
    rates = [r["hit_rate"] for r in rows if r["error"] is None]
    share = sum(r["success"] for r in rows) / max(asked, 1)
    decodes = sum(r["decodes"] for r in rows)
    return {"molecules": len(rows), "success_share": share, "goal": GOAL,
            "goal_met": "pass" if share >= GOAL else "fail",
            "mean_hit_rate": float(np.mean(rates)) if rates else float("nan"),
            "pooled_hit_rate": sum(r["hits"] for r in rows) / decodes if decodes else float("nan"),
            "mean_similarity": float(np.mean(sims)) if sims else float("nan"),
            "mean_decodes": decodes / len(rows) if rows else float("nan"),
            "errors": sum(r["error"] is not None for r in rows)}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m molvae.bench.analogs", description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model name or checkpoint directory (default: the shipped default)")
    ap.add_argument("--molecules", default="moses", help="moses (test_scaffolds, cached by `molvae data moses`), "
                    "embedded (the 2,000 embedded MOSES test molecules) or a molecule file")
    ap.add_argument("--n-molecules", type=int, default=30, help="start molecules with 1.5 <= logP <= 2.5")
    ap.add_argument("--per-molecule", type=int, default=5, help="distinct analogs asked of each")
    ap.add_argument("--max-decodes", type=int, default=200, help="decoded latents per start molecule at most")
    ap.add_argument("--similarity", type=float, default=0.4, help="Tanimoto floor to the start molecule")
    ap.add_argument("--tolerance", type=float, default=0.25, help="half-width of the logP window at logP0 + 1")
    ap.add_argument("--seed", type=int, default=0, help="picks the start molecules and seeds the sampling")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--n-jobs", type=int, default=1, help="processes for RDKit work")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None, help="JSON report (default: runs/bench_analogs_MODEL.json)")
    return ap


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark the command line `argv` describes; print the table, write --out; returns the report."""
    args = _parser().parse_args(argv)

    import molvae
    from molvae.bench.report import torch_threads, write_json
    from molvae.runtime import hardware_summary

    t0 = time.perf_counter()
    starts = start_molecules(args.molecules, args.n_molecules, args.seed)
    with torch_threads(args.threads):
        vae = molvae.load(args.model, device=args.device, n_jobs=args.n_jobs)
        out = args.out or Path("runs") / f"bench_analogs_{Path(vae.name).name}.json"
        report: dict[str, Any] = {
            "model": vae.name, "model_path": str(vae.path), "is_conditional": bool(vae.is_conditional),
            "cond_names": list(vae.cond_names), "molecules": args.molecules, "logp_range": list(LOGP_RANGE),
            **{k: getattr(args, k) for k in ("n_molecules", "per_molecule", "max_decodes", "similarity",
                                             "tolerance", "seed", "threads")},
            "device": str(vae.device), "hardware": hardware_summary(vae.device),
            "command": "python -m molvae.bench.analogs " + " ".join(sys.argv[1:] if argv is None else argv), "rows": []}
        for smiles, logp0 in starts:
            row = analogs_of(vae, smiles, logp0, args)
            report["rows"].append(row)
            report.update(summary=summary(report["rows"], args.n_molecules), seconds=time.perf_counter() - t0)
            print(f"{len(report['rows'])}/{len(starts)} {smiles}: {row['analogs']} analogs, {row['hits']} hits in "
                  f"{row['decodes']} decodes", flush=True)
            write_json(out, report)
    if not starts:
        report.update(summary=summary([], args.n_molecules), seconds=time.perf_counter() - t0)
        write_json(out, report)
    columns = ["smiles", "logp0", "analogs", "hits", "decodes", "hit_rate", "mean_similarity", "success"]
    with pd.option_context("display.width", 220, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(pd.DataFrame(report["rows"], columns=columns).to_string(index=False))
    s = report["summary"]
    print(f"{s['success_share']:.3f} of {args.n_molecules} molecules with >= {args.per_molecule} analogs "
          f"(goal {GOAL:.2f}: {s['goal_met']}); hits per decode {s['mean_hit_rate']:.3f}, "
          f"mean similarity {s['mean_similarity']:.3f}")
    return report


if __name__ == "__main__":
    main()
