"""Sparse property labels: missing cells become NaN and keep their molecule, the property loss and the validation
metrics are masked to labelled rows, and each epoch reports every property's MAE and R^2.

Fixture tests/data/assay_series.csv: 50 rows of a synthetic assay table (47 MOSES molecules of gen_train.csv plus
nicotine, benzoic acid and ibuprofen). pIC50 = 5 + 0.6 logP on even rows, logD = logP - 0.8 on odd rows (two
decimals), so each column is about half empty; row 10's pIC50 is '>10' (not a number), row 20's is 'NA' and row
3's logD 'n/a' (missing-value spellings); `empty_col` is empty throughout.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from molvae import data
from molvae.data import batching
from molvae.data.tokens import Tokenizer
from molvae.errors import DataError
from molvae.model.losses import masked_property_loss
from molvae.model.vae import VAE, ModelConfig
from molvae.evaluation.model_metrics import mae_r2
from molvae.train.epoch import ProgressReporter, run_summary

HERE = Path(__file__).parent / "data"
N_VALID = 49  # 50 rows, row 10 rejected for its pIC50 '>10'
LABELS = {"pic50": 23, "logd": 24}  # 24 even rows - rows 10 and 20 + nicotine; 23 odd rows - row 3 + 2


@pytest.fixture()
def assay(tmp_path: Path) -> Path:
    """A copy, so that the rejected-rows file is written beside it and not into tests/data."""
    target = tmp_path / "assay_series.csv"
    shutil.copy(HERE / "assay_series.csv", target)
    return target


# ------------------------------------------------------------------------ validation
def test_missing_labels_keep_their_molecules(assay: Path) -> None:
    df, report = data.load_molecules(assay, properties=["pIC50", "logD"], tokenizer=Tokenizer("smiles"))
    assert report.n_read == 50 and report.n_valid == N_VALID == len(df)
    assert report.n_bad_property == 1 and report.labels == LABELS
    for name, n in LABELS.items():
        assert int(np.isfinite(df[name]).sum()) == n
    # the unlabelled and the 'NA' molecules are kept, without labels
    unlabelled = df[df["smiles"] == "O=C(O)c1ccccc1"].iloc[0]
    assert np.isnan(unlabelled["pic50"]) and np.isnan(unlabelled["logd"])
    assert np.isnan(df.loc[df["row"] == 20, "pic50"]).all() and np.isnan(df.loc[df["row"] == 3, "logd"]).all()
    assert df.loc[df["row"] == 0, "pic50"].item() == pytest.approx(6.07)
    # the non-numeric value goes to the rejected file with its row and the reason
    rejected = pd.read_csv(assay.with_name("assay_series.rejected.csv"), keep_default_na=False)
    assert list(rejected["row"]) == [10]
    assert "'pIC50'" in rejected["reason"].item() and "'>10'" in rejected["reason"].item()
    text = report.summary()
    assert "pic50 23 of 49" in text and "logd 24 of 49" in text and "\n" not in text


def test_a_property_without_labels_is_an_error_naming_it(assay: Path) -> None:
    with pytest.raises(DataError, match=r"'empty_col' has no labels"):
        data.load_molecules(assay, properties=["pIC50", "empty_col"], rejected_path=None)


def test_labels_only_on_rejected_rows_are_no_labels(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("smiles,y\nCCO,\nc1ccccc1,\nC1CC,3.5\n")  # the only value belongs to an invalid SMILES
    with pytest.raises(DataError, match=r"'y' has no labels \(none of the 2 valid molecules"):
        data.load_molecules(path, properties=["y"], rejected_path=None)


def test_repeated_molecules_pool_their_labels(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"  # one row per assay, as merged assay tables often are
    path.write_text("smiles,a,b\nCCO,1.0,\nOCC,,2.0\nOCC,9.0,9.0\nCCC,abc,1\nCCC,3,4\nc1ccccc1,,\n")
    df, report = data.load_molecules(path, properties=["a", "b"], rejected_path=None)
    rows = df.set_index("smiles")
    assert list(rows.loc["CCO", ["a", "b"]]) == [1.0, 2.0]  # each property's first value, from either row
    assert list(rows.loc["CCC", ["a", "b"]]) == [3.0, 4.0]  # its earlier row was rejected: no duplicate of it
    assert np.isnan(rows.loc["c1ccccc1", "a"]) and len(df) == 3
    assert report.n_duplicate == 2 and report.n_bad_property == 1 and report.labels == {"a": 2, "b": 2}


def test_standardization_uses_labelled_rows_only(assay: Path) -> None:
    df, _ = data.load_molecules(assay, properties=["pIC50"], tokenizer=Tokenizer("smiles"), rejected_path=None)
    vocab = data.tokens.Vocabulary.build(df["tokens"])
    enc = batching.encode(df, vocab, ("pic50",))
    values = df["pic50"].to_numpy()
    labelled = values[np.isfinite(values)]
    mean, std = enc.prop_stats["pic50"]
    assert mean == pytest.approx(labelled.mean()) and std == pytest.approx(labelled.std())
    assert list(enc.n_labels()) == [LABELS["pic50"]]
    assert np.array_equal(np.isnan(enc.props[:, 0]), np.isnan(values))
    assert batching.label_stats(np.array([np.nan, np.nan])) == (0.0, 1.0)


# ------------------------------------------------------------------------ masked loss
def test_masked_loss_equals_the_plain_mse_with_full_labels() -> None:
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    plain = F.mse_loss(pred, target, reduction="none").mean(1).sum()
    assert torch.allclose(masked_property_loss(pred, target), plain)


def test_masked_loss_ignores_unlabelled_cells_in_value_and_gradient() -> None:
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(4, 2, generator=g, requires_grad=True)
    target = torch.randn(4, 2, generator=g)
    target[1, 0] = target[3, :] = float("nan")
    loss = masked_property_loss(pred, target)
    labelled = torch.isfinite(target)
    expected = 4 * ((pred - target)[labelled] ** 2).mean()  # B x the MSE over labelled cells: the full-label scale
    assert torch.allclose(loss, expected)
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert (pred.grad[~labelled] == 0).all() and (pred.grad[labelled] != 0).all()
    # a batch without any label contributes nothing, and no NaN
    empty = masked_property_loss(pred, torch.full((4, 2), float("nan")))
    assert empty.item() == 0.0


def test_vae_forward_with_sparse_labels_is_finite() -> None:
    torch.manual_seed(0)
    model = VAE(ModelConfig(vocab_size=10, embed_dim=8, enc_hidden=8, latent_dim=4, dec_hidden=8, dec_layers=1,
                            n_props=2, prop_hidden=8))
    ids = torch.tensor([[1, 5, 6, 2, 0], [1, 7, 2, 0, 0], [1, 5, 5, 6, 2]])
    lengths = torch.tensor([4, 3, 5])
    props = torch.tensor([[0.5, float("nan")], [float("nan"), float("nan")], [-1.0, 2.0]])
    res = model(ids, lengths, props)
    assert torch.isfinite(res["loss"]) and res["prop"] > 0
    res["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# ------------------------------------------------------------------------ metrics and log lines
def test_property_accuracy_is_masked_to_labelled_rows() -> None:
    target = np.array([1.0, np.nan, 3.0, 5.0])
    pred = np.array([2.0, 100.0, 3.0, 4.0])
    mae, r2, n = mae_r2(pred, target)
    assert n == 3 and mae == pytest.approx(2 / 3)
    assert r2 == pytest.approx(1 - 2 / 8)
    assert np.isnan(mae_r2(pred, np.full(4, np.nan))[0])
    assert np.isnan(mae_r2(pred, np.array([2.0, 2.0, np.nan, np.nan]))[1])  # no variance: no R^2


def test_epoch_line_and_run_summary_name_every_property(caplog: pytest.LogCaptureFixture) -> None:
    rows = [{"epoch": e, "train_loss": 3.0, "val_loss": 2.0 + e, "val_recon_acc": 0.25, "train_mol_per_s": 100.0,
             "val_mae_pic50": 0.5 * e, "val_r2_pic50": 0.4, "val_mae_logd": 0.3, "val_r2_logd": float("nan")}
            for e in (1, 2)]
    with caplog.at_level(logging.INFO, logger="molvae.train"):
        reporter = ProgressReporter(enabled=False)
        reporter.epoch_done(rows[1], improved=False)
        reporter.run_done(rows, best_epoch=1)
    epoch_line, summary = [r.getMessage() for r in caplog.records]
    assert "pic50 MAE 1.00 R2 0.40" in epoch_line and "logd MAE 0.300 R2 n/a" in epoch_line
    assert summary == run_summary(rows, 1)
    assert summary.startswith("best epoch 1 of 2") and "val_loss 3.000" in summary and "reconstruction 25.0%" in summary
    assert "pic50 MAE 0.500 R2 0.40" in summary


# ------------------------------------------------------------------------ a short training run
def test_training_on_sparse_labels(assay: Path) -> None:
    from molvae.model import checkpoint as ckpt
    from molvae.train import TrainConfig, fit

    threads = torch.get_num_threads()
    cfg = TrainConfig(
        data=str(assay), representation="smiles", properties=("pIC50", "logD"), epochs=1, batch_size=16,
        val_fraction=0.25, amp="off", threads=1, progress=False, val_recon_n=4, seed=0, density_molecules=0,
        out=str(assay.parent / "run"),
        model={"embed_dim": 16, "enc_hidden": 32, "latent_dim": 8, "dec_hidden": 32, "dec_layers": 1,
               "prop_hidden": 16},
    )
    out = fit(cfg)
    assert torch.get_num_threads() == threads
    _, meta = ckpt.load_checkpoint(out)
    history = meta.history()
    for col in ("train_prop", "val_prop", "val_mae_pic50", "val_r2_pic50", "val_mae_logd", "val_r2_logd"):
        assert col in history and np.isfinite(history[col]).all(), col
    assert history["train_prop"].item() > 0
    # every valid molecule trained the VAE, labelled or not: 49 - 12 validation molecules
    assert len(meta.train_hashes()) == N_VALID - round(N_VALID * 0.25)
    assert set(meta.prop_stats) == {"pic50", "logd"}
    assert all(np.isfinite(v).all() for v in meta.prop_stats.values())
    assert "[C@H]" in meta.vocab.tokens  # the chiral molecule trained with its stereo tokens
