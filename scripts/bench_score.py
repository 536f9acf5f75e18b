"""Benchmark of the anomaly score (`MolVAE.score`): AUROC between held-out MOSES test molecules and
out-of-domain sets that ship with RDKit, and the share of each set flagged out of the domain at the
model's stored threshold.

    flock /tmp/molvae-bench.lock .venv/bin/python scripts/bench_score.py [--model moses-smiles] [--json out.json]

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
same over the molecules the model can spell only. Prints a table and writes JSON.
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

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


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
    contrib, _ = _rdkit_paths()
    sys.path.insert(0, str(contrib / "NP_Score"))
    import npscorer  # RDKit Contrib, shipped in the wheel
    from rdkit import Chem

    model = npscorer.readNPModel(str(contrib / "NP_Score" / "publicnp.model.gz"))
    out = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        out.append(npscorer.scoreMol(mol, model) if mol is not None else np.nan)
    return np.asarray(out)


def out_of_domain_sets() -> dict[str, list[str]]:
    """name -> SMILES, read from files inside the RDKit wheel."""
    from molvae import chem

    contrib, data = _rdkit_paths()
    series = (_smi(contrib / "FreeWilson/data/CHEMBL2321810.smi") + _sdf(contrib / "PBF/testData/egfr.sdf")
              + _smi(contrib / "fraggle/data/ChEMBL_11265_actives.smi") + _smi(contrib / "Fastcluster/cdk2.smi", 1)
              + _sdf(contrib / "FreeWilson/data/cmet_ligands.sdf"))
    nci = _smi(data / "NCI/first_5K.smi")
    with chem.rdkit_quiet():
        np_like = [s for s, v in zip(nci, _np_scores(nci)) if v >= 1.0]
        with open(data / "Pains/test_data/wehi_mols.csv") as fh:
            wehi = [row[0] for row in csv.reader(fh) if row]
        pains = [s for s in wehi if chem.pains_match(s)]
    nibr = pd.read_csv(contrib / "NIBRSubstructureFilters/SubstructureFilter_HitTriaging_wPubChemExamples.csv")
    reactive = [s for c in ("EX1", "EX2", "EX3", "EX4", "EX5") for s in nibr[c].dropna().astype(str)]
    return {"medchem series": series, "NCI": nci, "natural-product": np_like, "PAINS": pains, "reactive": reactive}


def _clean(vae, smiles: list[str], limit: int, seed: int) -> list[str]:
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="moses-smiles")
    ap.add_argument("--limit", type=int, default=1500, help="molecules per out-of-domain set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="write results here (default runs/bench_score_MODEL.json)")
    ap.add_argument("--terms", default=None, help="also save the raw score tables to this .parquet")
    args = ap.parse_args()

    import torch

    import molvae
    from molvae.data.datasets import embedded_path

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    vae = molvae.load(args.model, device="cpu")
    if vae.domain is None:
        sys.exit(f"model {args.model} has no calibrated domain: run `molvae domain --model {args.model}`")
    inside = pd.read_csv(embedded_path("test"))["SMILES"].tolist()
    sets = {"MOSES test (in-domain)": inside}
    sets.update({k: _clean(vae, v, args.limit, args.seed) for k, v in out_of_domain_sets().items()})
    tables = {}
    for name, smiles in sets.items():
        t = time.perf_counter()
        tables[name] = vae.score(smiles)
        print(f"scored {name}: {len(smiles)} molecules in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    ref = tables["MOSES test (in-domain)"]
    rows = []
    for name, df in tables.items():
        spell = (df["reason"] == "").to_numpy()
        row = {"set": name, "n": len(df), "spellable": float(spell.mean()),
               "flagged_out": float((~df["in_domain"].astype(bool)).mean()),
               "median_nn_similarity": float(df["nn_similarity"].median())}
        if name != "MOSES test (in-domain)":
            a_in, a_out = ref["anomaly"].to_numpy(), df["anomaly"].to_numpy()
            row["auroc"] = auroc(a_in, a_out)
            row["auroc_spellable"] = auroc(a_in, a_out[spell]) if spell.any() else float("nan")
            for term, sign in (("nll", 1), ("log_density", -1), ("nn_similarity", -1), ("kl", 1)):
                x_in, x_out = sign * ref[term].to_numpy(), sign * df[term].to_numpy()[spell]
                x_in, x_out = x_in[np.isfinite(x_in)], x_out[np.isfinite(x_out)]
                row[f"auroc_{term}"] = auroc(x_in, x_out) if len(x_out) else float("nan")
        rows.append(row)
    res = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(res.to_string(index=False))
    out = {
        "model": args.model, "threshold": vae.domain.threshold, "quantile": vae.domain.quantile,
        "rows": rows, "seconds": time.perf_counter() - t0, "threads": args.threads,
        "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "command": "flock /tmp/molvae-bench.lock .venv/bin/python scripts/"
               "bench_score.py " + " ".join(sys.argv[1:]),
    }
    path = Path(args.json) if args.json else ROOT / "runs" / f"bench_score_{args.model}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    if args.terms:
        pd.concat([d.assign(set=k) for k, d in tables.items()], ignore_index=True).to_parquet(args.terms)
    print(f"wrote {path} ({out['seconds']:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
