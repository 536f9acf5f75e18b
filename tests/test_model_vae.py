"""Model: shapes, loss terms, padding invariance, step API, KL schedules, overfitting 32 molecules."""
from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from molvae.model import VAE, ModelConfig, kl_divergence
from molvae.runtime import autocast, cpu_supports_bf16, resolve_amp
from molvae.train.schedules import PlateauState, active_units, kl_weight, lr_factor
from molvae.data.tokens import Tokenizer, Vocabulary

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _batch(n: int = 32, representation: str = "smiles") -> tuple[torch.Tensor, torch.Tensor, Vocabulary]:
    with open(DATA / "train_tiny.csv", newline="") as fh:
        smiles = [row["SMILES"] for row in csv.DictReader(fh)][:n]
    tok = Tokenizer(representation)
    tokens = [tok.tokenize(s) for s in smiles]
    vocab = Vocabulary.build(tokens)
    seqs = [vocab.encode(t) for t in tokens]
    lengths = torch.tensor([len(s) for s in seqs])
    ids = torch.full((n, int(lengths.max())), vocab.pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    return ids, lengths, vocab


def _small(vocab: Vocabulary, **kw) -> VAE:
    torch.manual_seed(0)
    cfg = dict(vocab_size=len(vocab), embed_dim=16, enc_hidden=24, latent_dim=8, dec_hidden=32, dec_layers=2)
    cfg.update(kw)
    return VAE(ModelConfig(**cfg))


def test_config_validation_and_round_trip():
    cfg = ModelConfig(vocab_size=30, n_props=3)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="ignore z"):
        ModelConfig(vocab_size=30, z_to_hidden=False, z_every_step=False)
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({"vocab_size": 30, "hidden": 3})
    with pytest.raises(ValueError):
        ModelConfig(vocab_size=2)  # eos id 2 outside the vocabulary


