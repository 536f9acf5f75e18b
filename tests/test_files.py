"""molvae.files: the one atomic writer and what is built on it, npz files, JSON text, content keys,
the SMILES hash (pinned, the shipped models' train_hashes.npy depend on it), library versions."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from molvae import files
from molvae.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def test_atomic_path_replaces_on_success_and_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with files.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    with files.atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no temporary file left behind


def test_atomic_path_needs_the_directory_but_writers_create_it(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        with files.atomic_path(tmp_path / "missing" / "x.csv"):
            pass
    files.atomic_write_text(tmp_path / "a" / "b" / "x.txt", "héllo")
    assert (tmp_path / "a" / "b" / "x.txt").read_bytes() == "héllo".encode("utf-8")


def test_written_files_get_ordinary_permissions(tmp_path):
    files.atomic_write_bytes(tmp_path / "x.bin", b"\0")
    assert (tmp_path / "x.bin").stat().st_mode & 0o044  # readable by group/others under the usual umask


def test_npz_round_trip_compressed_and_refuses_pickles(tmp_path):
    arrays = {"a": np.arange(5, dtype=np.float64), "s": np.array(["CCO", "c1ccccc1"])}
    for compressed in (False, True):
        path = tmp_path / f"x{compressed}.npz"
        files.save_npz(path, arrays, compressed=compressed)
        back = files.load_npz(path)
        assert set(back) == {"a", "s"} and back["s"].tolist() == ["CCO", "c1ccccc1"]
        np.testing.assert_array_equal(back["a"], arrays["a"])
    with pytest.raises(TypeError, match="pickle"):
        files.save_npz(tmp_path / "o.npz", {"o": np.array([{"a": 1}], dtype=object)})
    np.savez(tmp_path / "pickled.npz", o=np.array([{"a": 1}], dtype=object))
    assert files.load_npz(tmp_path / "pickled.npz") is None
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert files.load_npz(tmp_path / "junk.npz") is None and files.load_npz(tmp_path / "none.npz") is None


def test_json_text_refuses_nan_and_converts_with_default(tmp_path):
    assert json.loads(files.json_text({"p": Path("a/b")}, default=str)) == {"p": "a/b"}
    assert files.json_text([1]).endswith("\n")
    with pytest.raises(ValueError):
        files.json_text({"x": float("nan")})


def test_smiles_hash_is_pinned_and_hash_smiles_sorted_unique():
    assert files.smiles_hash("CCO") == 0xC353956C6F0B206D
    assert files.smiles_hash("CCO") == int.from_bytes(hashlib.blake2b(b"CCO", digest_size=8).digest(), "little")
    h = files.hash_smiles(["CCO", "c1ccccc1", "CCO"])
    assert h.dtype == np.uint64 and h.tolist() == sorted({files.smiles_hash("CCO"), files.smiles_hash("c1ccccc1")})


def test_shipped_train_hashes_still_match():
    """The shipped models' train_hashes.npy were written with the old checkpoint.smiles_hash: the
    hashes of their own training molecules must be found."""
    import pandas as pd

    from molvae import chem

    smiles = pd.read_csv(ROOT / "data" / "moses_train_20k.csv")["SMILES"].tolist()[:200]
    canon = [chem.canonical(s) for s in smiles]
    for hashes in (ROOT / "molvae" / "pretrained").glob("*/train_hashes.npy"):
        stored = np.load(hashes, allow_pickle=False)
        found = np.isin(files.hash_smiles([c for c in canon if c]), stored).mean()
        assert found > 0.95, (hashes, found)  # the shipped models were trained on MOSES train


def test_content_key_is_unchanged():
    """Cache files on users' disks are named by it: the definition must not drift."""
    from rdkit import __version__ as rdkit_version

    h = hashlib.sha256(f"tag\0rdkit={rdkit_version}\0".encode())
    for s in ["CCO", "N"]:
        h.update(s.encode() + b"\n")
    assert files.content_key(["CCO", "N"], "tag") == h.hexdigest()[:24]


def test_library_versions_and_no_heavy_imports():
    versions = files.library_versions()
    assert versions["molvae"] and versions["numpy"] == np.__version__
    code = ("import sys, molvae.files; bad = [m for m in ('torch', 'rdkit') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
