"""Property conditioning of the VAE (issue 26): the unconditional model unchanged, c read by the decoder
(and optionally the encoder), c carried through the decoding loops, stored in checkpoints, and the
zero-initialized conditioning of a warm start (molvae.train.warm_start.add_conditioning) exact."""
from __future__ import annotations

import json

import pytest
import torch

from molvae.data.tokens import Tokenizer, Vocabulary
from molvae.errors import CheckpointError
from molvae.model import checkpoint as ckpt
from molvae.model import inference
from molvae.model.vae import VAE, ModelConfig
from molvae.train.warm_start import add_conditioning, cond_weight_keys

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"embed_dim": 8, "enc_hidden": 12, "latent_dim": 6, "dec_hidden": 16, "dec_layers": 2, "prop_hidden": 8}


def _model(seed: int = 0, **cfg) -> VAE:
    torch.manual_seed(seed)
    return VAE(ModelConfig(vocab_size=20, **{**SMALL, **cfg})).eval()


def _batch(n: int = 5, length: int = 9, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 20, (n, length), generator=g)
    ids[:, 0], ids[:, -1] = 1, 2
    return ids, torch.full((n,), length)


def test_unconditional_model_has_the_parameters_it_always_had():
    plain, cond = _model().state_dict(), _model(n_cond=3).state_dict()
    assert set(cond) - set(plain) == {"decoder.c_to_h.weight"}  # one new weight, no bias
    for key in plain:
        grown = cond[key].shape != plain[key].shape
        assert grown == (key == "decoder.rnn.weight_ih_l0"), key
    assert cond["decoder.rnn.weight_ih_l0"].shape[1] == plain["decoder.rnn.weight_ih_l0"].shape[1] + 3
    enc = _model(n_cond=3, cond_encoder=True).state_dict()
    assert enc["encoder.to_mu.weight"].shape[1] == plain["encoder.to_mu.weight"].shape[1] + 3
    assert cond_weight_keys(ModelConfig(vocab_size=20, n_cond=3, cond_encoder=True))[-1] == "encoder.to_logvar.weight"
    assert cond_weight_keys(ModelConfig(vocab_size=20)) == ()
    with pytest.raises(ValueError, match="n_cond"):
        ModelConfig(vocab_size=20, n_cond=-1)


def test_shipped_unconditional_checkpoint_loads_and_decodes_as_before(tmp_path):
    import json

    shipped = ckpt.resolve_model(None)
    assert not ckpt.read_config(shipped).get("conditions")  # an empty list: unconditional
    # A checkpoint written before conditioning existed has no "conditions" entry at all.
    for f in shipped.iterdir():
        (tmp_path / f.name).symlink_to(f)
    config = json.loads((shipped / "config.json").read_text())
    config.pop("conditions", None)
    (tmp_path / "config.json").unlink()
    (tmp_path / "config.json").write_text(json.dumps(config))
    model, meta = ckpt.load_checkpoint(tmp_path)
    assert model.cfg.n_cond == 0 and meta.cond_stats == {} and meta.cond_names == ()
    z = inference.prior(4, model.cfg.latent_dim, seed=0)
    ids = inference.sample_ids(model, z, "greedy", max_len=40)
    ref = model.greedy_decode(z, max_len=40)
    assert torch.equal(ids, ref[:, : ids.size(1)])
    with pytest.raises(ValueError, match="unconditional"):
        inference.decode(model, z, "greedy", c=torch.zeros(4, 1))


def test_conditional_model_needs_c_everywhere():
    model = _model(n_cond=2, cond_encoder=True)
    ids, lengths = _batch()
    z = torch.randn(5, 6)
    for call in (lambda: model.decode_logits(ids[:, :-1], z), lambda: model.init_hidden(z),
                 lambda: model.greedy_decode(z), lambda: model.encode(ids, lengths), lambda: model(ids, lengths),
                 lambda: inference.sample_ids(model, z), lambda: inference.beam_search(model, z, 2),
                 lambda: inference.decode(model, z, "greedy")):
        with pytest.raises(ValueError, match="conditional"):
            call()
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        model.decode_logits(ids[:, :-1], z, c=torch.zeros(5, 3))
    # The encoder reads c only with cond_encoder: without it, encoding needs no c.
    plain_encoder = _model(n_cond=2)
    plain_encoder.encode(ids, lengths)
    with pytest.raises(ValueError, match="unconditional"):
        _model().decode_logits(ids[:, :-1], z, c=torch.zeros(5, 2))


def test_c_steers_the_decoder_and_the_encoder():
    model = _model(n_cond=2, cond_encoder=True)
    ids, lengths = _batch()
    z = torch.randn(5, 6)
    c0, c1 = torch.zeros(5, 2), torch.ones(5, 2)
    assert not torch.allclose(model.decode_logits(ids[:, :-1], z, c=c0), model.decode_logits(ids[:, :-1], z, c=c1))
    assert not torch.allclose(model.init_hidden(z, c0), model.init_hidden(z, c1))
    assert not torch.allclose(model.encode(ids, lengths, c0)[0], model.encode(ids, lengths, c1)[0])
    res = model(ids, lengths, c=c1)
    assert torch.isfinite(res["loss"])
    # Teacher forcing and step-by-step decoding agree with c as they do without it.
    full = model.decode_logits(ids[:, :-1], z, c=c1)
    h = model.init_hidden(z, c1)
    for t in range(ids.size(1) - 1):
        logits, h = model.step(ids[:, t], h, z, c1)
        assert torch.allclose(logits, full[:, t], atol=1e-5)