@pytest.mark.parametrize("variant", [
    {}, {"bidirectional": False}, {"z_to_hidden": False}, {"z_every_step": False}, {"enc_layers": 2, "dropout": 0.1},
])
def test_shapes(variant):
    ids, lengths, vocab = _batch(6)
    model = _small(vocab, n_props=3, **variant)
    B, T, Z, V = ids.size(0), ids.size(1), 8, len(vocab)
    mu, logvar = model.encode(ids, lengths)
    assert mu.shape == logvar.shape == (B, Z)
    logits = model.decode_logits(ids[:, :-1], mu)
    assert logits.shape == (B, T - 1, V)
    h = model.init_hidden(mu)
    assert h.shape == (2, B, 32)
    step_logits, h2 = model.step(ids[:, 0], h, mu)
    assert step_logits.shape == (B, V) and h2.shape == h.shape
    assert model.predict_props(mu).shape == (B, 3)
    out = model(ids, lengths, torch.randn(B, 3))
    for key in ("loss", "recon", "kl", "prop", "kl_loss"):
        assert out[key].shape == () and torch.isfinite(out[key])
    assert out["kl_per_dim"].shape == (Z,)
    out["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())


def test_loss_terms_match_definitions():
    ids, lengths, vocab = _batch(8)
    model = _small(vocab, n_props=2)
    props = torch.randn(8, 2)
    eps = torch.randn(8, 8)
    out = model(ids, lengths, props, beta=0.3, lambda_=2.0, eps=eps)
    mu, logvar = model.encode(ids, lengths)
    z = mu + torch.exp(0.5 * logvar) * eps
    logits = model.decode_logits(ids[:, :-1], z)
    ce = F.cross_entropy(logits.reshape(-1, len(vocab)), ids[:, 1:].reshape(-1), ignore_index=vocab.pad_id,
                         reduction="sum") / 8
    kl = kl_divergence(mu, logvar).sum(1).mean()
    prop = F.mse_loss(model.predict_props(mu), props)
    assert torch.allclose(out["recon"], ce, rtol=1e-5)
    assert torch.allclose(out["kl"], kl, rtol=1e-5)
    assert torch.allclose(out["kl_per_dim"].sum(), out["kl"], rtol=1e-5)
    assert torch.allclose(out["prop"], prop, rtol=1e-5)
    assert torch.allclose(out["loss"], ce + 0.3 * kl + 2.0 * prop, rtol=1e-5)
    assert int(out["n_tokens"]) == int((lengths - 1).sum())
    # Free bits raise the KL term of the loss to at least free_bits per dimension, not the reported KL.
    fb = model(ids, lengths, props, free_bits=10.0, eps=eps)
    assert math.isclose(float(fb["kl_loss"]), 80.0, rel_tol=1e-6) and float(fb["kl"]) < 80.0
    # prop_on_samples takes that share of the property loss at the sampled z (validation, sample=False: mu).
    mixed = model(ids, lengths, props, beta=0.3, lambda_=2.0, eps=eps, prop_on_samples=0.25)
    at_z = F.mse_loss(model.predict_props(z), props)
    assert not torch.allclose(at_z, prop, rtol=1e-3)
    assert torch.allclose(mixed["prop"], 0.75 * prop + 0.25 * at_z, rtol=1e-5)
    assert torch.allclose(mixed["recon"], out["recon"]) and torch.allclose(mixed["kl"], out["kl"])
    assert torch.allclose(model(ids, lengths, props, sample=False, prop_on_samples=1.0)["prop"], prop, rtol=1e-5)
    # denom rescales every term (data-parallel shards).
    half = model(ids, lengths, props, beta=0.3, lambda_=2.0, eps=eps, denom=4.0)
    assert torch.allclose(half["loss"], 2 * out["loss"], rtol=1e-5)


def test_padding_and_packing_do_not_change_results():
    ids, lengths, vocab = _batch(8)
    model = _small(vocab).eval()
    padded = torch.cat([ids, torch.zeros(8, 9, dtype=torch.long)], 1)
    mu, _ = model.encode(ids, lengths)
    mu_pad, _ = model.encode(padded, lengths)
    assert torch.allclose(mu, mu_pad, atol=1e-6)
    alone, _ = model.encode(ids[3:4, : lengths[3]], lengths[3:4])
    assert torch.allclose(mu[3], alone[0], atol=1e-5)
    packed = VAE(ModelConfig.from_dict({**model.cfg.to_dict(), "pack": True})).eval()
    packed.load_state_dict(model.state_dict())
    a = model(ids, lengths, sample=False)
    b = packed(ids, lengths, sample=False)
    assert torch.allclose(a["loss"], b["loss"], rtol=1e-5)


def test_step_matches_teacher_forcing():
    """Generation's step-by-step API computes what the teacher-forced decoder computes."""
    ids, lengths, vocab = _batch(5)
    model = _small(vocab).eval()
    z = torch.randn(5, 8)
    with torch.no_grad():
        full = model.decode_logits(ids[:, :-1], z)
        h = model.init_hidden(z)
        for t in range(ids.size(1) - 1):
            logits, h = model.step(ids[:, t], h, z)
            assert torch.allclose(logits, full[:, t], atol=1e-5)


def test_greedy_decode_stops_and_pads():
    _, _, vocab = _batch(4)
    model = _small(vocab).eval()
    out = model.greedy_decode(torch.randn(7, 8), max_len=12)
    assert out.dtype == torch.long and out.shape[0] == 7 and out.shape[1] <= 11
    for row in out.tolist():
        if vocab.eos_id in row:
            assert all(t == vocab.pad_id for t in row[row.index(vocab.eos_id) + 1:])


def test_bf16_autocast_forward_backward():
    ids, lengths, vocab = _batch(8)
    model = _small(vocab, n_props=1)
    dtype = resolve_amp("bf16", torch.device("cpu"))
    assert dtype == torch.bfloat16
    with autocast(torch.device("cpu"), dtype):
        out = model(ids, lengths, torch.randn(8, 1))
    assert out["loss"].dtype == torch.float32 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert resolve_amp("off", torch.device("cpu")) is None
    assert resolve_amp("auto", torch.device("cpu")) == (torch.bfloat16 if cpu_supports_bf16() else None)


def test_flops_per_token_counts_gru_matmuls():
    model = VAE(ModelConfig(vocab_size=30, embed_dim=64, enc_hidden=256, latent_dim=64, dec_hidden=512, dec_layers=2))
    f = model.flops_per_token()
    assert f["encoder"] == 2 * (2 * 3 * 256 * (64 + 256))
    assert f["decoder"] == 2 * 3 * 512 * (128 + 512) + 2 * 3 * 512 * (512 + 512)
    assert f["total"] == f["encoder"] + f["decoder"] + f["output"]


# ------------------------------------------------------------------------- schedules
def test_kl_schedules():
    args = dict(beta_start=0.0, beta_end=1.0, warmup_steps=100, total_steps=400)
    assert kl_weight(0, "constant", **args) == 1.0
    assert kl_weight(0, "linear", **args) == 0.0
    assert kl_weight(50, "linear", **args) == pytest.approx(0.5)
    assert kl_weight(100, "linear", **args) == kl_weight(300, "linear", **args) == 1.0
    sig = [kl_weight(s, "sigmoid", **args) for s in range(0, 101, 10)]
    assert all(a < b for a, b in zip(sig, sig[1:]))
    assert sig[5] == pytest.approx(0.5) and sig[0] < 0.01 and sig[-1] > 0.99
    cyc = [kl_weight(s, "cyclical", cycles=4, cycle_ratio=0.5, **args) for s in range(400)]
    assert cyc[0] == 0.0 and cyc[25] == pytest.approx(0.5) and cyc[50] == 1.0 and cyc[99] == 1.0
    assert cyc[100] == 0.0 and cyc[100:200] == cyc[:100]
    assert kl_weight(5, "linear", 0.0, 1.0, 0, 10) == 1.0  # no warm-up: straight to beta_end


def test_lr_schedules_and_plateau():
    assert lr_factor(0, "constant", 100) == 1.0
    assert lr_factor(0, "cosine", 100, min_factor=0.1) == pytest.approx(1.0)
    assert lr_factor(100, "cosine", 100, min_factor=0.1) == pytest.approx(0.1)
    assert lr_factor(50, "cosine", 100, min_factor=0.0) == pytest.approx(0.5)
    assert lr_factor(4, "constant", 100, warmup_steps=10) == pytest.approx(0.5)
    plateau = PlateauState(patience=1, factor=0.5)
    for loss in (3.0, 2.0, 2.0, 2.0):
        plateau.update(loss)
    assert plateau.current == 0.5
    assert PlateauState.from_dict(plateau.to_dict()) == plateau
    assert lr_factor(0, "plateau", 100, plateau_factor=plateau.current) == 0.5


def test_active_units_burda():
    rng = np.random.default_rng(0)
    mu = np.zeros((500, 6))
    mu[:, :2] = rng.normal(size=(500, 2))  # two informative dims
    mu[:, 2] = rng.normal(scale=0.01, size=500)  # variance 1e-4: collapsed
    assert active_units(mu) == 2
    assert active_units(mu[:1]) == 0


# ------------------------------------------------------------------------- overfitting
def test_overfit_32_molecules():
    """The architecture can memorize 32 molecules: 100% greedy reconstruction from mu."""
    ids, lengths, vocab = _batch(32)
    torch.manual_seed(0)
    model = VAE(ModelConfig(vocab_size=len(vocab), embed_dim=32, enc_hidden=128, latent_dim=16, dec_hidden=128,
                            dec_layers=1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    eps_gen = torch.Generator().manual_seed(0)
    start, acc = time.process_time(), 0.0  # CPU time: the machine may be shared
    for step in range(1, 401):
        model.train()
        out = model(ids, lengths, beta=0.01, eps=torch.randn(32, 16, generator=eps_gen))
        opt.zero_grad()
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if step % 25 == 0:
            model.eval()
            mu, _ = model.encode(ids, lengths)
            pred = model.greedy_decode(mu, max_len=ids.size(1))
            target = ids[:, 1:]
            acc = float((F.pad(pred, (0, target.size(1) - pred.size(1))) == target).all(1).float().mean())
            if acc == 1.0:
                break
    assert acc == 1.0, f"reconstructed {acc:.0%} of 32 molecules after {step} steps"
    assert time.process_time() - start < 60
