"""Warm start (`--init`): a run that begins from another model's weights, its vocabulary grown."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from molvae.errors import CheckpointError
from molvae.model import checkpoint as ckpt
from molvae.train import TrainConfig, fit
from molvae.train.config import FINE_TUNE_DEFAULTS, train_config_from_cli
from molvae.train.warm_start import grown_vocabulary, open_init, warm_model
from tests.conftest import invoke_cli
from tests.test_train_loop import BASE, DATA

NICOTINE = "CN1CCC[C@H]1c1cccnc1"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return fit(BASE.replace(epochs=1, out=str(tmp_path_factory.mktemp("warm") / "base")))


@pytest.fixture
def series(tmp_path) -> Path:
    """The tiny training set with a chiral molecule (a token the base lacks) and an assay column."""
    df = pd.read_csv(DATA / "train_tiny.csv")
    df.loc[0, "SMILES"] = NICOTINE
    df["pIC50"] = [5.0 + 0.05 * i for i in range(len(df))]
    path = tmp_path / "series.csv"
    df.to_csv(path, index=False)
    return path


def test_grown_vocabulary_keeps_base_ids_and_appends_new_tokens_by_frequency(base):
    warm = open_init(str(base))
    vocab, added = grown_vocabulary(warm.vocab, [["C", "[C@H]", "[Se]"], ["[Se]", "c"]])
    assert added == ["[Se]", "[C@H]"]
    assert vocab.id_to_token[: len(warm.vocab)] == warm.vocab.id_to_token
    assert vocab.id_to_token[len(warm.vocab):] == ("[Se]", "[C@H]")


def test_warm_model_takes_the_base_weights_and_adds_rows(base):
    warm = open_init(str(base))
    vocab, _ = grown_vocabulary(warm.vocab, [["[C@H]"]])
    torch.manual_seed(0)
    model, record = warm_model(warm, vocab, ("pic50", "logp"), BASE.max_len + 2, torch.device("cpu"))
    sd, n = model.state_dict(), len(warm.vocab)
    for key, value in warm.weights.items():
        if key.startswith("prop_head.net.5"):
            continue
        target = sd[key][:n] if key in ("embed.weight", "decoder.out.weight", "decoder.out.bias") else sd[key]
        assert torch.equal(target, value), key
    # The new token's rows: embedding near the mean base row, output bias the lowest base bias.
    assert torch.isfinite(sd["embed.weight"][n]).all()
    assert sd["decoder.out.bias"][n] == warm.weights["decoder.out.bias"][4:].min()
    # The head keeps logp's output (base output 0) and gets a fresh one for pic50.
    assert torch.equal(sd["prop_head.net.5.weight"][1], warm.weights["prop_head.net.5.weight"][0])
    assert not torch.equal(sd["prop_head.net.5.weight"][0], warm.weights["prop_head.net.5.weight"][1])
    assert record["added_tokens"] == ["[C@H]"]
    assert record["kept_properties"] == ["logp"] and record["new_properties"] == ["pic50"]


def test_fine_tuning_grows_the_vocabulary_and_records_the_base(base, series, tmp_path):
    cfg = train_config_from_cli(data=str(series), init=str(base), properties=("logp", "pIC50"),
                                out=str(tmp_path / "ft"), threads=1, progress=False, amp="off", batch_size=16,
                                val_fraction=0.125, epochs=1, density_molecules=0)
    assert cfg.lr == FINE_TUNE_DEFAULTS["lr"] and cfg.kl_schedule == "constant"  # fine-tuning defaults
    out = fit(cfg)
    config = json.loads((out / "config.json").read_text())
    assert config["init"]["added_tokens"] == ["[C@H]"] and config["init"]["base"] == str(base)
    assert config["init"]["base_data_hash"] == json.loads((base / "config.json").read_text())["data_hash"]
    assert config["representation"] == "smiles" and config["model"]["n_props"] == 2
    model, meta = ckpt.load_checkpoint(out)
    base_meta = ckpt.load_checkpoint(base)[1]
    assert meta.prop_stats["logp"] == base_meta.prop_stats["logp"]  # the kept output keeps its units
    assert "[C@H]" in meta.vocab.token_to_id and model.cfg.vocab_size == len(base_meta.vocab) + 1
    # The fine-tuned run resumes like any other.
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["epoch"] == 1


def test_typed_options_and_the_config_file_override_fine_tuning_defaults(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"init": "moses-smiles", "epochs": 9}))
    cfg = train_config_from_cli(config_file=str(path), lr=1e-2)
    assert (cfg.epochs, cfg.lr, cfg.patience) == (9, 1e-2, FINE_TUNE_DEFAULTS["patience"])
    assert train_config_from_cli().lr == TrainConfig().lr  # no init: the plain defaults


def test_cli_fine_tunes_the_shipped_model(monkeypatch, capsys, series, tmp_path):
    code, _ = invoke_cli(monkeypatch, capsys, "train", "--data", str(series), "--init", "moses-smiles",
                         "--epochs", "1", "--batch-size", "32", "--out", str(tmp_path / "ft"), "--property", "pIC50")
    assert code == 0
    config = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert config["init"]["base"] == "moses-smiles" and config["representation"] == "smiles"
    assert config["init"]["kept_properties"] == [] and config["init"]["new_properties"] == ["pic50"]


def test_init_errors(tmp_path, base):
    with pytest.raises(CheckpointError, match="no model 'nonexistent'"):
        fit(BASE.replace(init="nonexistent", out=str(tmp_path / "x")))
    shipped_like = tmp_path / "model_only"
    shipped_like.mkdir()
    for name in ("config.json", "model.safetensors", "vocab.json"):
        (shipped_like / name).write_bytes((base / name).read_bytes())
    with pytest.raises(CheckpointError, match="use --init"):
        fit(BASE.replace(resume=str(shipped_like), out=str(tmp_path / "y")))
