"""Fine-tuning on one assay series: the shipped model unchanged vs fine-tuned (`--init`) vs from scratch,
and sparse labels vs dropping the unlabelled rows. Prints a table and writes JSON.

Data: a ChEMBL series shipped in RDKit's wheel (rdkit/Contrib/FreeWilson/data/CHEMBL2321810: 1,017
molecules with a pIC50 column `Act`), split 80/20 by `--seed`: the held-out fifth is the reference
for FCD and for the head's MAE/R^2. Every variant trains with the settings `molvae train` gives it
(fine-tuning: `FINE_TUNE_DEFAULTS`; from scratch: the TrainConfig defaults with --repr smiles),
for `--epochs` epochs, and samples `--n-samples` molecules from its learned latent density.

Columns: valid and unique (of the samples), nn_sim (mean over valid samples of the Tanimoto
similarity, Morgan radius 2, 2048 bits, to the nearest training-series molecule), fcd (against the
held-out molecules), novel (share of valid samples not in the training series), mae / r2 of the
pIC50 head on the held-out molecules, train_min (wall minutes of `fit`, density included).

    python -m molvae.bench.finetuning [--epochs 5] [--n-samples 1000] [--seed 0] [--json runs/bench_finetune.json]
    python -m molvae.bench.finetuning --series my_series.csv --target pIC50     # your own series (CSV with smiles)
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["SERIES", "load_series", "nn_similarity", "score", "main"]

SERIES = "Contrib/FreeWilson/data/CHEMBL2321810"


def load_series(path: str | None = None, target: str = "pIC50") -> pd.DataFrame:
    """The series as smiles, pIC50 (one row per molecule, in file order): `path` (a CSV with a smiles
    column and the `target` column, whose values that are not numbers count as unlabelled), or by default
    the ChEMBL series in RDKit's wheel."""
    import rdkit

    if path is not None:
        df = pd.read_csv(path)
        smiles = next(c for c in df.columns if c.lower() in ("smiles", "canonical_smiles"))
        df = df[[smiles, target]].set_axis(["smiles", "pIC50"], axis=1).dropna(subset=["smiles"])
        return df.assign(pIC50=pd.to_numeric(df["pIC50"], errors="coerce"))  # "NA", ">10": unlabelled
    root = Path(rdkit.__file__).parent / SERIES
    smi = pd.read_csv(f"{root}.smi", sep=" ", header=None, names=["smiles", "Name"])
    act = pd.read_csv(f"{root}_act.csv")
    return smi.merge(act, on="Name").rename(columns={"Act": "pIC50"})[["smiles", "pIC50"]]


def nn_similarity(samples: list[str], series: list[str]) -> float:
    """Mean over `samples` of the highest Tanimoto similarity (Morgan r=2, 2048 bits) to a `series` molecule."""
    from rdkit import DataStructs

    from molvae import chem

    ref = [chem.fingerprint(s) for s in series]
    sims = [max(DataStructs.BulkTanimotoSimilarity(fp, ref)) for s in samples
            if (fp := chem.fingerprint(s)) is not None]
    return float(np.mean(sims)) if sims else float("nan")


def score(model: Any, name: str, train: pd.DataFrame, test: pd.DataFrame, n: int, seed: int,
          train_min: float) -> dict[str, Any]:
    """One table row for `model` (a MolVAE): its `n` samples against the series, its head on `test`."""
    import molvae
    from molvae import chem
    from molvae.evaluation.model_metrics import mae_r2

    df = model.sample(n, seed=seed, properties=())
    valid = df[df["valid"]]
    canon = set(chem.canonical_many(train["smiles"].tolist()))
    uniq = valid["canonical"].drop_duplicates().tolist()
    metrics = molvae.evaluate(uniq, reference=test["smiles"].tolist(), n_jobs=1, kl_score=False, cache=False)
    row = {"model": name, "valid": float(df["valid"].mean()), "unique": len(uniq) / max(len(valid), 1),
           "nn_sim": nn_similarity(uniq, train["smiles"].tolist()), "fcd": metrics.get("FCD/Test", float("nan")),
           "novel": float(np.mean([s not in canon for s in uniq])) if uniq else float("nan"),
           "mae": float("nan"), "r2": float("nan"), "train_min": train_min}
    if "pic50" in getattr(model, "prop_names", ()):
        pred = model.predict(test["smiles"].tolist(), on_invalid="skip")
        truth = test["pIC50"].to_numpy(float)[pred["row"].to_numpy()]
        row["mae"], row["r2"], _ = mae_r2(pred["pic50"].to_numpy(float), truth)  # over the labelled ones
    return row


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train and score the variants as the command line `argv` says; print the table, write --json; returns it."""
    ap = argparse.ArgumentParser(prog="python -m molvae.bench.finetuning", description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="moses-smiles")
    ap.add_argument("--series", default=None, help="a CSV with a smiles column (default: the ChEMBL series)")
    ap.add_argument("--target", default="pIC50", help="the activity column of --series")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--n-samples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="runs/bench_finetune")
    ap.add_argument("--json", default="runs/bench_finetune.json")
    args = ap.parse_args(argv)

    import molvae
    from molvae.runtime import hardware_summary
    from molvae.train import fit
    from molvae.train.config import train_config_from_cli

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    series = load_series(args.series, args.target)
    rng = np.random.default_rng(args.seed)
    is_test = np.zeros(len(series), bool)
    is_test[rng.choice(len(series), len(series) // 5, replace=False)] = True
    train, test = series[~is_test].reset_index(drop=True), series[is_test].reset_index(drop=True)
    half = train.copy()
    half.loc[rng.random(len(half)) < 0.5, "pIC50"] = np.nan
    files = {"full": train, "half": half, "labelled_half": half.dropna()}
    for key, frame in files.items():
        frame.to_csv(work / f"{key}.csv", index=False)

    common = dict(properties=("pIC50",), epochs=args.epochs, seed=args.seed, progress=False)
    variants = {
        "fine-tuned": dict(data=str(work / "full.csv"), init=args.base),
        "from scratch": dict(data=str(work / "full.csv"), representation="smiles"),
        "fine-tuned, half the labels": dict(data=str(work / "half.csv"), init=args.base),
        "fine-tuned, labelled half only": dict(data=str(work / "labelled_half.csv"), init=args.base),
    }
    rows = [score(molvae.load(args.base), f"{args.base} unchanged", train, test, args.n_samples, args.seed, 0.0)]
    for name, options in variants.items():
        cfg = train_config_from_cli(out=str(work / name.replace(" ", "_").replace(",", "")), **common, **options)
        t0 = time.perf_counter()
        out = fit(cfg)
        minutes = (time.perf_counter() - t0) / 60
        rows.append(score(molvae.load(out), name, train, test, args.n_samples, args.seed, minutes))
        print(f"{name}: {minutes:.1f} min", flush=True)

    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    record = {"hardware": hardware_summary(), "series": args.series or SERIES, "n_train": len(train), "n_test": len(test),
              "labels_half": int(half["pIC50"].notna().sum()), "args": vars(args), "rows": rows}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(record, indent=2))
    print(f"wrote {args.json}")
    return record


if __name__ == "__main__":
    main()
