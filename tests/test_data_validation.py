"""Data reading, validation report counts on planted bad rows, encoding and batching."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molvae import chem, data
from molvae.data import validation
from molvae.errors import DataError, UsageError
from molvae.data.datasets import embedded_path
from molvae.data.tokens import Tokenizer, Vocabulary

HERE = Path(__file__).parent / "data"


@pytest.fixture()
def planted(tmp_path: Path) -> Path:
    target = tmp_path / "planted.csv"
    shutil.copy(HERE / "planted.csv", target)
    return target


@pytest.fixture(scope="module")
def moses_vocab() -> tuple[Tokenizer, Vocabulary]:
    tok = Tokenizer("smiles")
    smiles = pd.read_csv(embedded_path("train"))["SMILES"][:2000]
    return tok, Vocabulary.build([tok.tokenize(s) for s in smiles])


def test_report_counts_planted_rows(planted: Path, moses_vocab) -> None:
    tok, vocab = moses_vocab
    df, report = data.load_molecules(planted, properties=["pIC50", "logP"], tokenizer=tok, vocab=vocab, max_len=100)
    assert report.n_read == 50
    assert report.n_empty == 1
    assert report.n_invalid == 3  # C1CC, c1cccc1, Xyz
    assert report.n_duplicate == 2  # mol0 again, and mol2 again (its missing pIC50 is no error: sparse labels)
    assert report.n_bad_property == 1  # 'abc'
    assert report.n_fragments == 1  # the sodium salt
    assert report.n_too_long == 1  # 500 carbons
    assert report.n_unknown_token == 1  # [Se] is not in the MOSES vocabulary
    assert report.n_valid == 40  # the 40 good rows; the bad-property rows repeat good molecules
    assert len(df) == report.n_valid
    assert len(report.rejected) == report.n_read - report.n_valid
    # every rejected row names its input row and its reason, and the file is written beside the input
    rejected = pd.read_csv(planted.with_name("planted.rejected.csv"), keep_default_na=False)
    assert len(rejected) == len(report.rejected)
    assert set(rejected.columns) == {"row", "smiles", "reason"}
    se = rejected[rejected.smiles == "C[Se]C"].iloc[0]
    assert "[Se]" in se.reason
    bad = rejected[rejected.reason.str.contains("abc")]
    assert len(bad) == 1 and "pIC50" in bad.iloc[0].reason
    # properties: the file column kept as float, logP computed by RDKit under the lower-case name
    assert df["pic50"].dtype == float and np.isfinite(df["pic50"]).all() and report.labels["pic50"] == 40
    assert np.isfinite(df["logp"]).all()
    assert "\n" not in report.summary() and "40 valid" in report.summary()


def test_standardize_keeps_salt_parent(planted: Path) -> None:
    df, report = data.load_molecules(planted, standardize=True, rejected_path=None)
    assert "CC(=O)O" in set(df["smiles"])
    assert report.n_fragments == 0


def test_no_valid_row_is_lost_without_tokenizer(planted: Path) -> None:
    df, report = data.load_molecules(planted, rejected_path=None)
    good = pd.read_csv(HERE / "planted.csv", keep_default_na=False)["Smiles"][:40]
    assert set(df["smiles"]) >= {chem.canonical(s) for s in good}


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"", "empty"),
        (b"name,value\nfoo,1\n", "no SMILES column"),
        (b"\x00\x01\x02binary\x00", "binary"),
        (b"smiles\n", "no rows"),
        (b"smiles\nC1CC\nXyz\n", "no usable molecules"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=needle):
        data.load_molecules(path)


def test_unknown_property_is_a_usage_error(planted: Path) -> None:
    with pytest.raises(UsageError, match="potency"):
        data.load_molecules(planted, properties=["potency"])


def test_smi_sdf_and_gz_formats(tmp_path: Path) -> None:
    from rdkit import Chem

    smiles = ["CCO", "c1ccccc1", "CC(=O)Nc1ccc(O)cc1"]
    (tmp_path / "m.smi").write_text("".join(f"{s} id{i}\n" for i, s in enumerate(smiles)))
    with gzip.open(tmp_path / "m.csv.gz", "wt") as fh:
        fh.write("ID,SMILES,y\n" + "".join(f"{i},{s},{i}\n" for i, s in enumerate(smiles)))
    writer = Chem.SDWriter(str(tmp_path / "m.sdf"))
    for i, s in enumerate(smiles):
        mol = Chem.MolFromSmiles(s)
        mol.SetProp("activity", str(i * 1.5))
        writer.write(mol)
    writer.close()
    for name in ("m.smi", "m.csv.gz", "m.sdf"):
        df, report = data.load_molecules(tmp_path / name, rejected_path=None)
        assert sorted(df["smiles"]) == sorted(Chem.CanonSmiles(s) for s in smiles), name
    df, _ = data.load_molecules(tmp_path / "m.sdf", properties=["activity"], rejected_path=None)
    assert df["activity"].tolist() == [0.0, 1.5, 3.0]


def test_encode_and_batches(moses_vocab, tmp_path: Path) -> None:
    tok, vocab = moses_vocab
    source = tmp_path / "m.csv"
    pd.read_csv(embedded_path("train")).iloc[:520].to_csv(source, index=False)
    df, _ = data.load_molecules(source, properties=["qed"], tokenizer=tok, vocab=vocab, rejected_path=None)
    df = df.iloc[:500]
    enc = data.encode(df, vocab, ["qed"])
    assert enc.ids.dtype == np.int16 and enc.ids.shape[0] == 500
    assert (enc.ids[:, 0] == vocab.bos_id).all()
    assert all(enc.ids[i, enc.lengths[i] - 1] == vocab.eos_id for i in range(500))
    assert abs(enc.props.mean()) < 1e-4 and abs(enc.props.std() - 1) < 1e-3
    b1 = data.batches(enc.lengths, 64, seed=1, epoch=0)
    b2 = data.batches(enc.lengths, 64, seed=1, epoch=0)
    b3 = data.batches(enc.lengths, 64, seed=1, epoch=1)
    assert all((x == y).all() for x, y in zip(b1, b2))
    assert not all(len(x) == len(y) and (x == y).all() for x, y in zip(b1, b3))
    assert sorted(np.concatenate(b1).tolist()) == list(range(500))
    # bucketing: padding within a batch is far below what random batches would give
    waste = sum(int(enc.lengths[b].max() * len(b) - enc.lengths[b].sum()) for b in b1)
    assert waste < 0.1 * enc.lengths.sum()
    sub = enc.subset(b1[0])
    assert sub.ids.shape[1] == enc.lengths[b1[0]].max()


def test_split_is_deterministic_and_disjoint() -> None:
    tr, va = data.split_indices(1000, 0.1, seed=3)
    tr2, va2 = data.split_indices(1000, 0.1, seed=3)
    assert (tr == tr2).all() and (va == va2).all()
    assert len(va) == 100 and len(set(tr) & set(va)) == 0 and len(tr) + len(va) == 1000


def test_data_hash_ignores_order() -> None:
    assert data.data_hash(["CCO", "CCN"]) == data.data_hash(["CCN", "CCO"])
    assert data.data_hash(["CCO"]) != data.data_hash(["CCN"])


def test_computed_properties_are_cached_for_large_sets(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MOLVAE_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(validation, "_PROPERTY_CACHE_MIN", 5)
    df, _ = data.load_molecules(embedded_path("test"), properties=("logp", "qed"), rejected_path=None)
    assert len(list((tmp_path / "cache" / "properties").glob("*.npz"))) == 1  # written by load_molecules
    df = df.head(40)
    first = validation._computed_properties(df["smiles"].tolist(), ["logp", "qed"])
    assert len(list((tmp_path / "cache" / "properties").glob("*.npz"))) == 2

    def fail(*args, **kwargs):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(chem, "properties", fail)
    second = validation._computed_properties(df["smiles"].tolist(), ["logp", "qed"])
    pd.testing.assert_frame_equal(first, second)
    np.testing.assert_allclose(second["logp"], df["logp"])
    with pytest.raises(AssertionError, match="cache was not used"):
        validation._computed_properties(df["smiles"].tolist()[1:], ["logp", "qed"])


def test_parallel_tokenization_matches_serial(planted: Path, moses_vocab, monkeypatch) -> None:
    from molvae import parallel

    tokenizer, vocab = moses_vocab
    serial, rep_serial = data.load_molecules(planted, tokenizer=tokenizer, vocab=vocab, max_len=60,
                                             rejected_path=None)
    monkeypatch.setattr(parallel, "_MIN_PARALLEL", 1)
    monkeypatch.setattr(validation, "_TOKENIZE_BLOCK", 7)  # several blocks, the last one short
    par, rep_par = data.load_molecules(planted, tokenizer=tokenizer, vocab=vocab, max_len=60,
                                       rejected_path=None, n_jobs=2)
    pd.testing.assert_frame_equal(serial, par)
    pd.testing.assert_frame_equal(rep_serial.rejected, rep_par.rejected)
    assert rep_par.n_untokenizable == rep_serial.n_untokenizable
