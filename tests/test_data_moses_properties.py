"""The shipped MOSES property table: found only for the exact list it was built from, float16-close values."""
from __future__ import annotations

import numpy as np
import pandas as pd

from molvae import chem
from molvae.data import moses_properties, validation
from molvae.data.moses_properties import shipped_properties, write_table

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC", "O=C(O)c1ccccc1"]


def _table(tmp_path, smiles=SMILES, names=("logp", "qed")):
    values = chem.properties(smiles, list(names))
    return write_table(tmp_path / "t.npz", smiles, {n: values[n].to_numpy() for n in names}, "test"), values


def test_exact_list_finds_its_values(tmp_path):
    path, values = _table(tmp_path)
    found = shipped_properties(SMILES, ["qed", "sa", "logp"], path)
    assert list(found) == ["qed", "logp"]  # sa is not in the table: the caller computes it
    for name in found:
        np.testing.assert_allclose(found[name], values[name], atol=2e-3)


def test_any_other_list_is_not_matched(tmp_path):
    path, _ = _table(tmp_path)
    assert shipped_properties(SMILES[::-1], ["logp"], path) == {}  # same molecules, other order
    assert shipped_properties(SMILES[:-1], ["logp"], path) == {}
    assert shipped_properties(SMILES[:-1] + ["CCC"], ["logp"], path) == {}
    assert shipped_properties(SMILES, ["logp"], tmp_path / "missing.npz") == {}


def test_computed_properties_take_the_table_and_compute_the_rest(tmp_path, monkeypatch):
    path, _ = _table(tmp_path, names=("logp",))
    table = np.load(path)
    monkeypatch.setattr(moses_properties, "SHIPPED_PATH", path)
    monkeypatch.setattr(validation, "_PROPERTY_CACHE_MIN", 1)
    monkeypatch.setenv("MOLVAE_DATA", str(tmp_path / "cache"))
    df = validation._computed_properties(SMILES, ["logP", "qed"])
    assert list(df.columns) == ["logp", "qed"]
    np.testing.assert_array_equal(df["logp"], table["values.logp"].astype(np.float64))  # from the table
    pd.testing.assert_series_equal(df["qed"], chem.properties(SMILES, ["qed"])["qed"])  # computed
    assert len(list((tmp_path / "cache" / "properties").glob("*.npz"))) == 1  # only qed was cached


def test_shipped_table_matches_rdkit_on_the_moses_split_sample():
    """The table that ships covers the MOSES training split; check it exists and is well-formed."""
    arrays = np.load(moses_properties.SHIPPED_PATH)
    assert str(arrays["format"]) == moses_properties.FORMAT and int(arrays["n"]) == 1_584_663
    for name in ("logp", "qed", "sa"):
        column = arrays[f"values.{name}"]
        assert column.dtype == np.float16 and column.shape == (1_584_663,) and np.isfinite(column).all()
