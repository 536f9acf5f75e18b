"""Latent-space optimization benchmark (docs/benchmarks.md, "Optimization"), gradient vs random vs BO at
equal budget.

Tasks, each run by `molvae.optimization.run` with method gradient, random and bo:

1. Top-3 QED: prior starts, the best three distinct molecules found within --budget decoded
   molecules (--budget // --n-starts per start, the same for every method).
2. Top-3 penalized logP, two definitions, each optimized separately:
   plogp      JT-VAE's normalized form: (logP - 2.4571)/1.4343 - (SA - 3.0526)/0.8335
              - (cycle + 0.0486)/0.2860, cycle = max(0, largest ring - 6) (networkx cycle basis)
   plogp_ha38 the same, reporting only molecules of at most 38 heavy atoms (the sane variant:
              unconstrained plogp grows with every carbon added)
   plogp_raw  logP - SA - cycle.
   The gradient method guides plogp from the model's logP and SA heads plus the ring
   penalty of the last decoded molecule (molvae.optimization.objectives); results are RDKit values.
3. Similarity-constrained improvement of plogp for the --n-molecules (default 800) MOSES
   test molecules with the lowest plogp, at Tanimoto (Morgan r=2, 2048 bits) >= 0.4 and
   >= 0.6 to the start, with --per-molecule-budget decoded molecules per start molecule: every
   method runs with `molvae.optimize`'s defaults for start molecules (gradient: 200 copies per
   start between the posterior mean and the latent that reconstructs the start, of which the 20
   the decoder's likelihood of the start picks are decoded; random and bo: one trajectory of 20
   decodes), only the budget set. The
   "random-sampled" row is random search decoding by sampling at temperature 0.5, as the
   gradient default does. Reported besides: the head's plogp error at the reported molecules
   (prediction at the latent each came from against RDKit), the head's plogp error for the reported
   molecules re-encoded (their posterior means, what `MolVAE.predict` reads), at the starts and at
   the first 1,000 MOSES test molecules.
   Success: a valid molecule, different from the start, above the similarity floor, with
   higher plogp. Improvement: mean +- std over the successful molecules (as JT-VAE and GCPN
   report it) and over all molecules counting failures as 0. For the starts without a success,
   where their decodes went: invalid, the start itself, below the floor, no higher plogp.

References (published numbers, other models and budgets; all of them in docs/benchmarks.md):
QED top-3 .948/.947/.946 (GCPN); plogp top-3 5.30/4.93/4.49 (JT-VAE); delta=0.4
improvement 1.03 +- 1.39 (JT-VAE under GCPN's protocol; 0.84 +- 1.45 in JT-VAE's own paper),
2.49 +- 1.30 (GCPN).

    python -m molvae.bench.optimization_tasks [--model DIR] [--budget 5000] [--n-molecules 800]
        [--per-molecule-budget 20] [--subset-stride K] [--subset-offset J] [--methods gradient,random,bo,random-sampled]
        [--threads 1] [--json out.json]

The 800 lowest-plogp molecules need plogp for all 176,074 test molecules: computed once
(about 10 CPU minutes) and cached in the molvae data cache (derived/moses_test_plogp.csv).
--pool N instead takes the lowest among the first N test molecules (a quick, stated deviation).
Prints a table and writes JSON (--json).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

import molvae
from molvae import chem
from molvae.errors import MolvaeError
from molvae.optimization import Constraints, optimize

METHODS = ("gradient", "random", "bo")
# Extra rows: random search decoding by sampling at the gradient default's temperature, to separate what the
# gradient adds from what sampled decoding adds.
VARIANTS = {"random-sampled": ("random", {"temperature": 0.5})}
# Top-3 tasks: (objective, largest heavy-atom count allowed). Unconstrained plogp rewards ever longer
# chains of carbon; 38 heavy atoms (the largest ZINC-250k molecule) is the sane variant beside the raw one.
TOP3_TASKS = {"qed": ("qed", None), "plogp": ("plogp", None), "plogp_ha38": ("plogp", 38),
              "plogp_raw": ("plogp_raw", None)}
REFERENCES = {
    "qed_top3": {"GCPN": [0.948, 0.947, 0.946]},
    "plogp_top3": {"JT-VAE": [5.30, 4.93, 4.49]},
    "constrained_0.4": {"JT-VAE": "1.03 +- 1.39", "GCPN": "2.49 +- 1.30"},
}


def lowest_plogp(n: int, pool: int | None, n_jobs: int) -> pd.DataFrame:
    """The n MOSES test molecules with the lowest plogp (smiles, plogp), lowest first."""
    from molvae.data import cache_dir, fetch_moses

    test = pd.read_csv(fetch_moses()["test"])["SMILES"]
    if pool is not None:
        smiles = test.iloc[:pool].tolist()
        values = chem.properties(smiles, ["plogp"], n_jobs=n_jobs)["plogp"].to_numpy()
        table = pd.DataFrame({"smiles": smiles, "plogp": values})
    else:
        path = cache_dir() / "derived" / "moses_test_plogp.csv"
        table = pd.read_csv(path) if path.is_file() else None
        if table is None or len(table) != len(test) or not (table["smiles"].to_numpy() == test.to_numpy()).all():
            print(f"computing plogp for {len(test):,} MOSES test molecules (cached in {path}) ...", flush=True)
            values = chem.properties(test.tolist(), ["plogp"], n_jobs=n_jobs)["plogp"].to_numpy()
            table = pd.DataFrame({"smiles": test.tolist(), "plogp": values})
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
            table.to_csv(tmp, index=False)
            os.replace(tmp, path)
    table = table.dropna()
    return table.sort_values("plogp", kind="stable").head(n).reset_index(drop=True)


def method_kwargs(method: str, gradient_args: dict | None) -> tuple[str, dict]:
    """The `molvae.optimize` method behind a row name (`VARIANTS`) and that row's extra arguments, with the
    --gradient-args ablation for gradient rows."""
    method, extra = VARIANTS.get(method, (method, {}))
    return method, {**extra, **((gradient_args or {}) if method == "gradient" else {})}


def top3(model, task: str, method: str, budget: int, n_starts: int, every: int, seed: int,
         gradient_args: dict | None = None) -> dict:
    objective, max_heavy = TOP3_TASKS[task]
    rounds = max(1, budget // n_starts)
    steps = max(1, (rounds - 1) * every)
    t0 = time.perf_counter()
    method, extra = method_kwargs(method, gradient_args)
    df = optimize(model, objective, n_starts=n_starts, steps=steps, decode_every=every, method=method,
                  budget=rounds, seed=seed, top_k=3, constraints=Constraints(max_heavy_atoms=max_heavy), **extra)
    best = df.sort_values("score", ascending=False).drop_duplicates("smiles").head(3)
    col = f"{objective}_after"
    return {"values": best[col].round(4).tolist(), "smiles": best["smiles"].tolist(),
            "n_decoded": int(df.attrs["n_decoded"]), "n_valid": int(df.attrs["n_valid"]),
            "seconds": round(time.perf_counter() - t0, 1), "n_starts": n_starts, "steps": steps}


def constrained(model, starts: list[str], delta: float, method: str, per_molecule: int, seed: int,
                gradient_args: dict | None = None) -> dict:
    """`molvae.optimize` with its defaults for start molecules (20 decoded molecules per start for every
    method), only the budget per start set from --per-molecule-budget."""
    t0 = time.perf_counter()
    method, extra = method_kwargs(method, gradient_args)
    shape = {"n_starts": per_molecule} if method == "gradient" else {"steps": max(1, per_molecule - 1)}
    kwargs = {**shape, **extra}
    df = optimize(model, "plogp", start=starts, similarity=delta, method=method, budget=per_molecule, seed=seed,
                  **kwargs)
    st = df.attrs["run"].starts
    gain = (st["best_score"] - st["score_before"]).to_numpy()  # plogp objective: score is plogp itself
    ok = np.isfinite(gain) & (gain > 0)
    best = df.set_index("start_id")
    sims = best.loc[best.index.isin(np.flatnonzero(ok)), "similarity"] if len(best) else pd.Series(dtype=float)
    all_gain = np.where(ok, gain, 0.0)
    # The head's error at the reported molecules: its plogp at the latent each was decoded from
    # (logP and SA heads + the molecule's own ring penalty) against RDKit.
    diff = (df["plogp_pred"] - df["plogp_after"]) if len(df) else pd.Series(dtype=float)
    # And the head's prediction for the reported molecules themselves (each re-encoded to its posterior
    # mean, what `MolVAE.predict` returns): is the head right about the molecules the search found?
    encoded = head_error(model, df["smiles"].tolist()) if len(df) else {"n": 0, "mae": float("nan"),
                                                                        "bias": float("nan")}
    return {
        "delta": delta, "n_molecules": len(starts), "success": float(ok.mean()),
        "improvement_success_mean": float(gain[ok].mean()) if ok.any() else float("nan"),
        "improvement_success_std": float(gain[ok].std()) if ok.any() else float("nan"),
        "improvement_all_mean": float(all_gain.mean()), "improvement_all_std": float(all_gain.std()),
        "similarity_mean": float(sims.mean()) if len(sims) else float("nan"),
        "head_mae_at_results": float(diff.abs().mean()) if len(diff) else float("nan"),
        "head_bias_at_results": float(diff.mean()) if len(diff) else float("nan"),
        "head_mae_results_encoded": encoded["mae"], "head_bias_results_encoded": encoded["bias"],
        "n_decoded": int(df.attrs["n_decoded"]), "budget_per_start": int(df.attrs["budget_per_start"]),
        "rejected": df.attrs["rejected"], "settings": df.attrs["settings"], "guidance": df.attrs["guidance"],
        "failed_starts_decodes": where_decodes_go(df.attrs["run"].trajectories, st, ok),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def where_decodes_go(obs: pd.DataFrame, st: pd.DataFrame, ok: np.ndarray) -> dict:
    """Where the decodes of the starts without a success went: counts of invalid, the start itself, below
    the similarity floor, and valid above the floor with no higher plogp."""
    failed = obs[obs["start_id"].isin(st["start_id"].to_numpy()[~ok])]
    below = failed["rejected"].astype(str).str.contains("similarity")
    start = failed["ok"].astype(bool) & ~failed["result"].astype(bool)
    lower = failed["result"].astype(bool)
    return {"starts": int((~ok).sum()), "decodes": len(failed), "invalid": int((~failed["valid"].astype(bool)).sum()),
            "start_itself": int(start.sum()), "below_floor": int(below.sum()), "lower_plogp": int(lower.sum())}


def fitted_heads(model, directory: Path):
    """The head ensemble in `directory`, fitted there first if absent (timed)."""
    from molvae.data.datasets import embedded_path
    from molvae.optimization.heads import HEADS_FILE, HeadEnsemble, fit_heads

    if not (directory / HEADS_FILE).is_file():
        t0 = time.perf_counter()
        smiles = pd.read_csv(embedded_path("train")).iloc[:8000, 0].tolist()
        fit_heads(model, smiles).save(directory)
        print(f"fitted a head ensemble in {directory} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return HeadEnsemble.load(directory)


def head_error(model, smiles: list[str]) -> dict:
    """The head's plogp error (mean absolute, and bias) at the posterior means of `smiles`, against RDKit."""
    from molvae.optimization.objectives import Scorer, parse_objectives

    scorer = Scorer(parse_objectives("plogp"), model.prop_stats, need_guide=True)
    z, rows = model.encode(smiles, on_invalid="skip", return_rows=True)
    kept = [smiles[r] for r in rows]
    rd = chem.properties(kept, ["plogp", "logp", "sa", "plogp_raw"])
    cycle = (rd["logp"] - rd["sa"] - rd["plogp_raw"]).to_numpy()
    with torch.no_grad():
        p = model.model.predict_props(torch.from_numpy(z).to(model.device)).float().cpu().numpy()
    pred = scorer.predicted_values(p, cycle)["plogp"]
    diff = pred - rd["plogp"].to_numpy()
    return {"n": len(kept), "mae": float(np.nanmean(np.abs(diff))), "bias": float(np.nanmean(diff))}


