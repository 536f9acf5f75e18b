"""How the sampling settings move the MOSES metrics of one model: softmax temperature and decoding method.

For each setting, N molecules are drawn from the prior N(0, I) with one seed and scored with the MOSES
suite against the MOSES test, scaffold-test and training sets (`molvae.evaluate`). The README's
results row uses temperature 1.0 (the model's own distribution); this table shows what a user trades by
lowering it: a temperature below 1 sharpens each token's softmax, which moves samples toward the
decoder's most likely molecules (better distribution match, less diversity and novelty).

`--posterior` adds a diagnostic row: the posterior means of N random MOSES training molecules are
decoded (multinomial, T = 1) instead of prior draws. Its FCD is what the decoder reaches when the latent
codes are the data's own, so it separates decoder error from prior/posterior mismatch. "Ring>=8" is the
share of valid samples with a ring of 8 or more atoms, which MOSES's filters reject.

    python scripts/sweep_sampling.py [--model moses-smiles] [--n 10000] [--seed 0]
        [--temperatures 1.0 0.9 0.8 0.7 0.6] [--greedy] [--posterior] [--json runs/sweep_sampling.json]

Prints a table and writes JSON (settings, metrics, seconds, hardware).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import molvae
from molvae import chem
from molvae.evaluation.moses import moses_reference
from molvae.runtime import hardware_summary

REPO = Path(__file__).resolve().parents[1]

COLUMNS = ("Valid", "Unique@10k", "FCD/Test", "FCD/TestSF", "SNN/Test", "Frag/Test", "Scaf/Test", "IntDiv",
           "Filters", "Novelty", "Ring>=8")


def macrocycle_share(smiles: list[str]) -> float:
    """Share of the parseable SMILES with a ring of 8 or more atoms."""
    mols = [m for m in map(chem.to_mol, smiles) if m is not None]
    big = sum(chem.largest_ring(m) >= 8 for m in mols)
    return big / max(1, len(mols))


def score(smiles: list[str], n_jobs: int | None) -> dict:
    result = molvae.evaluate(smiles, "moses", n_jobs=n_jobs)
    return {**{k: result[k] for k in COLUMNS if k in result}, "Ring>=8": macrocycle_share(smiles)}


def run_setting(vae, method: str, temperature: float, n: int, seed: int, n_jobs: int | None) -> dict:
    """Generate n molecules with one setting and score them; returns metrics and seconds.

    method "posterior means" decodes (multinomial, at `temperature`) the posterior means of n random
    MOSES training molecules; any other method samples from the prior."""
    t0 = time.perf_counter()
    if method == "posterior means":
        train = moses_reference()["train"]
        pick = np.random.default_rng(seed).choice(len(train), size=n, replace=False)
        z = vae.encode([train[i] for i in pick], on_invalid="skip")
        df = vae.decode_table(z, method="multinomial", temperature=temperature, seed=seed, properties=None)
    else:
        df = vae.sample(n, temperature=temperature, seed=seed, method=method, properties=None)
    t1 = time.perf_counter()
    row = score(list(df["smiles"]), n_jobs)
    return {"method": method, "temperature": temperature, "metrics": row,
            "sample_s": round(t1 - t0, 1), "metrics_s": round(time.perf_counter() - t1, 1)}


def label(row: dict) -> str:
    return f"T = {row['temperature']:g}" if row["method"] == "multinomial" else row["method"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model name or checkpoint directory (default: shipped)")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 0.9, 0.8, 0.7, 0.6])
    parser.add_argument("--greedy", action="store_true", help="also decode each prior latent greedily")
    parser.add_argument("--posterior", action="store_true",
                        help="also decode the posterior means of N training molecules (diagnostic row)")
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--json", type=Path, default=REPO / "runs" / "sweep_sampling.json")
    args = parser.parse_args()

    vae = molvae.load(args.model)
    settings = ([("multinomial", t) for t in args.temperatures] + ([("greedy", 1.0)] if args.greedy else [])
                + ([("posterior means", 1.0)] if args.posterior else []))
    rows = []
    for method, temperature in settings:
        row = run_setting(vae, method, temperature, args.n, args.seed, args.n_jobs)
        rows.append(row)
        print(f"{label(row):18s} " + "  ".join(f"{k} {v:.3f}" for k, v in row["metrics"].items())
              + f"  ({row['sample_s']} s + {row['metrics_s']} s)", flush=True)

    header = "| setting | " + " | ".join(COLUMNS) + " |"
    print("\n" + header + "\n|" + "---|" * (len(COLUMNS) + 1))
    for row in rows:
        cells = [f"{row['metrics'][k]:.3f}" if k in row["metrics"] else "-" for k in COLUMNS]
        print(f"| {label(row)} | " + " | ".join(cells) + " |")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    out = {"model": vae.name, "model_path": str(vae.path), "n": args.n, "seed": args.seed, "rows": rows,
           "hardware": hardware_summary(vae.device)}
    args.json.write_text(json.dumps(out, indent=1))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
