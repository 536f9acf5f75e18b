"""`unlabelled` files: molecules that train the VAE without the labelled file's own columns."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from molvae.model import checkpoint as ckpt
from molvae.train import fit
from tests.conftest import invoke_cli
from tests.test_train_loop import BASE, DATA


def _split(tmp_path):
    df = pd.read_csv(DATA / "train_tiny.csv")
    labelled = df.iloc[:24].assign(pIC50=np.linspace(5.0, 8.0, 24))
    labelled.to_csv(tmp_path / "assay.csv", index=False)
    # The library repeats two labelled molecules: they are kept once, with their labels.
    library = df.iloc[22:]
    (tmp_path / "library.smi").write_text("\n".join(library["SMILES"]) + "\n")
    return tmp_path / "assay.csv", tmp_path / "library.smi"


def test_unlabelled_molecules_train_the_vae_and_mask_the_assay_column(tmp_path):
    assay, library = _split(tmp_path)
    out = fit(BASE.replace(data=str(assay), unlabelled=(str(library),), properties=("pIC50", "logp"), epochs=1,
                           out=str(tmp_path / "run")))
    _, meta = ckpt.load_checkpoint(out)
    assert len(meta.train_hashes()) == 56  # 64 distinct molecules, 8 held out
    history = meta.history()
    assert np.isfinite(history["train_prop"].iloc[0]) and "val_mae_pic50" in history
    # The assay column's statistics come from its 24 labels only.
    labels = pd.read_csv(assay)["pIC50"]
    mean, std = meta.prop_stats["pic50"]
    assert labels.min() <= mean <= labels.max() and std > 0
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["unlabelled"] == [str(library.resolve())]


def test_cli_unlabelled_option(monkeypatch, capsys, tmp_path):
    assay, library = _split(tmp_path)
    settings = tmp_path / "tiny.json"
    settings.write_text(json.dumps({"model": BASE.model, "threads": 1, "val_fraction": 0.125, "amp": "off"}))
    code, text = invoke_cli(monkeypatch, capsys, "train", "--data", assay, "--unlabelled", library, "--property",
                            "pIC50", "--repr", "smiles", "--epochs", "1", "--batch-size", "16", "--out",
                            tmp_path / "run", "--config", settings)
    assert code == 0, text
    assert "unlabelled molecules added" in text


def test_a_measured_column_with_an_rdkit_name_stays_measured(tmp_path):
    assay, library = _split(tmp_path)
    df = pd.read_csv(assay)
    df["logP"] = 100.0 + np.arange(len(df))  # measured values no RDKit logP comes near
    df.to_csv(assay, index=False)
    out = fit(BASE.replace(data=str(assay), unlabelled=(str(library),), properties=("logP", "qed"), epochs=1,
                           out=str(tmp_path / "run"), density_molecules=0))
    _, meta = ckpt.load_checkpoint(out)
    assert meta.prop_stats["logp"][0] >= 100.0  # the unlabelled rows got NaN, not RDKit's logP
    assert meta.prop_stats["qed"][0] < 1.0  # computed for both files
