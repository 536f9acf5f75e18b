"""Nucleus (top-p) sampling: `inference.nucleus`, `MolVAE.sample(top_p=...)` and `molvae sample --top-p`."""
from __future__ import annotations

import pytest
import torch

from molvae.errors import UsageError
from molvae.model.inference import nucleus

pytestmark = pytest.mark.usefixtures("one_thread")


def test_nucleus_keeps_the_likeliest_tokens_that_first_reach_top_p():
    probs = torch.tensor([[0.1, 0.5, 0.3, 0.1], [0.97, 0.01, 0.01, 0.01]])
    out = nucleus(probs, 0.75)
    assert out[0].tolist() == pytest.approx([0.0, 0.5, 0.3, 0.0])  # 0.5 < 0.75 <= 0.5 + 0.3
    assert out[1].tolist() == pytest.approx([0.97, 0.0, 0.0, 0.0])  # at least the top token, here alone
    assert torch.equal(nucleus(probs, 1.0), probs)


def test_a_tiny_nucleus_is_greedy(vae):
    """With top_p near 0 only each step's likeliest token is left: multinomial decoding equals greedy."""
    z = torch.randn(20, vae.latent_dim, generator=torch.Generator().manual_seed(0))
    ids_nucleus = vae.codec.decode_ids(z, "multinomial", 1.0, 1, 5, None, top_p=1e-6)
    ids_greedy = vae.codec.decode_ids(z, "greedy", 1.0, 1, 5, None)
    assert (ids_nucleus == ids_greedy).all()


def test_sample_records_and_checks_top_p(vae):
    df = vae.sample(40, seed=0, top_p=0.8)
    assert df.attrs["top_p"] == 0.8 and len(df) == 40
    assert df["smiles"].tolist() != vae.sample(40, seed=0)["smiles"].tolist()
    for bad in (0, 1.5, "x"):
        with pytest.raises(UsageError, match="top_p"):
            vae.sample(5, top_p=bad)


def test_cli_top_p(run, gen_checkpoint):
    code, text = run("sample", "-n", "5", "--model", gen_checkpoint, "--top-p", "0.9", "--seed", "0")
    assert code == 0, text
    code, text = run("sample", "-n", "5", "--model", gen_checkpoint, "--top-p", "0")
    assert code == 2 and "top_p" in text and "Traceback" not in text