def _fmt_top(r: dict) -> str:
    return " / ".join(f"{v:.3f}" for v in r["values"]) or "none"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the tasks the command line `argv` names; print the table, write --json; returns the results."""
    ap = argparse.ArgumentParser(prog="python -m molvae.bench.optimization_tasks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="checkpoint directory or shipped name (default: molvae.load())")
    ap.add_argument("--budget", type=int, default=5000, help="decoded molecules per top-3 run and method")
    ap.add_argument("--n-starts", type=int, default=100, help="trajectories of the top-3 runs")
    ap.add_argument("--decode-every", type=int, default=10)
    ap.add_argument("--n-molecules", type=int, default=800, help="lowest-plogp MOSES test molecules")
    ap.add_argument("--pool", type=int, default=None, help="pick them among the first N test molecules only")
    ap.add_argument("--subset-stride", type=int, default=1, help="keep every k-th of the --n-molecules (a spread "
                    "subset for development)")
    ap.add_argument("--subset-offset", type=int, default=0, help="the first of them kept (a second subset: "
                    "--subset-stride 4 --subset-offset 2)")
    ap.add_argument("--per-molecule-budget", type=int, default=20, help="decoded molecules per start molecule")
    ap.add_argument("--deltas", default="0.4,0.6")
    ap.add_argument("--methods", default=",".join(METHODS + tuple(VARIANTS)))
    ap.add_argument("--tasks", default=",".join(TOP3_TASKS) + ",constrained")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gradient-args", default="{}", help="JSON of molvae.optimize arguments for the gradient "
                    "rows (an ablation), e.g. '{\"density_weight\": 0}'")
    ap.add_argument("--heads", default=None, help="head ensemble directory for the gradient rows (fitted there "
                    "on the first 8,000 molecules of the embedded MOSES train subset if absent)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-jobs", type=int, default=1, help="processes for the one-off plogp of MOSES test")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", default="bench_optimize.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = [m for m in args.methods.split(",") if m]
    tasks = [t for t in args.tasks.split(",") if t]
    model = molvae.load(args.model, device=args.device)
    print(model, flush=True)
    gradient_args = json.loads(args.gradient_args)
    if args.heads:
        gradient_args["heads"] = fitted_heads(model, Path(args.heads))
    results: dict = {"settings": vars(args), "model": repr(model), "model_path": str(model.path),
                     "hardware": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                                  "device": str(model.device), "torch": torch.__version__},
                     "references": REFERENCES, "top3": {}, "constrained": {}}
    for task in [t for t in tasks if t in TOP3_TASKS]:
        for method in methods:
            try:
                r = top3(model, task, method, args.budget, args.n_starts, args.decode_every, args.seed,
                         gradient_args)
            except MolvaeError as exc:  # e.g. a model whose head cannot guide this objective
                print(f"top-3 {task:<9} {method:<8} skipped: {exc}", flush=True)
                continue
            results["top3"].setdefault(task, {})[method] = r
            print(f"top-3 {task:<9} {method:<8} {_fmt_top(r):<26} decoded {r['n_decoded']:>6}  {r['seconds']:>7.1f} s",
                  flush=True)
    if "constrained" in tasks:
        low = lowest_plogp(args.n_molecules, args.pool, args.n_jobs).iloc[args.subset_offset::args.subset_stride]
        low = low.reset_index(drop=True)
        results["constrained_starts"] = {"n": len(low), "plogp_mean": float(low["plogp"].mean()),
                                         "plogp_max": float(low["plogp"].max()), "pool": args.pool}
        from molvae.data import fetch_moses

        test = pd.read_csv(fetch_moses()["test"])["SMILES"].head(1000).tolist()
        results["head_error"] = {"moses_test_first_1000": head_error(model, test),
                                 "starts": head_error(model, low["smiles"].tolist())}
        print(f"head plogp error (MAE, bias): first 1000 MOSES test {results['head_error']['moses_test_first_1000']}, "
              f"starts {results['head_error']['starts']}", flush=True)
        for delta in (float(d) for d in args.deltas.split(",")):
            for method in methods:
                try:
                    r = constrained(model, low["smiles"].tolist(), delta, method, args.per_molecule_budget, args.seed,
                                    gradient_args)
                except MolvaeError as exc:
                    print(f"delta {delta} {method:<8} skipped: {exc}", flush=True)
                    continue
                results["constrained"].setdefault(str(delta), {})[method] = r
                print(f"delta {delta} {method:<8} success {r['success']:.1%}  improvement "
                      f"{r['improvement_success_mean']:.2f} +- {r['improvement_success_std']:.2f} (successes), "
                      f"{r['improvement_all_mean']:.2f} +- {r['improvement_all_std']:.2f} (all)  head MAE at results "
                      f"{r['head_mae_at_results']:.2f} (re-encoded {r['head_mae_results_encoded']:.2f})  "
                      f"{r['seconds']:.1f} s", flush=True)
                print(f"  decodes of the {r['failed_starts_decodes']['starts']} failed starts: "
                      + ", ".join(f"{k} {v}" for k, v in r["failed_starts_decodes"].items() if k != "starts"), flush=True)
    _print_table(results, args)
    Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    print(f"wrote {args.json}")
    return results


def _print_table(results: dict, args: argparse.Namespace) -> None:
    print()
    print(f"model: {results['model']}")
    if results["top3"]:
        print(f"top-3 runs: budget {args.budget} decoded molecules per method ({args.n_starts} starts, decode "
              f"every {args.decode_every} steps)")
    if results["constrained"]:
        src = f"among the first {args.pool} test molecules" if args.pool else "of MOSES test"
        sub = (f", every {args.subset_stride}th from position {args.subset_offset}" if args.subset_stride > 1
               else "")
        print(f"constrained: the {args.n_molecules} lowest-plogp molecules {src}{sub} "
              f"({results['constrained_starts']['n']} starts), {args.per_molecule_budget} decoded per molecule; "
              "cells: improvement over successes (success) head MAE at results, wall time")
    cols = METHODS + tuple(VARIANTS)
    print(f"{'task':<22} " + " ".join(f"{m:<26}" for m in cols) + " reference")
    refs = {"qed": "GCPN .948/.947/.946", "plogp": "JT-VAE 5.30/4.93/4.49", "plogp_ha38": "-", "plogp_raw": "-"}
    for task, by in results["top3"].items():
        cells = [_fmt_top(by[m]) if m in by else "-" for m in cols]
        print(f"{'top-3 ' + task:<22} " + " ".join(f"{c:<26}" for c in cells) + refs.get(task, ""))
    for delta, by in results["constrained"].items():
        cells = []
        for m in cols:
            r = by.get(m)
            cells.append("-" if r is None else f"{r['improvement_success_mean']:.2f}+-{r['improvement_success_std']:.2f}"
                         f" ({r['success']:.1%}) {r['head_mae_at_results']:.1f} {r['seconds']:.0f}s")
        ref = "JT-VAE 1.03+-1.39, GCPN 2.49+-1.30" if delta == "0.4" else ""
        print(f"{'plogp sim>=' + delta:<22} " + " ".join(f"{c:<26}" for c in cells) + ref)


if __name__ == "__main__":
    main()
