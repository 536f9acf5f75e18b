"""Tests for molvae.chem: parsing, standardization, properties, filters, similarity."""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem, DataStructs, RDConfig, RDLogger, rdBase
from rdkit.Chem import Descriptors, Lipinski, rdFingerprintGenerator

from molvae import chem
from molvae.errors import UsageError

DATA = Path(__file__).resolve().parents[1] / "data"
RHODANINE = "S=C1SC(=Cc2ccccc2)C(=O)N1"  # 5-benzylidene rhodanine: classic PAINS (ene_rhod)
CHALCONE = "O=C(C=Cc1ccccc1)c1ccccc1"  # Michael acceptor: Brenk alert, but no PAINS alert


@pytest.fixture(scope="module")
def train() -> list[str]:
    return pd.read_csv(DATA / "moses_train_20k.csv")["SMILES"].tolist()


def _reference_sascorer():
    path = os.path.join(RDConfig.RDContribDir, "SA_Score")
    if path not in sys.path:
        sys.path.append(path)
    import sascorer

    return sascorer


# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    "smiles, fragment",
    [
        ("C1CC", "unclosed ring"),
        ("c1cccc1", "kekulize"),
        ("Xx", "Parse Error"),
        ("CN(C)(C)(C)C", "valence"),
        ("", "empty"),
        ("   ", "empty"),
        (None, "missing"),
        (float("nan"), "missing"),
        (42, "not a string"),
        ("CCO ethanol", "whitespace"),
    ],
)
def test_parse_reasons(smiles, fragment, capfd):
    mol, reason = chem.parse(smiles)
    assert mol is None
    assert fragment.lower() in reason.lower()
    assert chem.to_mol(smiles) is None and chem.canonical(smiles) is None
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # failures are reported as reasons, never printed


def test_reason_fallback_without_error_capture(monkeypatch):
    # RDKit < 2025 has no CaptureErrorLog; reasons then come from a sanitize=False re-parse.
    monkeypatch.delattr(rdBase, "CaptureErrorLog", raising=False)
    assert "Parse Error" in chem.parse("C1CC")[1]
    assert "kekulize" in chem.parse("c1cccc1")[1]
    assert chem.parse("CCO")[1] is None


def test_parse_valid_strips_outer_whitespace():
    mol, reason = chem.parse("  OCC\n")
    assert reason is None and Chem.MolToSmiles(mol) == "CCO"


def test_canonical_matches_rdkit(train):
    for s in train[:200]:
        assert chem.canonical(s) == Chem.MolToSmiles(Chem.MolFromSmiles(s))
    assert chem.canonical("C[C@H](N)O", isomeric=False) == "CC(N)O"
    assert chem.canonical_many(["OCC", "bad(", "c1ccccc1"]) == ["CCO", None, "c1ccccc1"]


def test_rdkit_quiet_restores_log_state():
    before = rdBase.LogStatus()
    with chem.rdkit_quiet():
        assert "enabled" not in rdBase.LogStatus()
    assert rdBase.LogStatus() == before
    RDLogger.DisableLog("rdApp.warning")  # a user's own setting survives
    try:
        with chem.rdkit_quiet():
            pass
        assert "rdApp.warning:disabled" in rdBase.LogStatus()
    finally:
        RDLogger.EnableLog("rdApp.warning")


# ------------------------------------------------------------------ standardization


def test_standardize():
    assert chem.standardize("CC(=O)[O-].[Na+]") == "CC(=O)O"
    assert chem.standardize("C[NH3+].[Cl-]") == "CN"
    assert chem.standardize("C[C@H](N)C(=O)O") == "C[C@H](N)C(=O)O"
    assert chem.standardize("C[C@H](N)C(=O)O", remove_stereo=True) == "CC(N)C(=O)O"
    assert chem.standardize("not a smiles") is None
    assert chem.canonical("CC(=O)[O-].[Na+]") == "CC(=O)[O-].[Na+]"  # never applied implicitly


# ------------------------------------------------------------------ properties


def test_property_name():
    assert chem.property_name("logP") == "logp"
    assert chem.property_name(" SA ") == "sa"
    assert chem.property_name("Heavy-Atoms") == "heavy_atoms"
    with pytest.raises(UsageError, match="valid names"):
        chem.property_name("solubility")


