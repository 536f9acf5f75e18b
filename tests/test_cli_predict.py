"""`molvae predict` in-process through `molvae.cli.main` (the exit codes users get), and the
`MolVAE.predict(on_invalid="keep", domain=True)` it calls, on the shipped default model and the scoring
fixture (24 MOSES test molecules and 7 unusual ones: three the model cannot spell)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from molvae.errors import UsageError

DATA = Path(__file__).parent / "data"
MOLECULES = DATA / "score_molecules.csv"
PROPS = ["logp", "qed", "sa"]  # the shipped default's head
FP32 = ("--precision", "fp32", "--device", "cpu")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def smiles() -> list[str]:
    return pd.read_csv(MOLECULES)["smiles"].tolist()


@pytest.fixture(scope="module")
def whole(shipped, smiles: list[str]) -> pd.DataFrame:
    """The fixture predicted in one call through the API (what the chunked command must reproduce)."""
    return shipped.predict(smiles, on_invalid="keep", domain=True)


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def test_keep_and_domain_in_the_api(shipped, smiles: list[str], whole: pd.DataFrame) -> None:
    assert list(whole.columns) == ["row", "smiles", "in_domain", "anomaly", "stereo_removed", "standardized",
                                   *PROPS, "reason"]
    assert whole["row"].tolist() == list(range(31)) and whole["smiles"].tolist() == smiles
    missing = whole["logp"].isna().to_numpy()
    assert whole.loc[missing, "smiles"].tolist() == ["C[Se]C", "not a smiles",
                                                     "[O-][N+](=O)c1cc([N+]([O-])=O)c([N+]([O-])=O)cc1[N+]([O-])=O"]
    assert (whole.loc[missing, "reason"] != "").all() and not whole.loc[missing, "in_domain"].any()
    assert "'[Se]' is not in the model's vocabulary" in whole.loc[25, "reason"]
    # the encoded rows carry the head's outputs at their latent means, in original units, as the plain call
    encoded = [s for s, m in zip(smiles, missing) if not m]
    with torch.no_grad():
        raw = shipped.model.predict_props(torch.from_numpy(shipped.encode(encoded))).numpy()
    stats = np.array([shipped.prop_stats[p] for p in PROPS])  # (P, 2): mean, std
    assert np.allclose(whole.loc[~missing, PROPS].to_numpy(), raw * stats[:, 1] + stats[:, 0], atol=1e-4)
    plain = shipped.predict(encoded)
    assert np.allclose(whole.loc[~missing, PROPS].to_numpy(), plain[PROPS].to_numpy(), atol=1e-4)
    # the domain columns are MolVAE.score's
    scores = shipped.score(smiles)
    assert whole["in_domain"].tolist() == scores["in_domain"].tolist()
    assert np.allclose(whole["anomaly"], scores["anomaly"], atol=1e-4, equal_nan=True)
    assert whole.loc[:23, "in_domain"].mean() > 0.7 and not whole.loc[24:, "in_domain"].any()


def test_strict_refuses_relaxed_forms(shipped) -> None:
    chiral = "O=C(N[C@@H]1CCc2ccccc2C1)c1ccncc1"  # a MOSES test molecule (in domain) with a stereocentre
    df = shipped.predict([chiral, "O=C(NC1CCc2ccccc2C1)c1ccncc1"], on_invalid="keep", strict=True, domain=True)
    assert np.isnan(df.loc[0, "logp"]) and "not in the model's vocabulary" in df.loc[0, "reason"]
    assert shipped.score([chiral])["in_domain"].tolist() == [True]  # scored as its flat form...
    assert df["in_domain"].tolist() == [False, True]  # ...but without a prediction it is not in the domain
    assert df.loc[1, "reason"] == "" and np.isfinite(df.loc[1, "logp"])
    relaxed = shipped.predict([chiral], on_invalid="keep")
    assert relaxed["stereo_removed"].tolist() == [True] and relaxed["reason"].tolist() == [""]
    assert np.isclose(relaxed.loc[0, "logp"], df.loc[1, "logp"], atol=1e-4)  # encoded as the flat form
    with pytest.raises(UsageError, match="on_invalid"):
        shipped.predict(["CCO"], on_invalid="drop")


def test_predict_streams_a_csv_in_chunks(run, tmp_path: Path, whole: pd.DataFrame) -> None:
    out = tmp_path / "pred.csv"
    code, text = run("predict", MOLECULES, "-o", out, "--chunk-size", 7, *FP32)
    assert code == 0, text
    got = _read(out)
    assert got["row"].tolist() == list(range(31)) and got["smiles"].tolist() == whole["smiles"].tolist()
    assert got["in_domain"].tolist() == whole["in_domain"].tolist()
    assert np.allclose(got[PROPS].to_numpy(), whole[PROPS].to_numpy(), atol=1e-4, equal_nan=True)
    assert got["reason"].fillna("").tolist() == whole["reason"].tolist()
    assert got["name"].tolist() == [f"m{i}" for i in range(31)]  # the input's other columns are kept
    assert "31 molecules predicted" in text and "3 without a prediction" in text and "in domain" in text
    record = json.loads(out.with_suffix(".config.json").read_text())
    assert record["command"] == "molvae predict" and record["rows"] == 31 and record["properties"] == PROPS
    assert record["settings"]["chunk_size"] == 7 and "pd" not in record["settings"]


def test_predict_keeps_what_it_cannot_spell(run, tmp_path: Path) -> None:
    out = tmp_path / "pred.parquet"
    code, text = run("predict", "CCO", "C[Se]C", "not a smiles", "C[C@H](N)C(=O)O", "-o", out, "--rdkit",
                     "--strict", *FP32)
    assert code == 0, text
    df = pd.read_parquet(out)
    assert df["smiles"].tolist() == ["CCO", "C[Se]C", "not a smiles", "C[C@H](N)C(=O)O"]
    assert df["in_domain"].dtype == bool and not df["in_domain"][1:].any()
    assert df["logp"].isna().tolist() == [False, True, True, True]  # --strict: no stereo-free stand-in
    assert "[Se]" in df.loc[1, "reason"] and "not a valid SMILES" in df.loc[2, "reason"]
    assert df["logp_rdkit"].notna().tolist() == [True, True, False, True]  # RDKit parses all but one
    assert "3 without a prediction" in text


def test_predict_table_on_the_terminal(run) -> None:
    code, text = run("predict", "CCO", "c1ccccc1C(=O)NC", "--device", "cpu")
    assert code == 0, text
    assert "in_domain" in text and "logp" in text and "2 molecules predicted" in text


def test_predict_errors(run, tmp_path: Path) -> None:
    code, text = run("predict", MOLECULES, "-o", tmp_path / "x.xlsx")
    assert code == 2 and "unknown extension" in text
    code, text = run("predict", MOLECULES, "--chunk-size", 0)
    assert code == 2 and "chunk-size" in text
    code, text = run("predict", tmp_path / "missing.csv", "--device", "cpu")
    assert code == 1 and "file not found" in text and "Traceback" not in text
    assert not (tmp_path / "x.xlsx").exists()


def test_predict_without_a_domain(run, tmp_path: Path, model_without_domain: Path) -> None:
    ckpt = model_without_domain
    out = tmp_path / "p.csv"
    code, text = run("predict", "CCO", "C[Se]C", "-m", ckpt, "-o", out, "--device", "cpu")
    assert code == 0, text
    assert text.count("no calibrated domain") == 1
    df = _read(out)
    assert df["in_domain"].isna().all() and df["anomaly"].isna().all()
    assert df["logp"].notna().tolist() == [True, False]
