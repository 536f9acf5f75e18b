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

    python -m molvae.bench.sampling_settings [--model moses-smiles] [--n 10000] [--seed 0]
        [--temperatures 1.0 0.9 0.8 0.7 0.6] [--greedy] [--posterior] [--json runs/sweep_sampling.json]

Prints a table and writes JSON (settings, metrics, seconds, hardware). `--reference` scores against another test
set than MOSES's (`molvae.evaluate`; the tests use a few molecules).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import molvae
from molvae.bench.report import write_json
from molvae import chem
from molvae.evaluation.moses import moses_reference
from molvae.runtime import hardware_summary

__all__ = ["COLUMNS", "macrocycle_share", "score", "run_setting", "main"]

COLUMNS = ("Valid", "Unique@10k", "FCD/Test", "FCD/TestSF", "SNN/Test", "Frag/Test", "Scaf/Test", "IntDiv",
           "Filters", "Novelty", "Ring>=8")


def macrocycle_share(smiles: list[str]) -> float:
    """Share of the parseable SMILES with a ring of 8 or more atoms."""
    mols = [m for m in map(chem.to_mol, smiles) if m is not None]
    big = sum(chem.largest_ring(m) >= 8 for m in mols)
    return big / max(1, len(mols))


def score(smiles: list[str], n_jobs: int | None, reference: str = "moses") -> dict[str, float]:
    """The MOSES metrics of COLUMNS against `reference` (molvae.evaluate) and the share of 8+-atom rings."""
    result = molvae.evaluate(smiles, reference, n_jobs=n_jobs)
    return {**{k: result[k] for k in COLUMNS if k in result}, "Ring>=8": macrocycle_share(smiles)}


def run_setting(vae: molvae.MolVAE, method: str, temperature: float, n: int, seed: int, n_jobs: int | None,
                reference: str = "moses") -> dict[str, Any]:
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
    row = score(list(df["smiles"]), n_jobs, reference)
    return {"method": method, "temperature": temperature, "metrics": row,
            "sample_s": round(t1 - t0, 1), "metrics_s": round(time.perf_counter() - t1, 1)}


def label(row: dict[str, Any]) -> str:
    return f"T = {row['temperature']:g}" if row["method"] == "multinomial" else row["method"]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the sweep as the command line `argv` says; print the table, write --json; returns the report."""
    parser = argparse.ArgumentParser(prog="python -m molvae.bench.sampling_settings",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model name or checkpoint directory (default: shipped)")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 0.9, 0.8, 0.7, 0.6])
    parser.add_argument("--greedy", action="store_true", help="also decode each prior latent greedily")
    parser.add_argument("--posterior", action="store_true",
                        help="also decode the posterior means of N training molecules (diagnostic row)")
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--reference", default="moses", help="test set of molvae.evaluate: moses, embedded or a file")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, default=Path("runs/sweep_sampling.json"))
    args = parser.parse_args(argv)

    vae = molvae.load(args.model, device=args.device)
    settings = ([("multinomial", t) for t in args.temperatures] + ([("greedy", 1.0)] if args.greedy else [])
                + ([("posterior means", 1.0)] if args.posterior else []))
    rows = []
    for method, temperature in settings:
        row = run_setting(vae, method, temperature, args.n, args.seed, args.n_jobs, args.reference)
        rows.append(row)
        print(f"{label(row):18s} " + "  ".join(f"{k} {v:.3f}" for k, v in row["metrics"].items())
              + f"  ({row['sample_s']} s + {row['metrics_s']} s)", flush=True)

    header = "| setting | " + " | ".join(COLUMNS) + " |"
    print("\n" + header + "\n|" + "---|" * (len(COLUMNS) + 1))
    for row in rows:
        cells = [f"{row['metrics'][k]:.3f}" if k in row["metrics"] else "-" for k in COLUMNS]
        print(f"| {label(row)} | " + " | ".join(cells) + " |")

    out = {"model": vae.name, "model_path": str(vae.path), "n": args.n, "seed": args.seed, "rows": rows,
           "hardware": hardware_summary(vae.device)}
    write_json(args.json, out, indent=1)
    return out


if __name__ == "__main__":
    main()
