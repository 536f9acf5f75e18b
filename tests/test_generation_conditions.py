"""Sampling under property conditions (`molvae.generation.conditions`, `MolVAE.sample(where=...)`,
`molvae sample --where`), on the shipped default model: parsing, RDKit verification, the budget, exit codes."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import molvae
from molvae import chem
from molvae.errors import UsageError
from molvae.generation.conditions import Window, parse_where

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def shipped() -> molvae.MolVAE:
    return molvae.load(device="cpu", precision="fp32", n_jobs=1)


def test_parse_where_windows() -> None:
    assert parse_where("logP>=4, logp<=5,qed>=0.6") == (Window("logp", 4.0, 5.0), Window("qed", 0.6, math.inf))
    assert parse_where("mw=300+-20") == (Window("mw", 280.0, 320.0),)
    assert parse_where("logp=2") == (Window("logp", 1.9, 2.1),)  # default tolerance 5% of max(|v|, 1)
    assert parse_where("qed=0.5") == (Window("qed", 0.45, 0.55),)
    assert parse_where("logp<=3,logp<=2") == (Window("logp", -math.inf, 2.0),)  # clauses intersect
    assert parse_where("pic50>=6", head=("pIC50",)) == (Window("pIC50", 6.0, math.inf),)


@pytest.mark.parametrize("where, message", [
    ("logp>=5,logp<=4", "empty window"), ("logp=3+-0.1,logp>=4", "empty window"), ("foo>=1", "unknown property"),
    ("logp>>3", "malformed"), ("logp>=", "malformed"), ("logp>=4;qed>=0.5", "malformed"), ("", "condition"),
])
def test_parse_where_rejects(where: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_where(where)


def test_sample_where_returns_verified_hits(shipped: molvae.MolVAE) -> None:
    df = shipped.sample(12, seed=0, where="logp>=3.5,logp<=5", properties=["qed"])
    assert len(df) == 12 and df["valid"].all() and {"qed", "logp", "novel"} <= set(df.columns)
    rdkit = chem.properties(df["canonical"].tolist(), ["logp"])["logp"].to_numpy()
    assert np.allclose(rdkit, df["logp"]) and ((rdkit >= 3.5) & (rdkit <= 5)).all()
    a = df.attrs
    assert a["where"] == "3.5<=logp<=5" and a["steered"] == ["logp"] and a["seed"] == 0
    assert a["hits"] >= 12 and a["n_drawn"] >= a["hits"] and a["hit_rate"] == pytest.approx(a["hits"] / a["n_drawn"])
    again = shipped.sample(12, seed=0, where="logp>=3.5,logp<=5", properties=["qed"])
    assert again["smiles"].tolist() == df["smiles"].tolist()


def test_steering_beats_rejection_per_decode(shipped: molvae.MolVAE) -> None:
    """The same budget finds more hits with the head's steering than with plain rejection."""
    from molvae.generation.conditions import sample_where

    windows = parse_where("logp>=3.6,logp<=5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        steered = sample_where(shipped, 1000, windows, (), seed=1, max_decodes=300)
        plain = sample_where(shipped, 1000, windows, (), seed=1, max_decodes=300, steer=False)
    assert steered.attrs["n_drawn"] == plain.attrs["n_drawn"] == 300
    assert steered.attrs["hits"] >= 2 * max(plain.attrs["hits"], 1)


def test_unmeetable_condition_ends_within_budget(shipped: molvae.MolVAE) -> None:
    with pytest.warns(RuntimeWarning, match="only 0 of 5 molecules met"):
        df = shipped.sample(5, seed=0, where="qed>=0.999", max_decodes=150)
    assert len(df) == 0 and df.attrs["n_drawn"] == 150 and df.attrs["hit_rate"] == 0


def test_sample_where_unique(shipped: molvae.MolVAE) -> None:
    df = shipped.sample(10, seed=2, where="qed>=0.85", unique_valid=True)
    assert len(df) == 10 and df["canonical"].is_unique and (df["qed"] >= 0.85).all()


@pytest.mark.parametrize("where, message", [("logp>=5,logp<=4", "empty window"), ("foo>=1", "unknown property"),
                                            ("logp=>3", "malformed")])
def test_cli_bad_conditions_exit_2(run, where: str, message: str) -> None:
    code, text = run("sample", "-n", 3, "--where", where, "--device", "cpu")
    assert code == 2 and message in text and "Traceback" not in text


def test_cli_where_to_file_and_terminal(run, tmp_path: Path) -> None:
    out = tmp_path / "hits.csv"
    code, text = run("sample", "-n", 8, "--seed", 0, "--where", "qed>=0.8", "-o", out, "--chunk-size", 5,
                     "--device", "cpu")
    assert code == 0, text
    df = pd.read_csv(out)
    assert len(df) == 8 and (df["qed"] >= 0.8).all() and "hits in" in text and "decodes" in text
    code, text = run("sample", "-n", 3, "--seed", 0, "--where", "qed>=0.999", "--max-decodes", 100, "--device", "cpu")
    assert code == 1 and "no molecule met" in text and "--max-decodes" in text
