"""molvae.bench.train_speed and molvae.bench.moses_reference on the 64 molecules of tests/data/gen_train.csv:
a few steps of batch 16, the table printed and the JSON written with sane values."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from molvae.bench import train_speed

DATA = Path(__file__).parent / "data" / "gen_train.csv"
WHEEL = Path.home() / ".cache" / "molvae" / "wheels" / "molsets-0.3.1-py3-none-any.whl"

pytestmark = pytest.mark.usefixtures("one_thread")


def test_molvae_speed_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "speed.json"
    train_speed.main(["--data", str(DATA), "--batch", "16", "--steps", "2", "--warmup", "1", "--block", "1",
                      "--threads", "1", "--no-reference", "--variants", "fp32", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "mol/s" in printed and "molvae fp32 (fp32, padded)" in printed
    result = json.loads(out.read_text())
    assert {"hardware", "threads", "matmul_peak_gflops", "speed", "molvae_data_prep_s"} <= set(result)
    (row,) = result["speed"]
    assert row["steps"] == 2 and row["mol_per_s"] > 0 and row["params"] > 0
    assert 0 <= row["padding_overhead"] < 5 and 0 < row["fraction_of_peak"] < 10
    assert row["speedup_vs_reference"] is None


def test_molvae_runner_uses_the_training_loop_step() -> None:
    """The runner's step is the loop's forward_backward with the default config's loss settings: the
    weights move and the step counts molecules and tokens."""
    import torch

    from molvae import data as mdata
    from molvae.train import TrainConfig

    tok = mdata.Tokenizer("smiles")
    df, _ = mdata.load_molecules(str(DATA), properties=(), tokenizer=tok, max_len=100, rejected_path=None)
    vocab = mdata.Vocabulary.build(df["tokens"])
    runner = train_speed.MolvaeRunner("tiny", mdata.encode(df, vocab=vocab, prop_names=()), vocab, 8, "off",
                                      {"embed_dim": 16, "enc_hidden": 16, "latent_dim": 4, "dec_hidden": 16})
    assert runner.cfg.free_bits == TrainConfig().free_bits and runner.cfg.beta_end == TrainConfig().beta_end
    before = [p.detach().clone() for p in runner.model.parameters()]
    mols, toks, padded = runner.step()
    assert mols == 8 and 0 < toks <= padded
    assert any(not torch.equal(a, b) for a, b in zip(before, runner.model.parameters()))


@pytest.mark.skipif(not WHEEL.exists(), reason="the molsets wheel is not in the molvae cache")
def test_reference_and_equal_time_reconstruction(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "speed.json"
    train_speed.main(["--data", str(DATA), "--test", str(DATA), "--batch", "16", "--steps", "1", "--warmup", "1",
                      "--threads", "1", "--variants", "fp32", "--wheel", str(WHEEL), "--recon-minutes", "0.01",
                      "--recon-n", "4", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "MOSES VAE (reference)" in printed and "reconstruction after" in printed
    result = json.loads(out.read_text())
    ours, ref = result["speed"]
    assert ref["model"] == "MOSES VAE (reference)" and ref["speedup_vs_reference"] == pytest.approx(1.0)
    assert ours["speedup_vs_reference"] > 0 and ref["train_flops_per_token"] > 0
    rec = result["recon_equal_time"]
    assert rec["n_test"] == 4
    for side in ("molvae", "moses"):
        assert rec[side]["steps"] >= 1 and 0 <= rec[side]["recon_acc"] <= 1 and rec[side]["recon_nats_per_mol"] > 0
