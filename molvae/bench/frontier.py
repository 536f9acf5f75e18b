"""The short protocol of a training cycle: each model's FCD-novelty curve, its FCD at novelty .90, reconstruction.

A lower FCD alone says little: sharper sampling (a lower softmax temperature) lowers FCD by giving up novelty,
so checkpoints are compared on their whole curve. For each model and each temperature, `n` molecules are drawn
(one seed, the model's default prior) and scored: validity, uniqueness, novelty against the MOSES training
split and FCD against the MOSES test split, computed as `molvae.evaluate` computes them (ChemNet moments of
the valid molecules against the shipped test statistics; novelty among distinct valid molecules). FCD at
novelty .90 is read off each curve by linear interpolation between the two temperatures that bracket .90
(NaN when no two do). Then exact reconstruction (greedy, posterior mean) of the first `recon` MOSES
test_scaffolds molecules and of twelve marketed drugs outside MOSES (`DRUGS`).

    python -m molvae.bench.frontier MODEL [MODEL ...] [--n 10000] [--seed 0] [--temperatures 1.1 1.0 0.9 0.8]
        [--top-p 1.0 0.95]  (one curve per nucleus setting)
        [--recon 1000] [--reference moses|embedded] [--json runs/frontier.json]

Prints one table row per model and temperature and writes JSON. Figures and commands: docs/training.md.
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["DRUGS", "TARGET_NOVELTY", "fcd_at_novelty", "sample_point", "model_frontier", "main"]

TARGET_NOVELTY = 0.90
# Twelve marketed drugs, none in MOSES (charged, too heavy, too light or too flexible for its filters, or
# simply absent), written as canonical-ready SMILES without stereo.
DRUGS: dict[str, str] = {
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O", "paracetamol": "CC(=O)Nc1ccc(O)cc1",
    "ibuprofen": "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "caffeine": "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "diazepam": "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21", "fluoxetine": "CNCCC(Oc1ccc(cc1)C(F)(F)F)c1ccccc1",
    "celecoxib": "Cc1ccc(cc1)-c1cc(nn1-c1ccc(cc1)S(N)(=O)=O)C(F)(F)F",
    "metoprolol": "COCCc1ccc(OCC(O)CNC(C)C)cc1", "omeprazole": "COc1ccc2[nH]c(nc2c1)S(=O)Cc1ncc(C)c(OC)c1C",
    "naproxen": "COc1ccc2cc(ccc2c1)C(C)C(=O)O", "lidocaine": "CCN(CC)CC(=O)Nc1c(C)cccc1C",
    "carbamazepine": "NC(=O)N1c2ccccc2C=Cc2ccccc21",
}


def fcd_at_novelty(points: Sequence[dict[str, float]], target: float = TARGET_NOVELTY) -> float:
    """FCD at novelty `target` on the curve through `points` ({"novelty", "fcd"} each), by linear interpolation
    between the two neighbouring points (sorted by novelty) that bracket it; NaN when none do."""
    pts = sorted((p["novelty"], p["fcd"]) for p in points if np.isfinite(p["novelty"]) and np.isfinite(p["fcd"]))
    for (n0, f0), (n1, f1) in zip(pts, pts[1:]):
        if n0 <= target <= n1:
            return f0 if n1 == n0 else f0 + (f1 - f0) * (target - n0) / (n1 - n0)
    return float("nan")


def _reference(name: str, n_jobs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ChemNet mean and covariance of the test split, and the sorted hashes of the training split."""
    from molvae.evaluation.fcd import chemnet_moments
    from molvae.evaluation.moses import moses_reference
    from molvae.evaluation.reference import train_keys
    from molvae.evaluation.shipped import lookup

    if name == "moses":
        sets = moses_reference()
        test, train = sets["test"], sets["train"]
    else:
        test, train = _embedded("test"), _embedded("train")
    shipped = lookup(test, kl=False)
    mu, sigma = (shipped[0]["fcd_mu"], shipped[0]["fcd_sigma"]) if shipped else chemnet_moments(test)[:2]
    return mu, sigma, train_keys(train, n_jobs, cache=True)


