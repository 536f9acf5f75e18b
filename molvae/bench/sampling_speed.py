"""Sampling speed: molvae against the MOSES VAE reference, same machine, same threads.

Protocol (docs/benchmarks.md, "Speed"): molecules/s for sampling N molecules (default 10,000) from
the prior, RDKit validation included, measured as a ratio against the MOSES VAE
(`moses/vae/model.py` from the molsets 0.3.1 wheel through molvae.bench.moses_reference, default config
of `moses/vae/config.py`, vocabulary built from the embedded MOSES training subset).

The reference is untrained: its sampling loop always runs `max_len` = 100 steps (it has no
early exit), so its cost does not depend on its weights. molvae's cost does (a batch ends
when its last molecule has produced EOS, and RDKit time depends on validity), so molvae is
measured with a trained checkpoint (--model), or the shipped default model when there is one.

    python -m molvae.bench.sampling_speed [--model DIR] [--n 10000] [--threads 1] [--json out.json]

Ratios are against the first row (the reference as published: fp32). The reference under
bf16 autocast is shown too, so the part of the gain that comes from bf16 alone is visible.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch

import molvae
from molvae import chem
from molvae.bench.moses_reference import import_moses_vae, moses_sampler
from molvae.bench.report import torch_threads, write_json
from molvae.bench.train_speed import smiles_column
from molvae.data import embedded_path

__all__ = ["moses_validity", "run_reference", "run_molvae", "interleaved", "main"]


def moses_validity(smiles: Sequence[str]) -> np.ndarray:
    """(n,) bool: RDKit parses the string to a molecule with at least one atom (MOSES's definition)."""
    out = np.zeros(len(smiles), dtype=bool)
    with chem.rdkit_quiet():
        for i, s in enumerate(smiles):
            mol = chem.to_mol(s) if s else None
            out[i] = mol is not None and mol.GetNumAtoms() > 0
    return out


def run_reference(ref: Any, n: int, batch: int, seed: int, bf16: bool = False) -> tuple[float, np.ndarray]:
    """(seconds, validity per molecule) for the reference's own sampling loop (max_len 100, as its sample
    script) plus RDKit validity as MOSES computes it. `bf16` runs it under CPU autocast (not how MOSES runs)."""
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    smiles: list[str] = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        while len(smiles) < n:
            smiles.extend(ref.sample(min(batch, n - len(smiles)), max_len=100))
    valid = moses_validity(smiles)
    return time.perf_counter() - t0, valid


def run_molvae(vae: molvae.MolVAE, n: int, batch: int, seed: int, properties: tuple[str, ...] = (),
               n_jobs: int = 1) -> tuple[float, np.ndarray]:
    """(seconds, validity per molecule) for `MolVAE.sample` (decoding, tokens -> SMILES, RDKit parse and
    canonical SMILES, and `properties` if any)."""
    t0 = time.perf_counter()
    df = vae.sample(n, seed=seed, batch_size=batch, properties=properties, n_jobs=n_jobs)
    return time.perf_counter() - t0, df["valid"].to_numpy()


def interleaved(configs: Sequence[tuple[str, Callable[[int, int], tuple[float, np.ndarray]]]], n: int, rounds: int,
                seed: int) -> list[dict[str, Any]]:
    """Run every configuration on n/rounds molecules per round, round after round, so that a change in the
    load from other users of the machine hits all alike. Rows: model, n, seconds, validity."""
    sizes = [n // rounds + (1 if r < n % rounds else 0) for r in range(rounds)]
    totals: dict[str, list[Any]] = {label: [0.0, []] for label, _ in configs}
    for r, k in enumerate(sizes):
        for label, fn in configs:
            seconds, valid = fn(k, seed + r)
            totals[label][0] += seconds
            totals[label][1].append(valid)
        print(f"round {r + 1}/{rounds} done, load {os.getloadavg()[0]:.2f}", file=sys.stderr)
    return [{"model": label, "n": n, "seconds": sec, "validity": float(np.concatenate(v).mean())}
            for label, (sec, v) in totals.items()]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m molvae.bench.sampling_speed", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="molvae checkpoint directory or shipped name (default: shipped default)")
    ap.add_argument("--n", type=int, default=10_000, help="molecules per measurement")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds the n molecules are split into")
    ap.add_argument("--batch", type=int, default=1024, help="batch size for both models")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for both models (on a loaded machine 1 is far faster than 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", default=str(embedded_path("train")), help="molecules of the reference's vocabulary")
    ap.add_argument("--wheel", default=None, help="molsets-0.3.1 wheel (default: molvae cache / pip download)")
    ap.add_argument("--skip-fp32", action="store_true", help="skip the molvae fp32 row")
    ap.add_argument("--skip-ref-bf16", action="store_true", help="skip the reference-under-bf16-autocast row")
    ap.add_argument("--json", default="runs/bench_sample.json")
    return ap


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark as the command line `argv` says; print the table, write --json; returns the report."""
    args = _parser().parse_args(argv)
    with torch_threads(args.threads):
        return _run(args)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    load0 = os.getloadavg()[0]
    ref = moses_sampler(import_moses_vae(args.wheel), smiles_column(args.train))
    fp32, auto = (molvae.load(args.model, device="cpu", precision=p, n_jobs=1) for p in ("fp32", "auto"))
    for vae in (fp32, auto):
        vae.sample(64, seed=123, properties=())  # warm-up (allocator, RDKit imports)
    name, batch = auto.name, args.batch
    configs: list[tuple[str, Callable[[int, int], tuple[float, np.ndarray]]]] = [
        ("MOSES VAE (untrained, fp32, as published)", lambda k, s: run_reference(ref, k, batch, s))]
    if not args.skip_ref_bf16:
        configs.append(("MOSES VAE (untrained, bf16 autocast)", lambda k, s: run_reference(ref, k, batch, s, True)))
    if not args.skip_fp32:
        configs.append((f"molvae {name} (fp32)", lambda k, s: run_molvae(fp32, k, batch, s)))
    configs.append((f"molvae {name} ({auto.precision})", lambda k, s: run_molvae(auto, k, batch, s)))
    configs.append((f"molvae {name} ({auto.precision}) + logp/qed/sa, n_jobs={args.threads}",
                    lambda k, s: run_molvae(auto, k, batch, s, ("logp", "qed", "sa"), args.threads)))
    rows = interleaved(configs, args.n, args.rounds, args.seed)

    base = rows[0]["n"] / rows[0]["seconds"]
    print(f"\nSampling {args.n:,} molecules per row in {args.rounds} interleaved rounds, RDKit validation "
          f"included; torch threads {args.threads}, batch {args.batch}")
    print(f"{'model':<60} {'mol/s':>9} {'x ref':>7} {'valid':>7} {'seconds':>8}")
    for row in rows:
        rate = row["n"] / row["seconds"]
        row["molecules_per_s"], row["speedup"] = rate, rate / base
        print(f"{row['model']:<60} {rate:>9.1f} {rate / base:>7.2f} {row['validity']:>7.3f} {row['seconds']:>8.1f}")
    load1 = os.getloadavg()[0]
    print(f"load average (1 min) before/after: {load0:.2f}/{load1:.2f} on {os.cpu_count()} cores")
    report = {
        "benchmark": "sampling", "n": args.n, "rounds": args.rounds, "batch": args.batch, "threads": args.threads,
        "rows": rows, "machine": {"platform": platform.platform(), "processor": platform.processor(),
                                  "cores": os.cpu_count(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                                  "load_before": load0, "load_after": load1},
        "torch": torch.__version__, "model": args.model,
    }
    write_json(args.json, report, indent=1)
    return report


if __name__ == "__main__":
    main()
