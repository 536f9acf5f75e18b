"""Choose the default model by measurement: SELFIES vs SMILES, and two model sizes, trained with the same
budget on the same molecules and scored with the MOSES metrics (docs/benchmarks.md, "Distribution learning").

Each variant trains for --epochs on a seeded random subset of MOSES train (--n-train molecules), then
samples --n-samples molecules (seed 0) from the prior; the table has validity, uniqueness, novelty,
FCD/Test, SNN/Test, IntDiv, Filters, exact reconstruction of the first --recon-n MOSES test molecules,
training time and parameter count. It is a small-budget comparison meant to rank the variants, not to
reproduce the published rows.

    python -m molvae.bench.model_variants [--n-train 20000] [--epochs 3] [--n-samples 2000] [--threads 1] \
        [--json runs/compare_variants.json]

Prints a table and writes JSON. `--train`, `--test` and `--reference` point it at other molecules than MOSES
(the tests: a few embedded ones).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

__all__ = ["SIZES", "METRICS", "main"]

SIZES = {
    "default": {},  # ModelConfig defaults: embed 64, bi-GRU encoder 256, latent 64, decoder 2 x 512
    "small": {"enc_hidden": 128, "latent_dim": 32, "dec_hidden": 256, "dec_layers": 2},
}
METRICS = ("Valid", "Unique@1k", "Novelty", "FCD/Test", "SNN/Test", "IntDiv", "Filters")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train and score the variants the command line `argv` names; print the table, write --json; returns it."""
    ap = argparse.ArgumentParser(prog="python -m molvae.bench.model_variants", description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=20_000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--n-samples", type=int, default=2000)
    ap.add_argument("--recon-n", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--variants", default="selfies-default,smiles-default,selfies-small,smiles-small")
    ap.add_argument("--train", default=None, help="molecules the subset is drawn from (default: MOSES train)")
    ap.add_argument("--test", default=None, help="reconstruction molecules (default: MOSES test)")
    ap.add_argument("--reference", default="moses", help="reference of molvae.evaluate: moses, embedded or a file")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--out-dir", default="runs/variants")
    ap.add_argument("--json", default="runs/compare_variants.json")
    args = ap.parse_args(argv)

    import torch

    import molvae
    from molvae.data import fetch_moses
    from molvae.evaluation import evaluate
    from molvae.evaluation.model_metrics import reconstruction_accuracy

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    subset = out_dir / f"moses_train_{args.n_train}.csv"
    if not subset.exists():
        source = args.train or fetch_moses()["train"]
        pd.read_csv(source).sample(args.n_train, random_state=0).to_csv(subset, index=False)
    test = pd.read_csv(args.test or fetch_moses()["test"])["SMILES"].tolist()

    rows = []
    for name in args.variants.split(","):
        rep, size = name.split("-")
        cfg = molvae.TrainConfig(data=str(subset), representation=rep, epochs=args.epochs, batch_size=args.batch_size, seed=0,
                          beta_end=0.5, kl_warmup_epochs=1.0, val_fraction=0.02, val_recon_n=200, patience=0,
                          threads=args.threads, progress=False, out=str(out_dir / name), model=SIZES[size])
        t0 = time.perf_counter()
        if (Path(cfg.out) / "trainer_state.json").exists():
            molvae.fit(cfg.replace(resume=cfg.out))  # finished runs return at once; interrupted ones continue
        else:
            molvae.fit(cfg)
        train_s = time.perf_counter() - t0
        vae = molvae.load(cfg.out, device="cpu", n_jobs=1)
        torch.set_num_threads(args.threads)
        df = vae.sample(args.n_samples, seed=0)
        res = evaluate(df["smiles"].tolist(), reference=args.reference, n_jobs=1, ks=(1000,))
        recon = reconstruction_accuracy(vae, test[: args.recon_n])
        row = {"variant": name, "params": sum(p.numel() for p in vae.model.parameters()),
               **{m: res.get(m, float("nan")) for m in METRICS}, "recon": recon["recon_acc"],
               "train_s": round(train_s, 1)}
        rows.append(row)
        print(pd.DataFrame([row]).to_string(index=False, float_format=lambda v: f"{v:.3f}"), flush=True)

    table = pd.DataFrame(rows)
    print()
    print(f"{args.n_train} MOSES train molecules, {args.epochs} epochs, {args.n_samples} samples (seed 0), "
          f"{args.threads} thread(s), {platform.processor() or platform.machine()}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    report = {"settings": vars(args), "rows": rows}
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    main()