def test_properties_match_rdkit(train):
    smiles = train[:200]
    df = chem.properties(smiles, [n.upper() for n in chem.PROPERTY_NAMES])
    assert list(df.columns) == list(chem.PROPERTY_NAMES)
    assert list(df.index) == list(range(200)) and df.notna().all().all()
    sascorer = _reference_sascorer()
    for i, s in enumerate(smiles):
        m = Chem.MolFromSmiles(s)
        logp, sa = Descriptors.MolLogP(m), sascorer.calculateScore(m)
        largest = max((len(r) for r in m.GetRingInfo().AtomRings()), default=0)
        cycle = max(0, largest - 6)
        expected = {
            "logp": logp, "qed": Descriptors.qed(m), "sa": sa,
            "plogp": (logp - 2.4570953396190123) / 1.434324401111988
            - (sa - 3.0525811293166134) / 0.8335207024513095
            - (cycle + 0.0485696876403053) / 0.2860212110245455,
            "plogp_raw": logp - sa - cycle,
            "mw": Descriptors.MolWt(m), "tpsa": Descriptors.TPSA(m),
            "hbd": Lipinski.NumHDonors(m), "hba": Lipinski.NumHAcceptors(m),
            "rotb": Descriptors.NumRotatableBonds(m), "rings": Descriptors.RingCount(m),
            "heavy_atoms": m.GetNumHeavyAtoms(),
        }
        for name, value in expected.items():
            assert df.at[i, name] == pytest.approx(value, abs=1e-9), (s, name)


def test_plogp_hand_formula():
    # phenylcyclooctane: largest ring 8 -> ring penalty 2
    s = "C1CCCC(CCC1)c1ccccc1"
    m = Chem.MolFromSmiles(s)
    logp, sa = Descriptors.MolLogP(m), _reference_sascorer().calculateScore(m)
    row = chem.properties([s], ["plogp", "plogp_raw", "logp", "sa"]).iloc[0]
    assert row["plogp_raw"] == pytest.approx(logp - sa - 2.0)
    z = ((logp - 2.4570953396190123) / 1.434324401111988
         - (sa - 3.0525811293166134) / 0.8335207024513095
         - (2.0 - (-0.0485696876403053)) / 0.2860212110245455)
    assert row["plogp"] == pytest.approx(z)
    assert row["logp"] == pytest.approx(logp) and row["sa"] == pytest.approx(sa)


def test_properties_invalid_rows_are_nan():
    df = chem.properties(["CCO", "C1CC", None, ""], ["logp", "hbd"])
    assert df.shape == (4, 2) and df.dtypes.eq(np.float64).all()
    assert df.iloc[0].notna().all() and df.iloc[1:].isna().all().all()
    assert all(math.isnan(v) for v in chem.mol_properties(None, ["qed", "rings"]).values())
    assert chem.properties([], ["logp"]).shape == (0, 1)


def test_parallel_identical_to_serial(train):
    smiles = train[:2490] + ["C1CC", "", "c1cccc1", "CC(=O)[O-].[Na+]"] * 3
    assert len(smiles) > 2000  # above pmap's threshold, so n_jobs=2 really forks
    names = ["logp", "sa", "plogp", "tpsa"]  # QED is the slow one; its values are checked above
    pd.testing.assert_frame_equal(chem.properties(smiles, names, n_jobs=2), chem.properties(smiles, names, n_jobs=1))
    assert chem.canonical_many(smiles, n_jobs=2) == chem.canonical_many(smiles, n_jobs=1)


# ------------------------------------------------------------------ filters


def test_moses_filter_known_cases(train):
    assert chem.passes_moses_filters("CCO") and chem.passes_moses_filters(Chem.MolFromSmiles("CCO"))
    assert not chem.passes_moses_filters("C[N+](C)(C)Cc1ccccc1")  # charged
    assert not chem.passes_moses_filters("CC(=O)[O-]")
    assert not chem.passes_moses_filters("C1CCCCCCCC1")  # 9-membered ring
    assert not chem.passes_moses_filters("C1CCCCCCC1")  # MOSES rejects rings of 8 or more
    assert chem.passes_moses_filters("C1CCCCCC1")
    assert not chem.passes_moses_filters("CCP")  # P not allowed
    assert not chem.passes_moses_filters("CCI")
    assert not chem.passes_moses_filters(RHODANINE)  # PAINS SMARTS
    assert not chem.passes_moses_filters("C1CC") and not chem.passes_moses_filters(None)
    rate = np.mean([chem.passes_moses_filters(s) for s in train[:300]])
    assert rate >= 0.99


