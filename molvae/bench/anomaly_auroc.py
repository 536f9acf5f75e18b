"""Benchmark of the anomaly score (`MolVAE.score`): AUROC between held-out MOSES test molecules and
out-of-domain sets that ship with RDKit, and the share of each set flagged out of the domain at the
model's stored threshold.

    flock /tmp/molvae-bench.lock .venv/bin/python -m molvae.bench.anomaly_auroc [--model moses-smiles] [--json out.json]

In-domain: the first 2,000 molecules of MOSES test (data/moses_test_2k.csv; never trained on, not used
for calibration). Out-of-domain sets (files inside the RDKit wheel, molecules also in MOSES train removed,
at most --limit per set, a seeded subset):
  medchem series   ChEMBL series shipped with RDKit Contrib (FreeWilson CHEMBL2321810, PBF EGFR,
                   fraggle ChEMBL_11265, Fastcluster CDK2, FreeWilson c-Met)
  NCI              the first 5,000 NCI compounds (RDConfig.RDDataDir/NCI/first_5K.smi)
  natural-product  NCI compounds with an NP-likeness score >= 1 (RDKit Contrib NP_Score)
  PAINS            WEHI screening compounds that match a PAINS filter (Data/Pains/test_data/wehi_mols.csv)
  reactive         the PubChem examples of the NIBR hit-triage filters (reactive and assay-interfering
                   groups; Contrib/NIBRSubstructureFilters)
AUROC counts molecules the model cannot spell (anomaly = +inf) as detected; `AUROC spellable` is the
same over the molecules the model can spell only. Prints a table and writes JSON. `--sets` and `--n-inside`
measure fewer molecules (the tests).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

__all__ = ["OUT_OF_DOMAIN", "out_of_domain_sets", "auroc", "main"]


def _rdkit_paths() -> tuple[Path, Path]:
    from rdkit import RDConfig

    return Path(RDConfig.RDContribDir), Path(RDConfig.RDDataDir)


def _smi(path: Path, column: int = 0) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts and not line.startswith("#"):
            out.append(parts[column])
    return out


def _sdf(path: Path) -> list[str]:
    from rdkit import Chem

    return [Chem.MolToSmiles(m) for m in Chem.SDMolSupplier(str(path)) if m is not None]


def _np_scores(smiles: list[str]) -> np.ndarray:
    """NP-likeness of each molecule (RDKit Contrib NP_Score, loaded from its file; NaN where unparsable)."""
    import importlib.util

    from rdkit import Chem

    contrib, _ = _rdkit_paths()
    spec = importlib.util.spec_from_file_location("npscorer", contrib / "NP_Score" / "npscorer.py")
    npscorer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(npscorer)

    model = npscorer.readNPModel(str(contrib / "NP_Score" / "publicnp.model.gz"))
    out = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        out.append(npscorer.scoreMol(mol, model) if mol is not None else np.nan)
    return np.asarray(out)


def _medchem_series() -> list[str]:
    contrib, _ = _rdkit_paths()
    return (_smi(contrib / "FreeWilson/data/CHEMBL2321810.smi") + _sdf(contrib / "PBF/testData/egfr.sdf")
            + _smi(contrib / "fraggle/data/ChEMBL_11265_actives.smi") + _smi(contrib / "Fastcluster/cdk2.smi", 1)
            + _sdf(contrib / "FreeWilson/data/cmet_ligands.sdf"))


def _nci() -> list[str]:
    return _smi(_rdkit_paths()[1] / "NCI/first_5K.smi")


def _natural_products() -> list[str]:
    from molvae import chem

    nci = _nci()
    with chem.rdkit_quiet():
        return [s for s, v in zip(nci, _np_scores(nci)) if v >= 1.0]


def _pains() -> list[str]:
    from molvae import chem

    with open(_rdkit_paths()[1] / "Pains/test_data/wehi_mols.csv") as fh:
        wehi = [row[0] for row in csv.reader(fh) if row]
    with chem.rdkit_quiet():
        return [s for s in wehi if chem.pains_match(s)]


def _reactive() -> list[str]:
    contrib, _ = _rdkit_paths()
    nibr = pd.read_csv(contrib / "NIBRSubstructureFilters/SubstructureFilter_HitTriaging_wPubChemExamples.csv")
    return [s for c in ("EX1", "EX2", "EX3", "EX4", "EX5") for s in nibr[c].dropna().astype(str)]


OUT_OF_DOMAIN: dict[str, Callable[[], list[str]]] = {
    "medchem series": _medchem_series, "NCI": _nci, "natural-product": _natural_products, "PAINS": _pains,
    "reactive": _reactive}


def out_of_domain_sets(names: Sequence[str] = tuple(OUT_OF_DOMAIN)) -> dict[str, list[str]]:
    """name -> SMILES of the out-of-domain sets `names`, read from files inside the RDKit wheel."""
    return {name: OUT_OF_DOMAIN[name]() for name in names}


def _clean(vae: Any, smiles: list[str], limit: int, seed: int) -> list[str]:
    """Distinct parsable molecules not in the model's training set, at most `limit` (seeded subset)."""
    from molvae import chem

    with chem.rdkit_quiet():
        canon = [chem.canonical(s) for s in dict.fromkeys(smiles)]
    canon = list(dict.fromkeys(c for c in canon if c))
    known = vae.codec.is_known()
    if known is not None and canon:
        canon = [c for c, k in zip(canon, known(canon)) if not k]
    if len(canon) > limit:
        canon = [canon[i] for i in np.sort(np.random.default_rng(seed).choice(len(canon), limit, replace=False))]
    return canon


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(anomaly of an outside molecule > that of an inside one), ties counted half (infinities allowed)."""
    from scipy.stats import rankdata

    both = np.concatenate([inside, outside])
    ranks = rankdata(both)
    r_out = ranks[len(inside):].sum()
    return float((r_out - len(outside) * (len(outside) + 1) / 2) / (len(inside) * len(outside)))


def _rows(tables: dict[str, pd.DataFrame], inside_name: str) -> list[dict[str, Any]]:
    """One row per set: spellable and flagged-out shares, median NN similarity, and against the in-domain set
    the AUROC of the anomaly score and of each of its terms."""
    ref = tables[inside_name]
    rows = []
    for name, df in tables.items():
        spell = (df["reason"] == "").to_numpy()
        row = {"set": name, "n": len(df), "spellable": float(spell.mean()),
               "flagged_out": float((~df["in_domain"].astype(bool)).mean()),
               "median_nn_similarity": float(df["nn_similarity"].median())}
        if name != inside_name:
            a_in, a_out = ref["anomaly"].to_numpy(), df["anomaly"].to_numpy()
            row["auroc"] = auroc(a_in, a_out)
            row["auroc_spellable"] = auroc(a_in, a_out[spell]) if spell.any() else float("nan")
            for term, sign in (("nll", 1), ("log_density", -1), ("nn_similarity", -1), ("kl", 1)):
                x_in, x_out = sign * ref[term].to_numpy(), sign * df[term].to_numpy()[spell]
                x_in, x_out = x_in[np.isfinite(x_in)], x_out[np.isfinite(x_out)]
                row[f"auroc_{term}"] = auroc(x_in, x_out) if len(x_out) else float("nan")
        rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Score the sets as the command line `argv` says; print the table, write --json; returns the report."""
    ap = argparse.ArgumentParser(prog="python -m molvae.bench.anomaly_auroc", description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="moses-smiles")
    ap.add_argument("--limit", type=int, default=1500, help="molecules per out-of-domain set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="write results here (default runs/bench_score_MODEL.json)")
    ap.add_argument("--terms", default=None, help="also save the raw score tables to this .parquet")
    ap.add_argument("--sets", default=",".join(OUT_OF_DOMAIN), help="comma-separated out-of-domain sets")
    ap.add_argument("--n-inside", type=int, default=2000, help="first MOSES test molecules of the in-domain set")
    args = ap.parse_args(argv)

    import torch

    import molvae
    from molvae.data.datasets import embedded_path

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    vae = molvae.load(args.model, device="cpu")
    if vae.domain is None:
        sys.exit(f"model {args.model} has no calibrated domain: run `molvae domain --model {args.model}`")
    inside = pd.read_csv(embedded_path("test"))["SMILES"].tolist()[: args.n_inside]
    sets = {"MOSES test (in-domain)": inside}
    names = [n.strip() for n in args.sets.split(",") if n.strip()]
    sets.update({k: _clean(vae, v, args.limit, args.seed) for k, v in out_of_domain_sets(names).items()})
    tables = {}
    for name, smiles in sets.items():
        t = time.perf_counter()
        tables[name] = vae.score(smiles)
        print(f"scored {name}: {len(smiles)} molecules in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    rows = _rows(tables, "MOSES test (in-domain)")
    res = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(res.to_string(index=False))
    out = {
        "model": args.model, "threshold": vae.domain.threshold, "quantile": vae.domain.quantile,
        "rows": rows, "seconds": time.perf_counter() - t0, "threads": args.threads,
        "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "command": "flock /tmp/molvae-bench.lock .venv/bin/python -m molvae.bench.anomaly_auroc "
                   + " ".join(sys.argv[1:] if argv is None else argv),
    }
    path = Path(args.json) if args.json else Path("runs") / f"bench_score_{args.model}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    if args.terms:
        pd.concat([d.assign(set=k) for k, d in tables.items()], ignore_index=True).to_parquet(args.terms)
    print(f"wrote {path} ({out['seconds']:.0f} s)", file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