def sample_point(model: Any, temperature: float, n: int, seed: int, reference: tuple[np.ndarray, ...],
                 n_jobs: int = 1, top_p: float = 1.0) -> dict[str, float]:
    """Validity, uniqueness (distinct valid / valid), novelty (of distinct valid) and FCD/Test of `n` samples."""
    from molvae import chem
    from molvae.evaluation.fcd import chemnet_moments, frechet_distance
    from molvae.files import smiles_hash

    t0 = time.perf_counter()
    df = model.sample(n, temperature=temperature, seed=seed, properties=(), top_p=top_p)
    sample_s = time.perf_counter() - t0
    valid = [c for c in chem.canonical_many(df["smiles"].tolist(), n_jobs) if c]
    counts = Counter(valid)
    distinct = list(counts)
    mu_ref, sigma_ref, train = reference
    hashes = np.fromiter((smiles_hash(s) for s in distinct), dtype=np.uint64, count=len(distinct))
    fcd = float("nan")
    if len(valid) >= 2:
        mu, sigma, _ = chemnet_moments(distinct, np.array([counts[s] for s in distinct], dtype=np.float64))
        fcd = frechet_distance(mu, sigma, mu_ref, sigma_ref)
    return {"temperature": temperature, "top_p": top_p, "valid": len(valid) / n, "unique": len(distinct) / max(1, len(valid)),
            "novelty": float((~np.isin(hashes, train)).mean()) if distinct else float("nan"), "fcd": fcd,
            "sample_s": round(sample_s, 1), "metrics_s": round(time.perf_counter() - t0 - sample_s, 1)}


def _round_trip(model: Any, smiles: Sequence[str]) -> tuple[int, list[bool]]:
    """(molecules the model could encode, exact greedy round trip of each input in order)."""
    df = model.reconstruct(list(smiles), on_invalid="skip", properties=())
    exact = dict(zip(df["row"], df["exact"])) if len(df) else {}
    return len(df), [bool(exact.get(i, False)) for i in range(len(smiles))]


def model_frontier(model: Any, temperatures: Sequence[float], n: int, seed: int, reference: tuple[np.ndarray, ...],
                   test_scaffolds: Sequence[str], n_jobs: int = 1, top_p: float = 1.0) -> dict[str, Any]:
    """One model's curve (sampling at each temperature, with nucleus `top_p`), its FCD at novelty .90,
    reconstruction of `test_scaffolds` and of `DRUGS`."""
    points = [sample_point(model, t, n, seed, reference, n_jobs, top_p) for t in temperatures]
    encoded, exact = _round_trip(model, test_scaffolds) if len(test_scaffolds) else (0, [])
    _, drugs = _round_trip(model, list(DRUGS.values()))
    return {"model": str(model.path), "top_p": top_p, "points": points, "fcd_at_novelty": fcd_at_novelty(points),
            "recon_exact": float(np.mean(exact)) if exact else float("nan"), "recon_n": len(exact),
            "recon_encoded": encoded, "drugs_exact": [name for name, ok in zip(DRUGS, drugs) if ok]}


def _print(rows: Sequence[dict[str, Any]]) -> None:
    print(f"| model | top-p | T | valid | unique | novelty | FCD/Test | FCD at novelty {TARGET_NOVELTY:.2f} | recon | drugs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        for i, p in enumerate(row["points"]):
            tail = (f"**{row['fcd_at_novelty']:.3f}** | {row['recon_exact']:.3f} | {len(row['drugs_exact'])} of "
                    f"{len(DRUGS)}" if i == 0 else " | | ")
            print(f"| {Path(row['model']).name if i == 0 else ''} | {row['top_p']:g} | {p['temperature']:g} | {p['valid']:.3f} | "
                  f"{p['unique']:.3f} | {p['novelty']:.3f} | {p['fcd']:.3f} | {tail} |")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse `argv`, evaluate every model, print the table, write the JSON; returns what it wrote."""
    import molvae
    from molvae.runtime import hardware_summary

    parser = argparse.ArgumentParser(prog="python -m molvae.bench.frontier", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model names or checkpoint directories")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.1, 1.0, 0.9, 0.8])
    parser.add_argument("--top-p", type=float, nargs="+", default=[1.0],
                        help="nucleus sampling: one curve per value (1: plain temperature sampling)")
    parser.add_argument("--recon", type=int, default=1000, help="first N MOSES test_scaffolds molecules")
    parser.add_argument("--reference", choices=("moses", "embedded"), default="moses")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--json", type=Path, default=Path("runs/frontier.json"))
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    reference = _reference(args.reference, args.n_jobs)
    if args.reference == "moses":
        from molvae.evaluation.moses import moses_reference

        scaffolds = moses_reference()["test_scaffolds"][: args.recon]
    else:
        scaffolds = _embedded("test")[: args.recon]
    rows = []
    for name in args.models:
        model = molvae.load(name)
        for top_p in args.top_p:
            rows.append(model_frontier(model, args.temperatures, args.n, args.seed, reference, scaffolds, args.n_jobs,
                                       top_p))
    _print(rows)
    result = {"n": args.n, "seed": args.seed, "reference": args.reference, "rows": rows,
              "seconds": round(time.perf_counter() - t0, 1), "hardware": hardware_summary(model.device)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.json}")
    return result


def _embedded(split: str) -> list[str]:
    from molvae.data.datasets import embedded_path
    from molvae.data.read import read_table

    df, column = read_table(embedded_path(split))
    return df[column].tolist()


if __name__ == "__main__":
    main()
