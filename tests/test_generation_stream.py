"""Sampling straight to a file in chunks (`molvae.generation.stream`, `molvae sample -o`) and the chunked
writer under it (`molvae.data.write.MoleculeWriter`), on the shipped default model."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import molvae
from molvae.data.write import MoleculeWriter, write_molecules
from molvae.errors import UsageError
from molvae.generation.stream import chunk_seed, sample_to_file

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def shipped() -> molvae.MolVAE:
    return molvae.load(device="cpu", precision="fp32", n_jobs=1)


def test_one_chunk_is_exactly_sample(shipped: molvae.MolVAE, tmp_path: Path) -> None:
    summary = sample_to_file(shipped, tmp_path / "a.csv", 20, chunk_size=50, seed=4)
    write_molecules(shipped.sample(20, seed=4), tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    assert summary.rows == summary.rows_written == summary.drawn == 20 and summary.seed == 4


def test_chunks_count_over_the_whole_run(shipped: molvae.MolVAE, tmp_path: Path) -> None:
    path = tmp_path / "run.csv"
    summary = sample_to_file(shipped, path, 23, chunk_size=6, seed=5, temperature=1.5)
    df = pd.read_csv(path)
    assert len(df) == 23 and summary.rows == 23
    first = shipped.sample(6, seed=chunk_seed(5, 0), temperature=1.5)
    second = shipped.sample(6, seed=chunk_seed(5, 1), temperature=1.5)
    assert df["smiles"].head(12).fillna("").tolist() == pd.concat([first, second])["smiles"].tolist()
    valid = df[df["valid"]]
    distinct = valid.drop_duplicates("canonical")
    assert summary.valid == len(valid) and summary.unique == len(distinct)
    assert summary.novel == int(distinct["novel"].sum())
    assert summary.line(23).startswith(f"23 molecules, valid {len(valid) / 23:.1%}, unique")


def test_smi_names_and_parquet_chunks(shipped: molvae.MolVAE, tmp_path: Path) -> None:
    sample_to_file(shipped, tmp_path / "run.smi", 15, chunk_size=4, seed=6)
    names = [int(line.split("\t")[1]) for line in (tmp_path / "run.smi").read_text().splitlines()]
    assert names == sorted(names) and len(set(names)) == len(names) and max(names) <= 14 and len(names) >= 10
    sample_to_file(shipped, tmp_path / "run.parquet", 15, chunk_size=4, seed=6, properties=["qed"])
    df = pd.read_parquet(tmp_path / "run.parquet")
    assert len(df) == 15 and list(df.columns) == ["smiles", "valid", "canonical", "qed", "novel"]


def test_failed_run_leaves_no_file(shipped: molvae.MolVAE, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown property"):
        sample_to_file(shipped, tmp_path / "x.csv", 10, chunk_size=4, seed=0, where="foo>=1")
    assert list(tmp_path.iterdir()) == []


def test_writer_empty_and_chunked(tmp_path: Path) -> None:
    with MoleculeWriter(tmp_path / "empty.parquet"):
        pass
    assert len(pd.read_parquet(tmp_path / "empty.parquet")) == 0
    with MoleculeWriter(tmp_path / "two.csv") as writer:
        writer.write(pd.DataFrame({"smiles": ["CCO", "C"], "x": [1.0, 2.0]}))
        writer.write(pd.DataFrame({"smiles": ["CCN"], "x": [3.0]}))
    assert pd.read_csv(tmp_path / "two.csv").to_dict("list") == {"smiles": ["CCO", "C", "CCN"], "x": [1.0, 2.0, 3.0]}
    assert writer.rows_written == 3
