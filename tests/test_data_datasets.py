"""MOSES fetch: counts and the cache (uses the network only through pip, as users do)."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from molvae.data import datasets as moses_data


def _pip_reachable() -> bool:
    return os.environ.get("MOLVAE_OFFLINE") != "1"


def test_embedded_subsets_are_moses() -> None:
    train = moses_data.embedded_path("train").read_text().splitlines()
    test = moses_data.embedded_path("test").read_text().splitlines()
    assert train[0] == "SMILES" and len(train) == 20_001
    assert test[0] == "SMILES" and len(test) == 2_001


@pytest.mark.skipif(not _pip_reachable(), reason="MOLVAE_OFFLINE=1")
def test_fetch_moses_counts_and_second_call_uses_cache(monkeypatch) -> None:
    paths = moses_data.fetch_moses()
    counts = {}
    for split, path in paths.items():
        with gzip.open(path, "rt") as fh:
            counts[split] = sum(1 for _ in fh) - 1
    assert counts == moses_data.MOSES_COUNTS
    def no_download(*args, **kwargs):
        raise AssertionError("a cached fetch must not touch the wheel")

    monkeypatch.setattr(moses_data, "find_moses_wheel", no_download)
    assert moses_data.fetch_moses() == paths


def test_corrupt_cache_is_replaced(tmp_path: Path, monkeypatch) -> None:
    if not _pip_reachable():
        pytest.skip("MOLVAE_OFFLINE=1")
    wheel = moses_data.find_moses_wheel()
    monkeypatch.setenv("MOLVAE_DATA", str(tmp_path))
    (tmp_path / "wheels").mkdir()
    os.symlink(wheel, tmp_path / "wheels" / wheel.name)
    (tmp_path / "moses").mkdir()
    (tmp_path / "moses" / "test.csv.gz").write_bytes(b"garbage")
    paths = moses_data.fetch_moses()
    assert moses_data._sha256(paths["test"]) == moses_data.MOSES_SPLITS["test"]


def test_dataset_names_resolve_in_one_place(tmp_path: Path) -> None:
    from molvae.errors import DataError

    assert moses_data.dataset_path("embedded", "test") == moses_data.embedded_path("test")
    assert moses_data.dataset_path("Embedded", "train") == moses_data.embedded_path("train")
    assert moses_data.dataset_path(tmp_path / "mine.csv", "train") == tmp_path / "mine.csv"
    assert moses_data.is_dataset_name("moses") and not moses_data.is_dataset_name(tmp_path / "moses.csv")
    with pytest.raises(DataError, match="no 'test_scaffolds' split"):
        moses_data.dataset_path("embedded", "test_scaffolds")
    if _pip_reachable():
        assert moses_data.dataset_path("moses", "test_scaffolds") == moses_data.fetch_moses()["test_scaffolds"]
