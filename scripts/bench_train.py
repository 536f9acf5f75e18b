"""Training speed of molvae's default model against the MOSES VAE (docs/benchmarks.md, "Speed").

Protocol: the same 20k MOSES molecules (data/moses_train_20k.csv), batch 512, 3 warm-up steps
then 20 timed steps per model, the same torch threads, in one process. The timed steps of the
models are interleaved in blocks (5 steps of one, then 5 of the other, ...) so that load from
other processes on a shared machine falls on both alike. Each step is everything a training
step costs: building the batch tensors (for MOSES its own collate: per-molecule tensors from
strings), forward, backward, gradient clipping, optimizer step, reading the losses.

Also reported: model FLOPs per token (multiply-add = 2 FLOPs; training = 3x forward), the
achieved FLOP rate, and its fraction of the machine's measured matmul peak (a 512x512x1536
matmul in bf16 and in fp32, same threads).

With --recon-minutes M, both models also train for M minutes of wall time each (molvae: the
default TrainConfig; MOSES: its default config and training loop), then reconstruct the first
--recon-n molecules of data/moses_test_2k.csv (posterior mean, greedy decoding, exact canonical
SMILES match with RDKit).

The MOSES reference is `moses/vae/{model,trainer,misc}.py` from the molsets 0.3.1 wheel
(found with --wheel, or in the molvae cache, or fetched with `pip download --no-deps
molsets==0.3.1`), imported without running the package's __init__ (its metrics need
packages that no longer install); tqdm is stubbed if absent.

    python scripts/bench_train.py --threads 2 --json bench_train.json [--recon-minutes 5]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import types
import zipfile
from pathlib import Path

import torch

from molvae import chem
from molvae import data as mdata
from molvae.data import Tokenizer, Vocabulary
from molvae.model import VAE, ModelConfig
from molvae.runtime import autocast, hardware_summary, resolve_amp
from molvae.train import TrainConfig
from molvae.train.loop import forward_backward, step_noise
from molvae.train.schedules import kl_weight, lr_factor

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------- MOSES import
def import_moses_vae(wheel: str | None) -> types.SimpleNamespace:
    """The MOSES VAE model, trainer and config parser, from the molsets wheel's sources."""
    if wheel is None:
        from molvae.data.datasets import find_moses_wheel

        wheel = str(find_moses_wheel())
    src = Path(tempfile.mkdtemp(prefix="moses_src_"))
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith("moses/vae/") or name in ("moses/utils.py", "moses/interfaces.py"):
                zf.extract(name, src)
    import importlib.machinery

    import torch._dynamo  # noqa: F401  (imported before the stubs below: it inspects module specs)

    package = types.ModuleType("moses")
    package.__path__ = [str(src / "moses")]  # a namespace stand-in: skips moses/__init__.py
    package.__spec__ = importlib.machinery.ModuleSpec("moses", None, is_package=True)
    package.__spec__.submodule_search_locations = package.__path__
    sys.modules["moses"] = package
    try:
        import tqdm.auto  # noqa: F401
    except ImportError:  # the trainer imports tqdm; the benchmark never shows its bars
        for name in ("tqdm", "tqdm.auto"):
            stub = types.ModuleType(name)
            stub.__spec__ = importlib.machinery.ModuleSpec(name, None)
            stub.tqdm = lambda it=None, **kw: it
            sys.modules[name] = stub
    from moses.vae.config import get_parser
    from moses.vae.model import VAE as MosesVAE
    from moses.vae.trainer import VAETrainer

    return types.SimpleNamespace(VAE=MosesVAE, Trainer=VAETrainer, parser=get_parser, wheel=wheel)


def moses_flops_per_token(model) -> float:
    """Forward FLOPs per token of the MOSES VAE (GRU and output matmuls), as VAE.flops_per_token."""
    def gru(rnn):
        f = 0.0
        for layer in range(rnn.num_layers):
            inp = rnn.input_size if layer == 0 else rnn.hidden_size * (2 if rnn.bidirectional else 1)
            f += 2 * 3 * rnn.hidden_size * (inp + rnn.hidden_size) * (2 if rnn.bidirectional else 1)
        return f

    out = 2.0 * model.decoder_fc.in_features * model.decoder_fc.out_features
    return gru(model.encoder_rnn) + gru(model.decoder_rnn) + out


