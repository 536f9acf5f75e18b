"""`molvae score` and `molvae domain`, in-process through `molvae.cli.main` (the exit codes users get), on
the shipped default model and small fixtures."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from molvae.analysis.domain import Domain

DATA = Path(__file__).parent / "data"
MOLECULES = DATA / "score_molecules.csv"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The fixture scored in one chunk through the API (what streaming must reproduce)."""
    import molvae

    return molvae.load(device="cpu", precision="fp32").score(pd.read_csv(MOLECULES)["smiles"].tolist())


def test_score_streams_a_file_in_chunks(run, tmp_path: Path, whole: pd.DataFrame) -> None:
    out = tmp_path / "scores.csv"
    code, text = run("score", MOLECULES, "-o", out, "--chunk-size", 7, "--precision", "fp32", "--device", "cpu")
    assert code == 0, text
    got = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert got["row"].tolist() == list(range(31)) and got["smiles"].tolist() == whole["smiles"].tolist()
    assert got["in_domain"].tolist() == whole["in_domain"].tolist()
    assert (got["anomaly"] - whole["anomaly"]).abs().fillna(0).max() < 1e-4
    assert got["name"].tolist() == [f"m{i}" for i in range(31)] and set(got["kind"]) == {"moses_test", "unusual"}
    assert "31 molecules scored" in text and "3 the model cannot spell" in text and "in domain" in text
    record = json.loads(out.with_suffix(".config.json").read_text())
    assert record["command"] == "molvae score" and record["rows"] == 31 and record["settings"]["chunk_size"] == 7


@pytest.mark.parametrize("ext", [".parquet", ".smi", ".sdf"])
def test_score_writes_other_formats(run, tmp_path: Path, ext: str) -> None:
    out = tmp_path / f"scores{ext}"
    code, text = run("score", MOLECULES, "-o", out, "--chunk-size", 10, "--device", "cpu")
    assert code == 0, text
    if ext == ".parquet":
        df = pd.read_parquet(out)
        assert len(df) == 31 and df["in_domain"].dtype == bool and df["row"].tolist() == list(range(31))
    elif ext == ".smi":
        names = [line.split("\t")[1] for line in out.read_text().splitlines()]
        assert len(names) == 31 and names[-1] == "m30"  # the input's name column names the molecules
    else:
        assert out.read_text().count("$$$$") == 30 and "<anomaly>" in out.read_text()


def test_score_reads_parquet_and_smiles_arguments(run, tmp_path: Path) -> None:
    src = tmp_path / "in.parquet"
    pd.read_csv(MOLECULES).to_parquet(src)
    code, text = run("score", src, "-o", tmp_path / "o.csv", "--chunk-size", 16, "--device", "cpu")
    assert code == 0, text
    assert len(pd.read_csv(tmp_path / "o.csv")) == 31
    code, text = run("score", "CCO", "c1ccccc1C(=O)NC", "--device", "cpu")
    assert code == 0 and "2 molecules scored" in text and "in_domain" in text


def test_score_errors(run, tmp_path: Path) -> None:
    code, text = run("score", tmp_path / "missing.csv", "--device", "cpu")
    assert code == 1 and "file not found" in text and "Traceback" not in text
    code, text = run("score", MOLECULES, "-o", tmp_path / "x.xlsx")
    assert code == 2 and "unknown extension" in text
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, text = run("score", empty, "-o", tmp_path / "x.csv")
    assert code == 1 and "empty" in text


def test_domain_calibrates_a_checkpoint(run, tmp_path: Path, model_without_domain: Path) -> None:
    ckpt = model_without_domain
    code, text = run("score", "CCO", "-m", ckpt, "--device", "cpu")
    assert code == 0 and "no calibrated domain" in text
    code, text = run("domain", "-m", ckpt, "--data", DATA / "score_train.csv", "--n-reference", 150,
                     "--n-calibration", 150, "--quantile", 0.95, "--device", "cpu")
    assert code == 0, text
    domain = Domain.load(ckpt)
    assert domain is not None and len(domain.reference) == 150 and domain.info["n_calibration"] == 150
    assert domain.quantile == 0.95 and domain.info["source"] == str(DATA / "score_train.csv")
    code, text = run("domain", "-m", ckpt, "--data", DATA / "score_train.csv", "--quantile", 2)
    assert code == 2 and "quantile" in text
