"""Check that `molvae.evaluate` agrees with the MOSES reference implementation.

Runs MOSES's own `get_all_metrics` (molsets 0.3.1, imported from the wheel, never installed) and
`molvae.evaluate` on the same fixed sample: generated = `--n-gen` MOSES test molecules with
duplicates, randomized (non-canonical) SMILES, random character mutations and hand-written bad or
odd strings mixed in; reference = `--n-ref` other test molecules and `--n-ref` scaffold-test
molecules; training set = `--n-train` MOSES training molecules plus a fifth of the generated
molecules (so Novelty is neither 0 nor 1). Asserts FCD within 1e-2 relative and every other metric
within 1e-3 (absolute, relative above 1), prints a table, writes JSON, exits 1 on disagreement.

MOSES source (molvae.bench.moses_reference.moses_sources): a molsets wheel or a directory holding the
unpacked ``moses/`` package, from the argument, ``$MOLVAE_MOSES_WHEEL``, or the molvae cache (downloaded
with pip if needed); the MOSES splits come from molvae's verified copy (`molvae data moses`). Shims needed on current libraries: a stub ``rdkit.six`` (SA_Score imports it),
``pandas.DataFrame.append`` (removed in pandas 2), ``np.NaN`` (removed in NumPy 2), and a bare
``moses`` package object so that importing ``moses.metrics`` skips the model zoo. FCD needs
`fcd_torch` (``pip install fcd_torch``); without it, our FCD is compared with the `fcd`
package's own featurization instead, and the report says so.

    python -m molvae.bench.moses_agreement [MOSES] [--n-gen 1000] [--n-ref 5000] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import types
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["import_moses_metrics", "build_sample", "compare", "main"]


FCD_RTOL, TOL = 1e-2, 1e-3
ODD = ["", "C1CC", "c1cccc1", "CC(C)(C)(C)(C)C", "xyz", "CCO.CC", "C[N+](C)(C)C", "CCCCCCCCI", "C1CCCCCCCC1",
       "C[Si](C)(C)C", "c1ccccc1", "CC", "O=C(O)c1ccccc1.[Na+]", "[2H]C([2H])([2H])Oc1ccccc1", "C[C@H](N)C(=O)O"]


def import_moses_metrics(source: str | None) -> tuple[types.ModuleType, bool, Path]:
    """`moses.metrics.metrics` with the shims above, from `source` (see the module docstring); second value:
    whether fcd_torch is real, third: the source directory."""
    from molvae.bench.moses_reference import moses_sources

    six = types.ModuleType("rdkit.six")
    six.iteritems = lambda d: iter(d.items())
    sys.modules.setdefault("rdkit.six", six)
    if not hasattr(pd.DataFrame, "append"):
        pd.DataFrame.append = lambda self, other, sort=False, ignore_index=False: pd.concat(
            [self, other], sort=sort, ignore_index=ignore_index)
    if not hasattr(np, "NaN"):
        np.NaN = np.nan
    if not hasattr(np, "row_stack"):  # fcd_torch stacks activations with it
        np.row_stack = np.vstack
    try:
        import fcd_torch  # noqa: F401
        have_fcd_torch = True
    except ImportError:
        have_fcd_torch = False
        stub = types.ModuleType("fcd_torch")

        class FCD:  # placeholder so moses.metrics imports; never called
            def __init__(self, *a, **k): ...

        stub.FCD = FCD
        sys.modules["fcd_torch"] = stub
    src = moses_sources(source or os.environ.get("MOLVAE_MOSES_WHEEL") or None)
    import moses.metrics.metrics as mm

    return mm, have_fcd_torch, src


def mutate(smiles: str, rng: random.Random) -> str:
    """`smiles` with one random character deleted, inserted or substituted (a typo)."""
    i = rng.randrange(len(smiles))
    op = rng.choice("dis")
    ch = rng.choice("CNOc1()=")
    if op == "d":
        return smiles[:i] + smiles[i + 1:]
    return smiles[:i] + ch + smiles[i + (op == "s"):]


def build_sample(n_gen: int, n_ref: int, n_train: int, seed: int) -> dict[str, list[str]]:
    """The fixed sample (see the module docstring): "gen", "ref", "ref_sf" and "train" SMILES lists."""
    from rdkit import Chem

    from molvae.data import fetch_moses

    data = fetch_moses()
    test = pd.read_csv(data["test"])["SMILES"].tolist()
    scaf = pd.read_csv(data["test_scaffolds"])["SMILES"].tolist()
    train = pd.read_csv(data["train"])["SMILES"]
    rng = random.Random(seed)
    pick = rng.sample(range(len(test)), n_ref + n_gen)
    ref = [test[i] for i in pick[:n_ref]]
    base = [test[i] for i in pick[n_ref:]]
    gen = list(base)
    n = len(gen)
    for i in rng.sample(range(n), n // 10):  # the same molecule, written differently
        gen[i] = Chem.MolToSmiles(Chem.MolFromSmiles(gen[i]), doRandom=True)
    for i in rng.sample(range(n), n // 20):  # typos: some still valid, most not
        gen[i] = mutate(gen[i], rng)
    for i in rng.sample(range(n // 2, n), n // 20):  # duplicates of earlier molecules
        gen[i] = gen[rng.randrange(n // 2)]
    odd = ODD[:max(1, min(len(ODD), n // 10))]
    for j, s in enumerate(odd):
        gen[(j * 7919) % n] = s
    train_sample = train.sample(n_train, random_state=seed).tolist() + rng.sample(base, n // 5)
    return {"gen": gen, "ref": ref, "ref_sf": rng.sample(scaf, min(n_ref, len(scaf))), "train": train_sample}


KEYS = {"valid": "Valid", "IntDiv": "IntDiv", "IntDiv2": "IntDiv2", "Filters": "Filters", "Novelty": "Novelty",
        "logP": "logP", "SA": "SA", "QED": "QED", "weight": "weight"}


def fcd_via_fcd_package(gen_canonical: list[str], ref: list[str]) -> dict[str, float]:
    """Fallback reference for FCD without fcd_torch: the `fcd` package's own featurization."""
    import fcd
    from rdkit import Chem

    def canon(s: str) -> str:
        return Chem.MolToSmiles(Chem.MolFromSmiles(s))

    model = fcd.load_ref_model()
    act_g = fcd.get_predictions(model, [canon(s) for s in gen_canonical], device="cpu")
    act_r = fcd.get_predictions(model, [canon(s) for s in ref], device="cpu")
    return fcd.calculate_frechet_distance(act_g.mean(0), np.cov(act_g.T), act_r.mean(0), np.cov(act_r.T))


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m molvae.bench.moses_agreement", description=__doc__.split("\n\n")[0])
    ap.add_argument("moses", nargs="?", help="molsets wheel or directory with the unpacked moses/ package")
    ap.add_argument("--n-gen", type=int, default=1000)
    ap.add_argument("--n-ref", type=int, default=5000)
    ap.add_argument("--n-train", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--json", default="runs/moses_agreement.json")
    return ap


def _moses_metrics(mm: types.ModuleType, have_fcd_torch: bool, sample: dict[str, list[str]],
                   ks: list[int]) -> dict[str, Any]:
    """MOSES's `get_all_metrics` of the sample (FCD from the `fcd` package when fcd_torch is missing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not have_fcd_torch:  # MOSES's FCD cannot run; give it a dummy and compare FCD separately
            mm.FCDMetric = type("NoFCD", (), {"__init__": lambda self, **k: None,
                                              "precalc": lambda self, s: {},
                                              "__call__": lambda self, gen=None, pref=None: float("nan")})
        theirs = mm.get_all_metrics(sample["gen"], k=ks, n_jobs=1, device="cpu", test=sample["ref"],
                                    test_scaffolds=sample["ref_sf"], train=sample["train"])
        if not have_fcd_torch:
            gen_canon = mm.remove_invalid(sample["gen"], canonize=True)
            theirs["FCD/Test"] = fcd_via_fcd_package(gen_canon, sample["ref"])
            theirs["FCD/TestSF"] = fcd_via_fcd_package(gen_canon, sample["ref_sf"])
    return theirs


def compare(theirs: dict[str, Any], ours: dict[str, Any], ks: Sequence[int]) -> tuple[list[dict[str, Any]], bool]:
    """One row per metric (MOSES's value, ours, |difference|, tolerance, ok) in METRIC_ORDER, and whether all
    agree: FCD within FCD_RTOL relative, the rest within TOL (absolute, relative above 1)."""
    from molvae.evaluation import METRIC_ORDER

    keys = dict(KEYS)
    keys.update({f"unique@{k}": (f"Unique@{k // 1000}k" if k % 1000 == 0 else f"Unique@{k}") for k in ks})
    for m in ("FCD", "SNN", "Frag", "Scaf"):
        keys.update({f"{m}/Test": f"{m}/Test", f"{m}/TestSF": f"{m}/TestSF"})
    rows, ok = [], True
    for theirs_key, ours_key in keys.items():
        a, b = float(theirs[theirs_key]), ours.get(ours_key)
        if b is None:
            rows.append({"metric": ours_key, "moses": a, "molvae": None, "diff": None, "ok": False,
                         "note": ours["skipped"].get(ours_key, "missing")})
            ok = False
            continue
        diff = abs(a - b)
        tol = FCD_RTOL * abs(a) if ours_key.startswith("FCD") else TOL * max(1.0, abs(a))
        good = bool(diff <= tol)
        ok &= good
        rows.append({"metric": ours_key, "moses": a, "molvae": b, "diff": diff, "tol": tol, "ok": good})
    rows.sort(key=lambda r: (METRIC_ORDER.index(r["metric"]) if r["metric"] in METRIC_ORDER else 1.5, r["metric"]))
    return rows, ok


def _print_table(report: dict[str, Any], ours: dict[str, Any]) -> None:
    print(f"MOSES source: {report['moses_source']}; FCD reference: {report['fcd_reference']}")
    print(f"sample: {report['n_gen']} generated ({ours['n_valid']} valid, {ours['n_unique']} unique), "
          f"{report['n_ref']} test, {report['n_ref_sf']} scaffold test, {report['n_train']} train")
    print(f"{'metric':<12} {'MOSES':>12} {'molvae':>12} {'|diff|':>10} {'tol':>9}  ok")
    for r in report["rows"]:
        if r["molvae"] is None:
            print(f"{r['metric']:<12} {r['moses']:>12.6f} {'skipped':>12}  {r['note']}")
        else:
            print(f"{r['metric']:<12} {r['moses']:>12.6f} {r['molvae']:>12.6f} {r['diff']:>10.2e} {r['tol']:>9.1e}"
                  f"  {'yes' if r['ok'] else 'NO'}")
    sec = report["seconds"]
    print(f"time: MOSES {sec['moses']:.1f} s, molvae {sec['molvae']:.1f} s; "
          f"agreement: {'PASS' if report['pass'] else 'FAIL'}")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the check as the command line `argv` says; print the table, write --json; returns the report (its
    "pass"). As a command it exits 1 on disagreement."""
    args = _parser().parse_args(argv)
    import torch

    from molvae.chem import rdkit_quiet
    from molvae.evaluation import evaluate

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, args.n_jobs))
    try:
        mm, have_fcd_torch, src = import_moses_metrics(args.moses)
        sample = build_sample(args.n_gen, args.n_ref, args.n_train, args.seed)
        ks = sorted({max(1, args.n_gen // 10), max(1, args.n_gen // 2)})
        t0 = time.perf_counter()
        with rdkit_quiet():
            theirs = _moses_metrics(mm, have_fcd_torch, sample, ks)
        t_moses = time.perf_counter() - t0
        ours = evaluate(sample["gen"], reference=sample["ref"], test_scaffolds=sample["ref_sf"],
                        train=sample["train"], ks=ks, n_jobs=args.n_jobs, kl_score=False, cache=False)
        t_ours = time.perf_counter() - t0 - t_moses
    finally:
        torch.set_num_threads(threads)
    rows, ok = compare(theirs, ours, ks)
    fcd_ref = "fcd_torch (MOSES)" if have_fcd_torch else "fcd package featurization (fcd_torch not installed)"
    report = {"pass": ok, "fcd_reference": fcd_ref, "moses_source": str(src), "n_gen": len(sample["gen"]),
              "n_ref": len(sample["ref"]), "n_ref_sf": len(sample["ref_sf"]), "n_train": len(sample["train"]),
              "seed": args.seed, "ks": ks, "seconds": {"moses": round(t_moses, 2), "molvae": round(t_ours, 2)},
              "rows": rows}
    _print_table(report, ours)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    sys.exit(0 if main()["pass"] else 1)