# ------------------------------------------------------------------------------ runners
class MolvaeRunner:
    """molvae's training step (train.forward_backward + optimizer step), default TrainConfig."""

    def __init__(self, name: str, enc: mdata.EncodedData, vocab_size: int, batch: int, amp: str,
                 model_overrides: dict, seed: int = 0):
        self.name, self.enc, self.cfg = name, enc, TrainConfig(batch_size=batch, amp=amp, model=model_overrides)
        torch.manual_seed(seed)
        self.model = VAE(ModelConfig(vocab_size=vocab_size, n_props=enc.props.shape[1],
                                     **model_overrides))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr)
        self.device = torch.device("cpu")
        self.amp_dtype = resolve_amp(amp, self.device)
        self.batches = mdata.batches(enc.lengths, batch, True, seed, 0)
        self.step_i = 0

    def step(self) -> tuple[int, int, int]:
        """One training step; returns (molecules, real tokens, padded tokens)."""
        idx = self.batches[self.step_i % len(self.batches)]
        eps = step_noise(0, self.step_i, len(idx), self.model.cfg.latent_dim)
        self.model.train()
        res, _ = forward_backward(self.model, self.opt, self.enc, idx, eps, float(len(idx)), beta=0.1,
                                  lambda_=1.0, free_bits=0.0, grad_clip=self.cfg.grad_clip, device=self.device,
                                  amp_dtype=self.amp_dtype)
        self.opt.step()
        float(res["loss"].detach())
        self.step_i += 1
        lengths = self.enc.lengths[idx]
        return len(idx), int(lengths.sum()), int(lengths.max()) * len(idx)

    def flops_per_token(self) -> float:
        return self.model.flops_per_token()["total"]


class MosesRunner:
    """The MOSES VAE trainer's inner loop (VAETrainer._train_epoch), default config."""

    def __init__(self, moses, smiles: list[str], batch: int, seed: int = 0):
        self.name = "MOSES VAE (reference)"
        self.config = moses.parser().parse_args([])
        self.config.n_batch = batch
        torch.manual_seed(seed)
        self.trainer = moses.Trainer(self.config)
        vocab = self.trainer.get_vocabulary(smiles)
        self.model = moses.VAE(vocab, self.config)
        self.loader = self.trainer.get_dataloader(self.model, smiles, shuffle=True)
        self.it = iter(self.loader)
        self.opt = torch.optim.Adam(self.trainer.get_optim_params(self.model), lr=self.config.lr_start)
        self.kl_weight = self.config.kl_w_start

    def next_batch(self):
        try:
            return next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            return next(self.it)

    def step(self) -> tuple[int, int, int]:
        self.model.train()
        batch = self.next_batch()
        batch = tuple(x.to(self.model.device) for x in batch)
        kl_loss, recon_loss = self.model(batch)
        loss = self.kl_weight * kl_loss + recon_loss
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.trainer.get_optim_params(self.model), self.config.clip_grad)
        self.opt.step()
        kl_loss.item(), recon_loss.item(), loss.item()
        n_tok = sum(len(x) for x in batch)
        return len(batch), n_tok, n_tok  # packed: no padded work

    def flops_per_token(self) -> float:
        return moses_flops_per_token(self.model)


# ---------------------------------------------------------------------------- measuring
def matmul_peak(dtype: torch.dtype | None, reps: int = 20) -> float:
    """GFLOP/s of a 512x512x1536 matmul (fp32, or under bf16 autocast)."""
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


def speed(runners: list, steps: int, warmup: int, block: int) -> list[dict]:
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