@pytest.mark.parametrize("bucketed", [False, True])
def test_decoding_loops_keep_each_c_with_its_latent(bucketed):
    model = _model(n_cond=2)
    with torch.no_grad():  # greedy_decode may emit PAD or BOS, the loops never do: make neither the argmax
        model.decoder.out.bias[[model.cfg.pad_id, model.cfg.bos_id]] = -1e4
    g = torch.Generator().manual_seed(3)
    z, c = torch.randn(11, 6, generator=g), 3 * torch.randn(11, 2, generator=g)
    # Compaction drops finished rows and (bucketed) pads with copies: c must follow its row throughout.
    ids = inference.sample_ids(model, z, "greedy", max_len=30, bucketed=bucketed, c=c)
    ref = model.greedy_decode(z, max_len=30, c=c)
    assert torch.equal(ids, ref[:, : ids.size(1)])
    perm = torch.randperm(11, generator=g)
    beams, scores = inference.beam_search(model, z, 3, max_len=30, c=c)
    beams_p, scores_p = inference.beam_search(model, z[perm], 3, max_len=30, c=c[perm])
    assert torch.equal(beams[perm], beams_p) and torch.allclose(scores[perm], scores_p)
    batched = inference.decode(model, z, "greedy", batch_size=4, max_len=30, c=c)
    assert (batched[:, : ids.size(1)] == ids.numpy()).all()


def test_checkpoint_stores_conditions_and_older_checkpoints_load_unconditional(tmp_path):
    vocab = Vocabulary(list("CNOcn()=1"))
    model = VAE(ModelConfig(vocab_size=len(vocab), n_cond=2, **SMALL))
    stats = {"logp": (2.5, 1.2), "tpsa": (60.0, 20.0)}
    path = ckpt.save_model(tmp_path / "cond", model, Tokenizer("smiles"), vocab, cond_stats=stats)
    config = json.loads((path / "config.json").read_text())
    assert config["conditions"] == [{"name": "logp", "mean": 2.5, "std": 1.2},
                                    {"name": "tpsa", "mean": 60.0, "std": 20.0}]
    loaded, meta = ckpt.load_checkpoint(path)
    assert loaded.cfg.n_cond == 2 and meta.cond_names == ("logp", "tpsa") and meta.cond_stats == stats
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(ValueError, match="condition stats"):
        ckpt.save_model(tmp_path / "bad", model, Tokenizer("smiles"), vocab)
    config["conditions"] = config["conditions"][:1]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="conditions"):
        ckpt.load_checkpoint(path)

    # A checkpoint written before conditioning existed: no "conditions", no n_cond in the model config.
    plain = VAE(ModelConfig(vocab_size=len(vocab), **SMALL))
    old = ckpt.save_model(tmp_path / "old", plain, Tokenizer("smiles"), vocab)
    config = json.loads((old / "config.json").read_text())
    del config["conditions"], config["model"]["n_cond"], config["model"]["cond_encoder"]
    (old / "config.json").write_text(json.dumps(config))
    loaded, meta = ckpt.load_checkpoint(old)
    assert loaded.cfg.n_cond == 0 and meta.cond_stats == {}
    z = torch.randn(3, SMALL["latent_dim"])
    assert torch.equal(loaded.eval().greedy_decode(z, 20), plain.eval().greedy_decode(z, 20))


@pytest.mark.parametrize("cond_encoder", [False, True])
def test_add_conditioning_computes_exactly_what_the_base_computes(cond_encoder):
    base = _model(seed=5, z_every_step=True, z_to_hidden=True)
    twin = add_conditioning(base, 3, cond_encoder=cond_encoder)
    assert twin.cfg.n_cond == 3 and twin.cfg.cond_encoder == cond_encoder and not twin.training
    ids, lengths = _batch(6)
    z = torch.randn(6, 6)
    logits = base.decode_logits(ids[:, :-1], z)
    mu, logvar = base.encode(ids, lengths)
    for scale in (0.0, 1.0, 100.0):
        c = scale * torch.randn(6, 3)
        assert torch.equal(twin.decode_logits(ids[:, :-1], z, c=c), logits)
        assert torch.equal(twin.greedy_decode(z, 25, c=c), base.greedy_decode(z, 25))
        mu_c, logvar_c = twin.encode(ids, lengths, c)
        # The encoder's mu/logvar layers get 3 more input columns, and on some CPUs the BLAS kernel for the
        # wider matmul sums in another order (measured: a 2026-12-07 machine of the same CPU model), so the zero
        # columns change nothing but rounding there.
        assert torch.allclose(mu_c, mu, rtol=0, atol=1e-6) and torch.allclose(logvar_c, logvar, rtol=0, atol=1e-6)
    # Zero weights on c still learn: c reaches them through the gradient.
    twin.train()
    twin(ids, lengths, c=torch.randn(6, 3), eps=torch.zeros(6, 6))["loss"].backward()
    grads = dict(twin.named_parameters())
    assert grads["decoder.c_to_h.weight"].grad.abs().sum() > 0
    assert grads["decoder.rnn.weight_ih_l0"].grad[:, -3:].abs().sum() > 0
    with pytest.raises(ValueError, match="already conditional"):
        add_conditioning(twin, 2)


def test_add_conditioning_without_z_to_hidden():
    base = _model(seed=6, z_to_hidden=False)
    twin = add_conditioning(base, 2)
    z = torch.randn(4, 6)
    assert torch.equal(twin.init_hidden(z, torch.randn(4, 2)), base.init_hidden(z))
