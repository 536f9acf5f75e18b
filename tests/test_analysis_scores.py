"""Anomaly / applicability-domain scores: the raw terms (`molvae.analysis.scores`), the calibrated domain
(`molvae.analysis.domain`) and `MolVAE.score`, on the shipped default model and small fixtures."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import molvae
from molvae import chem
from molvae.errors import CheckpointError, DataError
from molvae.analysis.domain import Domain, calibrate_domain
from molvae.analysis.scores import FP_BITS, elbo_terms, fingerprint_matrix, nearest_similarity
from molvae.generation.api import pretrained_dir
from molvae.generation.inputs import encode_inputs

DATA = Path(__file__).parent / "data"
MOLECULES = pd.read_csv(DATA / "score_molecules.csv")
TRAIN = pd.read_csv(DATA / "score_train.csv")["smiles"].tolist()

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def scored(shipped: molvae.MolVAE) -> pd.DataFrame:
    return shipped.score(MOLECULES["smiles"].tolist(), chunk_size=10)


def test_nll_is_the_models_own_reconstruction_loss(shipped: molvae.MolVAE) -> None:
    """The teacher-forced NLL given the posterior mean is exactly the model's recon term with sample=False."""
    smiles = MOLECULES["smiles"].head(5).tolist()
    enc = encode_inputs(smiles, shipped.tokenizer, shipped.vocab)
    mu, nll, kl = elbo_terms(shipped.model, enc.ids, batch_size=2, precision="fp32")
    for i, seq in enumerate(enc.ids):
        ids = torch.tensor([seq])
        with torch.no_grad():
            out = shipped.model(ids, torch.tensor([len(seq)]), sample=False)
        assert nll[i] == pytest.approx(float(out["recon"]), rel=1e-4)
        assert kl[i] == pytest.approx(float(out["kl"]), rel=1e-4)
        assert np.allclose(mu[i], out["mu"][0].numpy(), atol=1e-5)


def test_nearest_similarity_matches_rdkit_tanimoto() -> None:
    reference, queries = TRAIN[:40], MOLECULES["smiles"].head(8).tolist()
    ref_fps, ok = fingerprint_matrix(reference)
    assert ok.all()
    ref = torch.from_numpy(np.unpackbits(ref_fps, axis=1).astype(np.float32))
    got = nearest_similarity(fingerprint_matrix(queries)[0], ref)
    want = [chem.bulk_tanimoto(q, reference, 2, FP_BITS).max() for q in queries]
    assert np.allclose(got, want, atol=1e-6)


def test_score_keeps_every_row_and_explains_the_unspellable(scored: pd.DataFrame) -> None:
    assert len(scored) == len(MOLECULES) and scored["row"].tolist() == list(range(len(MOLECULES)))
    assert scored["smiles"].tolist() == MOLECULES["smiles"].tolist()
    by_smiles = scored.set_index("smiles")
    selenium = by_smiles.loc["C[Se]C"]
    assert "'[Se]'" in selenium["reason"] and not selenium["in_domain"] and selenium["anomaly"] == np.inf
    assert np.isnan(selenium["nll"]) and selenium["nn_similarity"] >= 0  # RDKit still compares it
    broken = by_smiles.loc["not a smiles"]
    assert broken["reason"].startswith("not a valid SMILES") and not broken["in_domain"]
    assert np.isnan(broken["nn_similarity"])


def test_salts_and_stereo_are_scored_as_the_model_encodes_them(shipped: molvae.MolVAE) -> None:
    df = shipped.score(["CC(=O)Oc1ccccc1C(=O)O.[Na+].[Cl-]", "C[C@H](N)c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O"])
    assert df["standardized"].tolist() == [True, False, False]
    assert df["stereo_removed"].tolist() == [False, True, False]
    assert df.loc[0, "nll"] == pytest.approx(df.loc[2, "nll"], rel=1e-5)
    assert df.loc[0, "nn_similarity"] == pytest.approx(df.loc[2, "nn_similarity"])


def test_moses_molecules_are_in_domain_and_unusual_ones_are_not(scored: pd.DataFrame) -> None:
    moses = scored[MOLECULES["kind"] == "moses_test"]
    unusual = scored[MOLECULES["kind"] == "unusual"]
    # 24 molecules: 20 of them in the domain of the cycle-3 default (21 for the 2-epoch weights); of the first
    # 1,000 MOSES test molecules in data/moses_test_2k.csv, 96.7% for both
    assert moses["in_domain"].mean() >= 0.8
    assert (moses["reason"] == "").all() and np.isfinite(moses[["nll", "kl", "log_density"]]).all().all()
    assert not unusual["in_domain"].any()
    assert unusual["anomaly"].min() > moses["anomaly"].median()


def test_score_is_chunk_independent(shipped: molvae.MolVAE, scored: pd.DataFrame) -> None:
    whole = shipped.score(MOLECULES["smiles"].tolist(), chunk_size=4096)
    pd.testing.assert_frame_equal(whole, scored, check_exact=False, rtol=1e-5)


def test_domain_round_trip_and_threshold(shipped: molvae.MolVAE, tmp_path: Path) -> None:
    domain = calibrate_domain(shipped.codec, shipped.prior, TRAIN, n_reference=120, n_calibration=500, quantile=0.9, seed=1)
    assert len(domain.reference) == 120 and domain.info["n_calibration"] == 180
    held = [s for s in TRAIN if s not in set(domain.reference)]
    assert len(held) == 180
    domain.save(tmp_path)
    again = Domain.load(tmp_path)
    assert again == domain
    assert Domain.load(tmp_path / "nowhere") is None
    # The threshold is the 0.9 quantile of the calibration molecules' anomaly.
    vae = molvae.MolVAE(shipped.model, shipped.tokenizer, shipped.vocab, shipped.prop_stats, device="cpu",
                        precision="fp32", density=shipped.density, domain=again)
    inside = vae.score(held)["in_domain"].mean()
    assert inside == pytest.approx(0.9, abs=0.01)


def test_domain_errors(shipped: molvae.MolVAE, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="at least 100"):
        calibrate_domain(shipped.codec, shipped.prior, TRAIN[:150], n_reference=100, n_calibration=50)
    (tmp_path / "domain.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(CheckpointError, match="molvae domain"):
        Domain.load(tmp_path)


def test_model_without_domain_gives_raw_scores(shipped: molvae.MolVAE) -> None:
    bare = molvae.MolVAE(shipped.model, shipped.tokenizer, shipped.vocab, device="cpu", precision="fp32",
                         density=shipped.density)
    df = bare.score(["CCO", "c1ccccc1O"])
    assert df["anomaly"].isna().all() and df["in_domain"].isna().all() and df["nn_similarity"].isna().all()
    assert np.isfinite(df["nll"]).all()


def test_shipped_models_have_a_calibrated_domain() -> None:
    shipped = [p for p in pretrained_dir().iterdir() if p.is_dir()]
    assert shipped  # the default at least (tests/test_pretrained.py)
    for path in shipped:
        domain = Domain.load(path)
        assert domain is not None and domain.quantile == 0.99 and domain.info["n_calibration"] >= 4900
        assert len(domain.reference) >= 14_900 and domain.info["source"] == "embedded"
        assert domain.info["calibration_anomaly"]["p99"] == pytest.approx(domain.threshold)