def test_pains_and_brenk():
    assert chem.pains_match(RHODANINE) == ["ene_rhod_A(235)"]
    assert chem.pains_match("Oc1ccccc1O")  # catechol
    assert chem.pains_match(CHALCONE) == []
    assert "Michael_acceptor_1" in chem.brenk_match(CHALCONE)
    assert chem.pains_match("CCO") == [] and chem.brenk_match("CCO") == []
    assert chem.pains_match("bad(") == [] and chem.brenk_match(None) == []


def test_filters_dataframe_serial_and_parallel():
    base = ["CCO", RHODANINE, CHALCONE, "C[N+](C)(C)C", "C1CC"]
    df = chem.filters(base)
    assert list(df.columns) == ["moses", "pains", "brenk", "valid"]
    assert df.dtypes.eq(bool).all()
    assert df["moses"].tolist() == [True, False, True, False, False]
    assert df["pains"].tolist() == [False, True, False, False, False]
    assert df["brenk"].tolist() == [False, True, True, True, False]
    assert df["valid"].tolist() == [True, True, True, True, False]
    many = base + ["C1CC"] * 2000 + base  # > 2,000 rows: parallel path; invalid rows are cheap
    expected = pd.concat([df, pd.concat([df.iloc[[-1]]] * 2000), df], ignore_index=True)
    pd.testing.assert_frame_equal(chem.filters(many, n_jobs=2), expected)


# ------------------------------------------------------------------ similarity


def test_tanimoto():
    assert chem.tanimoto("c1ccccc1O", "Oc1ccccc1") == 1.0
    assert chem.tanimoto("CCO", "C1CC") == 0.0 and chem.tanimoto(None, "CCO") == 0.0
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    a, b = Chem.MolFromSmiles("CCOc1ccccc1"), Chem.MolFromSmiles("CCNc1ccccc1")
    expected = DataStructs.TanimotoSimilarity(gen.GetFingerprint(a), gen.GetFingerprint(b))
    assert chem.tanimoto("CCOc1ccccc1", "CCNc1ccccc1") == pytest.approx(expected)
    assert 0.0 < expected < 1.0
    fp = chem.fingerprint("CCO", radius=3, n_bits=1024)
    assert fp.GetNumBits() == 1024 and chem.fingerprint("xx") is None


def test_bulk_tanimoto(train):
    targets = train[:50] + ["C1CC", None]
    sims = chem.bulk_tanimoto(train[0], targets)
    assert sims.shape == (52,) and sims.dtype == np.float64
    assert sims[0] == 1.0 and sims[-1] == 0.0 and sims[-2] == 0.0
    assert np.allclose(sims, [chem.tanimoto(train[0], t) for t in targets])
    assert not chem.bulk_tanimoto("C1CC", train[:5]).any()


def test_plogp_ring_penalty_uses_jtvae_cycle_basis() -> None:
    # adamantane: SSSR rings are 6-membered, but JT-VAE's networkx cycle basis has an 8-cycle (penalty 2)
    from rdkit.Chem import Crippen

    smi = "C1C2CC3CC1CC(C2)C3"
    mol = chem.to_mol(smi)
    sa = chem.properties([smi], ["sa"])["sa"][0]
    raw = chem.properties([smi], ["plogp_raw"])["plogp_raw"][0]
    assert raw == pytest.approx(Crippen.MolLogP(mol) - sa - 2.0)


@pytest.mark.parametrize("text", ["C\x80", "000000\x80\x80𐀀𐀀", "CCé"])
def test_non_ascii_smiles_is_rejected_with_reason(text: str) -> None:
    mol, reason = chem.parse(text)
    assert mol is None and "non-ASCII" in reason


def test_largest_ring_counts_the_atoms_of_the_biggest_sssr_ring():
    assert chem.largest_ring(chem.to_mol("CCO")) == 0
    assert chem.largest_ring(chem.to_mol("c1ccccc1C1CC1")) == 6
    assert chem.largest_ring(chem.to_mol("C1CCCCCCC1")) == 8
    assert not chem.passes_moses_filters("C1CCCCCCC1") and chem.passes_moses_filters("C1CCCCCC1")
