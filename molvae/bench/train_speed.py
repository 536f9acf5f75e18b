"""Training speed of molvae's default model against the MOSES VAE (docs/benchmarks.md, "Speed").

Protocol: the same 20k MOSES molecules (data/moses_train_20k.csv), batch 512, 3 warm-up steps then 20
timed steps per model, the same torch threads, in one process. The timed steps of the models are
interleaved in blocks (5 steps of one, then 5 of the other, ...) so that load from other processes on a
shared machine falls on both alike. A molvae step is `molvae.train.forward_backward` (the training loop's
own step: batch tensors, forward under autocast, backward, clipping) with the default TrainConfig's loss
settings at the end of its KL schedule, then Adam's step; a MOSES step is its trainer's (its own collate
from strings included; molvae.bench.moses_reference).

Also reported: model FLOPs per token (multiply-add = 2 FLOPs; training = 3x forward), the achieved FLOP
rate, and its fraction of the machine's measured matmul peak (a 512x512x1536 matmul in bf16 and in fp32,
same threads).

With --recon-minutes M, both models also train for M minutes of training steps each (molvae: `molvae.fit`
with the default TrainConfig and time_budget M minutes, so its lr and KL schedules span the budget; MOSES:
its default config and training step), then reconstruct the first --recon-n molecules of --test
(posterior mean, greedy decoding, exact canonical SMILES match with RDKit; molvae through
`molvae.evaluation.model_metrics.reconstruction_accuracy` and `MolVAE.score`'s teacher-forced nll).

    python -m molvae.bench.train_speed --threads 2 --json bench_train.json [--recon-minutes 5]

Prints a table and writes JSON (--json).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

import molvae
from molvae import data as mdata
from molvae.bench.moses_reference import MosesRunner, import_moses_vae, moses_reconstruct, moses_train_for
from molvae.bench.report import torch_threads, write_json
from molvae.evaluation.model_metrics import reconstruction_accuracy
from molvae.model import VAE, ModelConfig
from molvae.runtime import hardware_summary, resolve_amp
from molvae.train import TrainConfig, forward_backward, step_noise

__all__ = ["MolvaeRunner", "matmul_peak", "speed", "recon_equal_time", "smiles_column", "main"]

VARIANTS = {"default": ("auto", {}), "fp32": ("off", {}), "packed": ("auto", {"pack": True})}


class MolvaeRunner:
    """molvae's training step on `enc`: `forward_backward` and Adam's step, with the default TrainConfig's
    loss settings (KL weight beta_end, prop_weight, free_bits, prop_on_samples, grad_clip)."""

    def __init__(self, name: str, enc: mdata.EncodedData, vocab: mdata.Vocabulary, batch: int, amp: str,
                 model_overrides: dict[str, Any], seed: int = 0):
        self.name, self.enc = name, enc
        self.cfg = TrainConfig(batch_size=batch, amp=amp, model=model_overrides, seed=seed)
        torch.manual_seed(seed)
        self.model = VAE(ModelConfig(vocab_size=len(vocab), n_props=enc.props.shape[1], pad_id=vocab.pad_id,
                                     bos_id=vocab.bos_id, eos_id=vocab.eos_id, max_len=self.cfg.max_len + 2,
                                     **model_overrides))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr)
        self.device = torch.device("cpu")
        self.amp_dtype = resolve_amp(amp, self.device)
        self.batches = mdata.batches(enc.lengths, batch, True, seed, 0)
        self.step_i = 0

    def step(self) -> tuple[int, int, int]:
        """One training step; returns (molecules, real tokens, padded tokens computed on)."""
        cfg, idx = self.cfg, self.batches[self.step_i % len(self.batches)]
        eps = step_noise(cfg.seed, self.step_i, len(idx), self.model.cfg.latent_dim)
        self.model.train()
        res, _ = forward_backward(self.model, self.opt, self.enc, idx, eps, float(len(idx)), beta=cfg.beta_end,
                                  lambda_=cfg.prop_weight, free_bits=cfg.free_bits,
                                  prop_on_samples=cfg.prop_on_samples, grad_clip=cfg.grad_clip, device=self.device,
                                  amp_dtype=self.amp_dtype)
        self.opt.step()
        float(res["loss"].detach())
        self.step_i += 1
        lengths = self.enc.lengths[idx]
        return len(idx), int(lengths.sum()), int(lengths.max()) * len(idx)

    def flops_per_token(self) -> float:
        """Forward FLOPs per token of the model (`VAE.flops_per_token`)."""
        return self.model.flops_per_token()["total"]


def smiles_column(path: str | Path, n: int | None = None) -> list[str]:
    """The first `n` (default: all) SMILES of a molecule file, as written."""
    df, col = mdata.read_table(path)
    return df[col].astype(str).tolist()[:n]


def matmul_peak(dtype: torch.dtype | None, reps: int = 20) -> float:
    """GFLOP/s of a 512x512x1536 matmul (fp32, or under bf16 autocast when `dtype` is torch.bfloat16)."""
    a, b = torch.randn(512, 512), torch.randn(512, 1536)
    ctx = torch.autocast("cpu", dtype=dtype) if dtype else contextlib.nullcontext()
    with ctx:
        for _ in range(3):
            a @ b
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        dt = time.perf_counter() - t
    return 2 * 512 * 512 * 1536 * reps / dt / 1e9


def speed(runners: Sequence[Any], steps: int, warmup: int, block: int) -> list[dict[str, Any]]:
    """Time `steps` steps of each runner after `warmup` untimed ones, interleaved in blocks of `block` steps.
    One row per runner: mol_per_s, tokens_per_s, s_per_step (seconds), padding_overhead (padded / real
    tokens - 1), params, train_flops_per_token (3x forward), gflops_per_s."""
    for r in runners:
        for _ in range(warmup):
            r.step()
    totals = {r.name: [0.0, 0, 0, 0] for r in runners}
    done = 0
    while done < steps:
        n = min(block, steps - done)
        for r in runners:
            for _ in range(n):
                t = time.perf_counter()
                mols, toks, padded = r.step()
                tot = totals[r.name]
                tot[0] += time.perf_counter() - t
                tot[1] += mols
                tot[2] += toks
                tot[3] += padded
        done += n
        print(f"  {done}/{steps} steps: " + ", ".join(f"{k} {v[1] / v[0]:.0f} mol/s" for k, v in totals.items()),
              file=sys.stderr, flush=True)
    rows = []
    for r in runners:
        secs, mols, toks, padded = totals[r.name]
        fpt = r.flops_per_token()
        rows.append({"model": r.name, "seconds": secs, "steps": steps, "mol_per_s": mols / secs,
                     "tokens_per_s": toks / secs, "s_per_step": secs / steps, "padding_overhead": padded / toks - 1,
                     "params": sum(p.numel() for p in r.model.parameters()), "train_flops_per_token": 3 * fpt,
                     "gflops_per_s": 3 * fpt * toks / secs / 1e9})
    return rows


def recon_equal_time(minutes: float, data: str, test: list[str], moses: Any, moses_smiles: list[str],
                     threads: int) -> dict[str, Any]:
    """Train molvae (`molvae.fit`, default TrainConfig, time_budget `minutes`) and the MOSES VAE (its default
    config) for `minutes` of training steps each, then reconstruct `test` with both."""
    secs = minutes * 60
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        cfg = TrainConfig(data=data, time_budget=f"{secs:.3f}s", val_fraction=0.0, density_molecules=0,
                          checkpoint_every="0", progress=False, threads=threads, out=str(Path(tmp) / "model"))
        out = molvae.fit(cfg)
        m_steps = int(pd.read_csv(out / "history.csv")["step"].iloc[-1])
        model = molvae.load(out, device="cpu", n_jobs=1)
        m_acc = reconstruction_accuracy(model, test)["recon_acc"]
        nll = model.score(test)["nll"].to_numpy(float)
        m_nats = float(np.nanmean(nll[np.isfinite(nll)])) if np.isfinite(nll).any() else float("nan")
        n_train = len(smiles_column(data))
    ref_runner = MosesRunner(moses, moses_smiles, moses.parser().parse_args([]).n_batch)
    r_steps, r_epochs = moses_train_for(secs, ref_runner)
    r_acc, r_nats = moses_reconstruct(ref_runner.model, test)
    return {"minutes": minutes, "n_test": len(test), "loadavg": [load0, os.getloadavg()],
            "molvae": {"steps": m_steps, "epochs": m_steps * cfg.batch_size / n_train, "recon_acc": m_acc,
                       "recon_nats_per_mol": m_nats},
            "moses": {"steps": r_steps, "epochs": r_epochs, "recon_acc": r_acc, "recon_nats_per_mol": r_nats}}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m molvae.bench.train_speed", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(mdata.embedded_path("train")))
    ap.add_argument("--test", default=str(mdata.embedded_path("test")))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--block", type=int, default=5, help="steps per model before switching (interleaving)")
    ap.add_argument("--wheel", default=None, help="molsets-0.3.1 wheel (default: molvae cache / pip download)")
    ap.add_argument("--variants", default="default", help="comma list of molvae variants: default, fp32, packed")
    ap.add_argument("--no-reference", action="store_true", help="skip the MOSES VAE")
    ap.add_argument("--recon-minutes", type=float, default=0.0, help="equal-time reconstruction comparison")
    ap.add_argument("--recon-n", type=int, default=500)
    ap.add_argument("--json", default=None, help="write the results here")
    return ap


def _print_table(result: dict[str, Any]) -> None:
    peak = result["matmul_peak_gflops"]
    print(f"\nhardware: {result['hardware']}\nload average before/after: "
          f"{' '.join(f'{x:.1f}' for x in result['loadavg_before'])} / "
          f"{' '.join(f'{x:.1f}' for x in result['loadavg_after'])}")
    print(f"matmul peak (512x512x1536): bf16 {peak['bf16']:.0f} GFLOP/s, fp32 {peak['fp32']:.0f} GFLOP/s\n")
    head = (f"{'model':<36}{'mol/s':>8}{'tok/s':>9}{'s/step':>8}{'pad':>6}{'MFLOP/tok':>10}{'GFLOP/s':>9}"
            f"{'peak':>7}{'x ref':>7}")
    print(head + "\n" + "-" * len(head))
    for r in result["speed"]:
        x = f"{r['speedup_vs_reference']:.2f}" if r["speedup_vs_reference"] else "-"
        print(f"{r['model']:<36}{r['mol_per_s']:>8.0f}{r['tokens_per_s']:>9.0f}{r['s_per_step']:>8.2f}"
              f"{r['padding_overhead']:>6.0%}{r['train_flops_per_token'] / 1e6:>10.1f}{r['gflops_per_s']:>9.0f}"
              f"{r['fraction_of_peak']:>7.1%}{x:>7}")
    rec = result.get("recon_equal_time")
    if rec:
        print(f"\nreconstruction after {rec['minutes']:g} min each (first {rec['n_test']} test molecules, "
              "greedy from mu, canonical SMILES match):")
        for label, key in (("molvae default", "molvae"), ("MOSES VAE     ", "moses")):
            r = rec[key]
            print(f"  {label}: exact {r['recon_acc']:.1%}, teacher-forced recon {r['recon_nats_per_mol']:.1f} "
                  f"nats/molecule ({r['steps']} steps, {r['epochs']:.2f} epochs)")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark as the command line `argv` says; print the table, write --json; returns the result."""
    args = _parser().parse_args(argv)
    with torch_threads(args.threads):
        return _run(args)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    load = os.getloadavg()
    t, defaults = time.perf_counter(), TrainConfig()
    tokenizer = mdata.Tokenizer(defaults.representation)
    df, _ = mdata.load_molecules(args.data, properties=defaults.properties, tokenizer=tokenizer,
                                 max_len=defaults.max_len, rejected_path=None)
    vocab = mdata.Vocabulary.build(df["tokens"])
    enc = mdata.encode(df, vocab=vocab, prop_names=defaults.properties)
    prep_s = time.perf_counter() - t
    print(f"molvae data: {len(df)} molecules, vocabulary {len(vocab)}, prepared in {prep_s:.0f} s", file=sys.stderr)

    runners: list[Any] = []
    for v in args.variants.split(","):
        amp, overrides = VARIANTS[v]
        precision = "bf16" if resolve_amp(amp, torch.device("cpu")) else "fp32"
        layout = "packed" if overrides.get("pack") else "padded"
        runners.append(MolvaeRunner(f"molvae {v} ({precision}, {layout})", enc, vocab, args.batch, amp, overrides))
    moses = None
    raw_smiles = smiles_column(args.data)
    if not args.no_reference:
        moses = import_moses_vae(args.wheel)
        runners.append(MosesRunner(moses, raw_smiles, args.batch))
    rows = speed(runners, args.steps, args.warmup, args.block) if args.steps > 0 else []
    peak_bf16, peak_fp32 = matmul_peak(torch.bfloat16), matmul_peak(None)
    ref = rows[-1]["mol_per_s"] if moses and rows else None
    for row in rows:
        row["peak_gflops"] = peak_bf16 if "bf16" in row["model"] else peak_fp32
        row["fraction_of_peak"] = row["gflops_per_s"] / row["peak_gflops"]
        row["speedup_vs_reference"] = row["mol_per_s"] / ref if ref else None
    result: dict[str, Any] = {
        "hardware": hardware_summary(), "threads": args.threads, "loadavg_before": load,
        "loadavg_after": os.getloadavg(), "batch": args.batch, "steps": args.steps, "warmup": args.warmup,
        "matmul_peak_gflops": {"bf16": peak_bf16, "fp32": peak_fp32}, "speed": rows, "molvae_data_prep_s": prep_s,
        "moses_wheel": moses.wheel if moses else None}
    if args.recon_minutes > 0 and moses is not None:
        test = smiles_column(args.test, args.recon_n)
        print(f"\ntraining each model for {args.recon_minutes:g} min of training steps ...", file=sys.stderr)
        result["recon_equal_time"] = recon_equal_time(args.recon_minutes, args.data, test, moses, raw_smiles,
                                                      args.threads)
    _print_table(result)
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