# ----------------------------------------------------------------------- reconstruction
def molvae_train_for(seconds: float, df, tokenizer, vocab, prop_names) -> tuple[VAE, int, float]:
    """Default TrainConfig training (batch, lr/KL schedules for its 10 epochs), stopped after `seconds`."""
    cfg = TrainConfig()
    stats = {n: (float(df[n].mean()), float(df[n].std(ddof=0))) for n in prop_names}
    enc = mdata.encode(df, vocab=vocab, prop_names=prop_names, prop_stats=stats)
    torch.manual_seed(0)
    model = VAE(ModelConfig(vocab_size=len(vocab), n_props=len(prop_names), max_len=cfg.max_len + 2))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    device, amp_dtype = torch.device("cpu"), resolve_amp(cfg.amp, torch.device("cpu"))
    per_epoch = len(mdata.batches(enc.lengths, cfg.batch_size, True, 0, 0))
    total, warm = per_epoch * cfg.epochs, int(cfg.kl_warmup_epochs * per_epoch)
    step, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for idx in mdata.batches(enc.lengths, cfg.batch_size, True, cfg.seed, step // per_epoch):
            if time.perf_counter() - start >= seconds:
                break
            beta = kl_weight(step, cfg.kl_schedule, cfg.beta_start, cfg.beta_end, warm, total)
            for g in opt.param_groups:
                g["lr"] = cfg.lr * lr_factor(step, cfg.lr_schedule, total, 0, cfg.lr_min_factor)
            model.train()
            forward_backward(model, opt, enc, idx, step_noise(0, step, len(idx), model.cfg.latent_dim),
                             float(len(idx)), beta=beta, lambda_=cfg.prop_weight, free_bits=0.0,
                             grad_clip=cfg.grad_clip, device=device, amp_dtype=amp_dtype)
            opt.step()
            step += 1
    return model.eval(), step, step / per_epoch


def molvae_reconstruct(model: VAE, tokenizer: Tokenizer, vocab: Vocabulary, smiles: list[str]) -> tuple[float, float]:
    """(exact canonical reconstruction rate, teacher-forced reconstruction nats per molecule from mu)."""
    hits, nats, n_ok = 0, 0.0, 0
    amp_dtype = resolve_amp("auto", torch.device("cpu"))
    ok_rows, seqs = [], []
    for i, s in enumerate(smiles):
        try:
            toks = tokenizer.tokenize(s)
        except Exception:  # untokenizable molecules count as failures
            continue
        if vocab.unknown_tokens(toks):
            continue
        ok_rows.append(i)
        seqs.append(vocab.encode(toks))
    for start in range(0, len(seqs), 256):
        chunk = seqs[start:start + 256]
        lengths = torch.tensor([len(x) for x in chunk])
        ids = torch.zeros(len(chunk), int(lengths.max()), dtype=torch.long)
        for j, x in enumerate(chunk):
            ids[j, : len(x)] = torch.tensor(x)
        with torch.no_grad(), autocast(torch.device("cpu"), amp_dtype):
            res = model(ids, lengths, sample=False, denom=1.0)
            out = model.greedy_decode(res["mu"])
        nats += float(res["recon"])
        n_ok += len(chunk)
        for j, row in enumerate(out.tolist()):
            try:
                decoded = tokenizer.detokenize(vocab.decode(row))
            except Exception:
                continue
            hits += chem.canonical(decoded) == chem.canonical(smiles[ok_rows[start + j]])
    return hits / len(smiles), nats / max(n_ok, 1)


def moses_train_for(seconds: float, runner: MosesRunner) -> tuple[int, float]:
    """MOSES's loop: epoch 0 of its schedule (kl weight kl_w_start; lr_start), for `seconds`."""
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        runner.step()
        steps += 1
    return steps, steps * runner.config.n_batch / len(runner.loader.dataset)


@torch.no_grad()
def moses_reconstruct(model, smiles: list[str], max_len: int = 100) -> tuple[float, float]:
    """As molvae_reconstruct, for the MOSES VAE (its encoder's mean, argmax in its sampling loop)."""
    model.eval()
    hits, nats = 0, 0.0
    for start in range(0, len(smiles), 256):
        chunk = smiles[start:start + 256]
        x = [model.string2tensor(s) for s in chunk]
        order = sorted(range(len(x)), key=lambda i: -len(x[i]))
        packed = torch.nn.utils.rnn.pack_sequence([model.x_emb(x[i]) for i in order])
        _, h = model.encoder_rnn(packed, None)
        h = h[-(1 + int(model.encoder_rnn.bidirectional)):]
        h = torch.cat(h.split(1), dim=-1).squeeze(0)
        z = model.q_mu(h)  # rows in `order`
        sorted_x = [x[i] for i in order]
        # forward_decoder returns the mean CE over predicted tokens; scale to nats per molecule.
        nats += float(model.forward_decoder(sorted_x, z)) * sum(len(t) - 1 for t in sorted_x)
        n = len(chunk)
        hid = model.decoder_lat(z).unsqueeze(0).repeat(model.decoder_rnn.num_layers, 1, 1)
        w = torch.full((n,), model.bos, dtype=torch.long)
        out = torch.full((n, max_len), model.pad, dtype=torch.long)
        done = torch.zeros(n, dtype=torch.bool)
        for i in range(max_len):
            o, hid = model.decoder_rnn(torch.cat([model.x_emb(w).unsqueeze(1), z.unsqueeze(1)], -1), hid)
            w = model.decoder_fc(o.squeeze(1)).argmax(-1)
            out[~done, i] = w[~done]
            done |= w == model.eos
            if bool(done.all()):
                break
        for j in range(n):
            ids = out[j].tolist()
            ids = ids[: ids.index(model.eos)] if model.eos in ids else ids
            text = model.vocabulary.ids2string(ids, rem_bos=False, rem_eos=False)
            hits += chem.canonical(text) == chem.canonical(chunk[order[j]])
    return hits / len(smiles), nats / len(smiles)


# --------------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT / "data" / "moses_train_20k.csv"))
    ap.add_argument("--test", default=str(ROOT / "data" / "moses_test_2k.csv"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--block", type=int, default=5, help="steps per model before switching (interleaving)")
    ap.add_argument("--wheel", default=None, help="molsets-0.3.1 wheel (default: molvae cache / pip download)")
    ap.add_argument("--variants", default="default", help="comma list of molvae variants: default, fp32, packed")
    ap.add_argument("--no-reference", action="store_true", help="skip the MOSES VAE")
    ap.add_argument("--recon-minutes", type=float, default=0.0, help="equal-wall-time reconstruction comparison")
    ap.add_argument("--recon-n", type=int, default=500)
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()

    t = time.perf_counter()
    tokenizer = Tokenizer(TrainConfig().representation)
    df, report = mdata.load_molecules(args.data, properties=TrainConfig().properties, tokenizer=tokenizer,
                                      max_len=TrainConfig().max_len, rejected_path=None)
    vocab = Vocabulary.build(df["tokens"])
    props = TrainConfig().properties
    enc = mdata.encode(df, vocab=vocab, prop_names=props)
    prep_s = time.perf_counter() - t
    print(f"molvae data: {len(df)} molecules, vocabulary {len(vocab)}, prepared in {prep_s:.0f} s", file=sys.stderr)

    variants = {"default": ("auto", {}), "fp32": ("off", {}), "packed": ("auto", {"pack": True})}
    runners: list = []
    for v in args.variants.split(","):
        amp, overrides = variants[v]
        precision = "bf16" if resolve_amp(amp, torch.device("cpu")) else "fp32"
        layout = "packed" if overrides.get("pack") else "padded"
        runners.append(MolvaeRunner(f"molvae {v} ({precision}, {layout})", enc, len(vocab), args.batch, amp,
                                    overrides))
    moses = None
    raw_smiles = [line.strip() for line in open(args.data)][1:]
    if not args.no_reference:
        moses = import_moses_vae(args.wheel)
        runners.append(MosesRunner(moses, raw_smiles, args.batch))
    rows = speed(runners, args.steps, args.warmup, args.block) if args.steps > 0 else []
    peak_bf16, peak_fp32 = matmul_peak(torch.bfloat16), matmul_peak(None)
    ref = rows[-1]["mol_per_s"] if moses and rows else None
    for row in rows:
        bf16 = "bf16" in row["model"]
        row["peak_gflops"] = peak_bf16 if bf16 else peak_fp32
        row["fraction_of_peak"] = row["gflops_per_s"] / row["peak_gflops"]
        row["speedup_vs_reference"] = row["mol_per_s"] / ref if ref else None
    result = {"hardware": hardware_summary(), "threads": args.threads, "loadavg_before": load,
              "loadavg_after": os.getloadavg(), "batch": args.batch, "steps": args.steps, "warmup": args.warmup,
              "matmul_peak_gflops": {"bf16": peak_bf16, "fp32": peak_fp32}, "speed": rows,
              "molvae_data_prep_s": prep_s, "moses_wheel": moses.wheel if moses else None}

    print(f"\nhardware: {result['hardware']}\nload average before/after: "
          f"{' '.join(f'{x:.1f}' for x in load)} / {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"matmul peak (512x512x1536): bf16 {peak_bf16:.0f} GFLOP/s, fp32 {peak_fp32:.0f} GFLOP/s\n")
    if rows:
        head = (f"{'model':<36}{'mol/s':>8}{'tok/s':>9}{'s/step':>8}{'pad':>6}{'MFLOP/tok':>10}{'GFLOP/s':>9}"
                f"{'peak':>7}{'x ref':>7}")
        print(head + "\n" + "-" * len(head))
    for r in rows:
        x = f"{r['speedup_vs_reference']:.2f}" if r["speedup_vs_reference"] else "-"
        print(f"{r['model']:<36}{r['mol_per_s']:>8.0f}{r['tokens_per_s']:>9.0f}{r['s_per_step']:>8.2f}"
              f"{r['padding_overhead']:>6.0%}{r['train_flops_per_token'] / 1e6:>10.1f}{r['gflops_per_s']:>9.0f}"
              f"{r['fraction_of_peak']:>7.1%}{x:>7}")

    if args.recon_minutes > 0 and moses is not None:
        secs = args.recon_minutes * 60
        test = [line.strip() for line in open(args.test)][1: 1 + args.recon_n]
        print(f"\ntraining each model for {args.recon_minutes:g} min of wall time ...", file=sys.stderr)
        load0 = os.getloadavg()
        model, m_steps, m_epochs = molvae_train_for(secs, df, tokenizer, vocab, props)
        m_acc, m_nats = molvae_reconstruct(model, tokenizer, vocab, test)
        ref_runner = MosesRunner(moses, raw_smiles, moses.parser().parse_args([]).n_batch)
        r_steps, r_epochs = moses_train_for(secs, ref_runner)
        r_acc, r_nats = moses_reconstruct(ref_runner.model, test)
        result["recon_equal_time"] = {
            "minutes": args.recon_minutes, "n_test": len(test), "loadavg": [load0, os.getloadavg()],
            "molvae": {"steps": m_steps, "epochs": m_epochs, "recon_acc": m_acc, "recon_nats_per_mol": m_nats},
            "moses": {"steps": r_steps, "epochs": r_epochs, "recon_acc": r_acc, "recon_nats_per_mol": r_nats},
        }
        print(f"\nreconstruction after {args.recon_minutes:g} min each (first {len(test)} of "
              f"{Path(args.test).name}, greedy from mu, canonical SMILES match):")
        print(f"  molvae default: exact {m_acc:.1%}, teacher-forced recon {m_nats:.1f} nats/molecule "
              f"({m_steps} steps, {m_epochs:.2f} epochs)")
        print(f"  MOSES VAE:      exact {r_acc:.1%}, teacher-forced recon {r_nats:.1f} nats/molecule "
              f"({r_steps} steps, {r_epochs:.2f} epochs)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
