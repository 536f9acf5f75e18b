"""Which latent density to ship as a model's sampling prior: N(0, I) against Gaussian mixtures fitted to
the posterior of MOSES training molecules, by held-out log-likelihood and by the quality of decoded samples.

Posterior-mixture rows keep the posteriors q(z|x) of the first m fit molecules as components. For each
fitted candidate (fit source "posterior" = one draw mu + sigma * eps per molecule, or "means"; a number of
full-covariance components), the mixture is fitted to `--n-fit` training molecules and scored by its mean
log-likelihood (nats per latent) on posterior draws of `--n-heldout` other training molecules (the same
held-out draws for every candidate). Then `--n` latents are drawn from it, decoded (multinomial, T = 1) and
scored: validity, uniqueness, novelty against the model's training set and FCD against the whole MOSES test
split (its ChemNet statistics from the reference cache). N(0, I) is the baseline row.

    python -m molvae.bench.density_priors [--model moses-smiles] [--n 10000] [--n-fit 50000]
        [--components 16 32 64] [--means-components 64] [--json runs/study_density.json]

Prints a table and writes JSON (rows, settings, seconds, hardware). `--train` and `--test` take other molecule
files than MOSES's (the tests: a few).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

import molvae
from molvae.bench.train_speed import smiles_column
from molvae.data import fetch_moses
from molvae.evaluation.fcd import chemnet_moments, frechet_distance
from molvae.evaluation.reference import reference_stats
from molvae.generation.density_fit import encode_posteriors, posterior_draws
from molvae.model.density import fit_mixture, posterior_mixture
from molvae.runtime import hardware_summary

__all__ = ["sample_quality", "main"]


def sample_quality(vae: molvae.MolVAE, z: torch.Tensor, seed: int, test_ref: Any) -> dict[str, float]:
    """Validity, uniqueness, novelty and FCD against `test_ref` (reference statistics) of the molecules decoded
    (multinomial, T = 1) from latents `z` (n, latent_dim)."""
    table = vae.decode_table(z, method="multinomial", temperature=1.0, seed=seed, properties=())
    valid = table[table["valid"]]
    canon = valid["canonical"].tolist()
    fcd = float("nan")  # FCD needs two valid molecules or more
    if len(canon) >= 2:
        mu, sigma, _ = chemnet_moments(canon)
        fcd = frechet_distance(mu, sigma, test_ref.fcd_mu, test_ref.fcd_sigma)
    return {"Valid": float(table["valid"].mean()), "Unique": float(len(set(canon)) / max(1, len(canon))),
            "Novelty": float(valid.drop_duplicates("canonical")["novel"].mean()) if "novel" in valid else float("nan"),
            "FCD/Test": fcd}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the study as the command line `argv` says; print the table, write --json; returns the report."""
    ap = argparse.ArgumentParser(prog="python -m molvae.bench.density_priors", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="moses-smiles")
    ap.add_argument("--n", type=int, default=10_000, help="samples decoded per candidate")
    ap.add_argument("--n-fit", type=int, default=50_000)
    ap.add_argument("--n-heldout", type=int, default=5_000)
    ap.add_argument("--components", type=int, nargs="*", default=[16, 32, 64])
    ap.add_argument("--means-components", type=int, nargs="*", default=[64])
    ap.add_argument("--exemplars", type=int, nargs="*", default=[5000, 20000, 45000],
                    help="posterior-mixture sizes (training molecules kept as components)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train", default=None, help="molecules the fit and held-out sets are drawn from (MOSES train)")
    ap.add_argument("--test", default=None, help="the FCD test set (default: MOSES test)")
    ap.add_argument("--json", type=Path, default=Path("runs/study_density.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    vae = molvae.load(args.model, device="cpu")
    train = smiles_column(args.train or fetch_moses()["train"])
    test_ref = reference_stats(smiles_column(args.test or fetch_moses()["test"]))  # cached after the first run
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(train), args.n_fit + args.n_heldout, replace=False)
    fit_smiles = [train[i] for i in pick[:args.n_fit]]
    held_smiles = [train[i] for i in pick[args.n_fit:]]
    mu, logvar = encode_posteriors(vae, fit_smiles)
    z_held = torch.from_numpy(posterior_draws(*encode_posteriors(vae, held_smiles), args.seed + 1))
    rows = _rows(vae, mu, logvar, z_held, test_ref, args)
    header = f"{'prior':<8} {'source':<10} {'K':>5} {'heldout LL':>10} {'Valid':>6} {'Unique':>6} {'Novelty':>7} " \
             f"{'FCD/Test':>8}"
    print(f"\n{args.model}: {args.n} samples per row, multinomial T=1; fit on {args.n_fit} training molecules")
    print(header)
    for r in rows:
        print(f"{r['prior']:<8} {r['source']:<10} {r['components']:>5} {r['heldout_loglik']:>10.2f} {r['Valid']:>6.3f} "
              f"{r['Unique']:>6.3f} {r['Novelty']:>7.3f} {r['FCD/Test']:>8.3f}")
    report = {"model": args.model, "settings": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
              "hardware": hardware_summary(), "seconds": time.perf_counter() - t_start}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")
    return report


def _rows(vae: molvae.MolVAE, mu: np.ndarray, logvar: np.ndarray, z_held: torch.Tensor, test_ref: Any,
          args: argparse.Namespace) -> list[dict[str, Any]]:
    """N(0, I), then the posterior mixtures, then the fitted mixtures: held-out log-likelihood (nats per
    latent) and sample quality of each."""
    z_post, z_mean = posterior_draws(mu, logvar, args.seed), mu
    rows = []
    gen = torch.Generator().manual_seed(args.seed)
    std_ll = float((-0.5 * (z_held ** 2).sum(1) - 0.5 * vae.latent_dim * np.log(2 * np.pi)).mean())
    t0 = time.perf_counter()
    rows.append({"prior": "N(0, I)", "source": "-", "components": 0, "heldout_loglik": std_ll,
                 **sample_quality(vae, torch.randn(args.n, vae.latent_dim, generator=gen), args.seed, test_ref),
                 "seconds": time.perf_counter() - t0})
    print(rows[-1], flush=True)
    for m in args.exemplars:
        t0 = time.perf_counter()
        density = posterior_mixture(mu[:m], logvar[:m])
        with torch.no_grad():
            ll = float(density.log_prob(z_held.double()).mean())
        z = density.sample(args.n, torch.Generator().manual_seed(args.seed))
        rows.append({"prior": "post-mix", "source": "q(z|x)", "components": m, "heldout_loglik": ll,
                     **sample_quality(vae, z, args.seed, test_ref), "seconds": time.perf_counter() - t0})
        print(rows[-1], flush=True)
    plan = [("posterior", k) for k in args.components] + [("means", k) for k in args.means_components]
    for source, k in plan:
        t0 = time.perf_counter()
        density = fit_mixture(z_post if source == "posterior" else z_mean, k, seed=args.seed)
        fit_s = time.perf_counter() - t0
        ll = float(density.log_prob(z_held.double()).mean())
        z = density.sample(args.n, torch.Generator().manual_seed(args.seed))
        rows.append({"prior": "mixture", "source": source, "components": k, "heldout_loglik": ll,
                     **sample_quality(vae, z, args.seed, test_ref), "fit_seconds": fit_s,
                     "seconds": time.perf_counter() - t0})
        print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    main()
