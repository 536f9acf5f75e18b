"""Sampling speed: molvae against the MOSES VAE reference, same machine, same threads.

Protocol (docs/benchmarks.md, "Speed"): molecules/s for sampling N molecules (default 10,000) from
the prior, RDKit validation included, measured as a ratio against the MOSES VAE
(`moses/vae/model.py` from the molsets 0.3.1 wheel, default config of
`moses/vae/config.py`, vocabulary built from the embedded MOSES training subset).

The reference is untrained: its sampling loop always runs `max_len` = 100 steps (it has no
early exit), so its cost does not depend on its weights. molvae's cost does (a batch ends
when its last molecule has produced EOS, and RDKit time depends on validity), so molvae is
measured with a trained checkpoint (--model), or the shipped default model when there is one.

    python scripts/bench_sample.py --model DIR [--n 10000] [--threads 1] [--json out.json]

Ratios are against the first row (the reference as published: fp32). The reference under
bf16 autocast is shown too, so the part of the gain that comes from bf16 alone is visible.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]


def _module_from_file(name: str, path: Path, replace: dict[str, str] | None = None):
    """Import one file of the MOSES sources without running moses/__init__.py (its metric
    imports need packages molsets pins to versions that no longer install)."""
    source = path.read_text()
    for old, new in (replace or {}).items():
        if old not in source:
            raise RuntimeError(f"shim target {old!r} not found in {path}")
        source = source.replace(old, new)
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, str(path), "exec"), module.__dict__)
    sys.modules[name] = module
    return module


def moses_reference(src: Path, train_smiles: list[str]):
    """The MOSES VAE with its default config and a one-hot char vocabulary, as trained by MOSES.

    Shim: its `sample` builds the end-of-sequence mask as uint8 and negates it with `~`, which
    was a logical not in the PyTorch it was written for and is a bitwise not today; the mask
    is made bool, which restores the original behaviour (and removes a deprecation warning).
    """
    utils = _module_from_file("moses_utils_shim", src / "moses" / "utils.py")
    config = _module_from_file("moses_vae_config_shim", src / "moses" / "vae" / "config.py")
    model = _module_from_file("moses_vae_model_shim", src / "moses" / "vae" / "model.py",
                              {"dtype=torch.uint8": "dtype=torch.bool"})
    cfg = config.get_parser().parse_args([])
    vocab = utils.OneHotVocab.from_data(train_smiles)
    return model.VAE(vocab, cfg).eval(), cfg


def _valid(smiles: list[str]) -> np.ndarray:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")  # a benchmark script, not library code
    out = np.zeros(len(smiles), dtype=bool)
    for i, s in enumerate(smiles):
        mol = Chem.MolFromSmiles(s) if s else None
        out[i] = mol is not None and mol.GetNumAtoms() > 0
    return out


def run_reference(ref, n: int, batch: int, seed: int, bf16: bool = False) -> tuple[float, np.ndarray]:
    """(seconds, validity per molecule) for the reference's own sampling loop (max_len 100,
    as its sample script) plus RDKit validity as MOSES computes it. `bf16` runs it under CPU
    autocast (not how MOSES runs)."""
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    smiles: list[str] = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        while len(smiles) < n:
            smiles.extend(ref.sample(min(batch, n - len(smiles)), max_len=100))
    valid = _valid(smiles)
    return time.perf_counter() - t0, valid


def run_molvae(vae, n: int, batch: int, seed: int, properties: tuple[str, ...] = (),
               n_jobs: int = 1) -> tuple[float, np.ndarray]:
    """(seconds, validity per molecule) for `MolVAE.sample` (decoding, SELFIES -> SMILES,
    RDKit parse and canonical SMILES, and `properties` if any)."""
    t0 = time.perf_counter()
    df = vae.sample(n, seed=seed, batch_size=batch, properties=properties, n_jobs=n_jobs)
    return time.perf_counter() - t0, df["valid"].to_numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="molvae checkpoint directory or shipped name (default: shipped default)")
    ap.add_argument("--n", type=int, default=10_000, help="molecules per measurement")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds the n molecules are split into")
    ap.add_argument("--batch", type=int, default=1024, help="batch size for both models")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for both models (on a loaded machine 1 is far faster than 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--moses-src", default="/tmp/moses_src")
    ap.add_argument("--skip-fp32", action="store_true", help="skip the molvae fp32 row")
    ap.add_argument("--skip-ref-bf16", action="store_true", help="skip the reference-under-bf16-autocast row")
    ap.add_argument("--json", default=str(REPO / "runs" / "bench_sample.json"))
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    import molvae
    import molvae.errors
    from molvae.data import embedded_path

    train = pd.read_csv(embedded_path("train"))["SMILES"].astype(str).tolist()
    load0 = os.getloadavg()[0]
    try:
        molvae.load(args.model, device="cpu")
    except molvae.errors.CheckpointError as exc:
        sys.exit(f"{exc}\nFor example: molvae train --data embedded --epochs 2 --out runs/bench_model, "
                 "then --model runs/bench_model")
    ref, _ = moses_reference(Path(args.moses_src), train)
    fp32, auto = (molvae.load(args.model, device="cpu", precision=p, n_jobs=1) for p in ("fp32", "auto"))
    for vae in (fp32, auto):
        vae.sample(64, seed=123, properties=())  # warm-up (allocator, RDKit imports)
    name = auto.name
    configs = [("MOSES VAE (untrained, fp32, as published)", lambda k, s: run_reference(ref, k, args.batch, s))]
    if not args.skip_ref_bf16:
        configs.append(("MOSES VAE (untrained, bf16 autocast)",
                        lambda k, s: run_reference(ref, k, args.batch, s, bf16=True)))
    if not args.skip_fp32:
        configs.append((f"molvae {name} (fp32)", lambda k, s: run_molvae(fp32, k, args.batch, s)))
    configs.append((f"molvae {name} ({auto.precision})", lambda k, s: run_molvae(auto, k, args.batch, s)))
    configs.append((f"molvae {name} ({auto.precision}) + logp/qed/sa, n_jobs={args.threads}",
                    lambda k, s: run_molvae(auto, k, args.batch, s, ("logp", "qed", "sa"), args.threads)))
    # Interleaved rounds: every configuration runs n/rounds molecules per round, so a change
    # in the load from other users of the machine hits all of them alike.
    sizes = [args.n // args.rounds + (1 if r < args.n % args.rounds else 0) for r in range(args.rounds)]
    totals = {label: [0.0, []] for label, _ in configs}
    for r, k in enumerate(sizes):
        for label, fn in configs:
            seconds, valid = fn(k, args.seed + r)
            totals[label][0] += seconds
            totals[label][1].append(valid)
        print(f"round {r + 1}/{args.rounds} done, load {os.getloadavg()[0]:.2f}", file=sys.stderr)
    rows = [{"model": label, "n": args.n, "seconds": sec, "validity": float(np.concatenate(v).mean())}
            for label, (sec, v) in totals.items()]

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
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
