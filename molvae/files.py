"""Bottom-layer file helpers: one atomic writer, plain-array (.npz) files, JSON text, content keys,
the 64-bit SMILES hash, and the library versions written into every record.

Nothing here imports torch or RDKit at module level, so data, evaluation and the CLI can use it without
paying for (or needing) either. Every write goes through `atomic_path`: the bytes go to a temporary file
beside the target, are flushed to disk, and the file is renamed over the target (`os.replace`), so a
crash leaves either the old file or the new one, never a torn one.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from molvae.errors import DataError

__all__ = [
    "atomic_path", "atomic_write_bytes", "atomic_write_text", "json_text", "save_npz", "load_npz",
    "strings_digest", "content_key", "smiles_hash", "hash_smiles", "library_versions",
]


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write to; on success it is synced and renamed to `path`,
    on any error it is deleted and `path` is left as it was.

    The directory must exist (DataError otherwise): a mistyped output directory is the user's to fix, and
    silently creating it would hide the typo. The writers below create it where that is the intent.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise DataError(f"cannot write {path}: directory {path.parent} does not exist")
    # A random part keeps concurrent writers (threads, processes) of one target apart; the file is
    # created by whoever writes it, so it gets the usual permissions (mkstemp would make it 0600).
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the rename must not reach the disk before the data do
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically, creating its directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically, creating its directory."""
    atomic_write_bytes(path, text.encode("utf-8"))


def json_text(obj: Any, default: Callable[[Any], Any] | None = None) -> str:
    """`obj` as indented JSON text with a final newline; NaN and infinity are refused (they are not JSON).
    `default` converts values JSON cannot hold (e.g. `str` for paths)."""
    return json.dumps(obj, indent=2, allow_nan=False, default=default) + "\n"


def save_npz(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], compressed: bool = False) -> None:
    """Write `arrays` as a plain ``.npz`` atomically, creating the directory. Object arrays are refused
    (they would need pickle to read back). `compressed`: zip-deflate (for files that ship)."""
    path = Path(path)
    for name, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise TypeError(f"{name}: object arrays cannot be stored without pickle")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz"
        (np.savez_compressed if compressed else np.savez)(fh, **arrays)


def load_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray] | None:
    """Arrays of an ``.npz`` file, or None if it is missing or unreadable (pickles are refused, so a
    file holding object arrays counts as unreadable)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None


def strings_digest(strings: Iterable[str], prefix: bytes = b"") -> str:
    """sha256 (hex) of `prefix`, then every string in order, each followed by a newline: identifies a
    list of SMILES by its content (order matters: statistics such as a seeded subset depend on it)."""
    h = hashlib.sha256(prefix)
    for s in strings:
        h.update(str(s).encode())
        h.update(b"\n")
    return h.hexdigest()


def content_key(strings: Iterable[str], tag: str) -> str:
    """`strings_digest` (24 hex chars) of `tag`, the RDKit version and the strings: names a cache file after
    exactly what it was computed from, and with which RDKit (RDKit is imported here, lazily)."""
    from rdkit import __version__ as rdkit_version

    return strings_digest(strings, f"{tag}\0rdkit={rdkit_version}\0".encode())[:24]


def smiles_hash(smiles: str) -> int:
    """Stable 64-bit hash of a SMILES string: the first 8 bytes of its UTF-8 blake2b, little-endian.

    Checkpoints store these (``train_hashes.npy``) and novelty compares against them, so the definition
    is fixed. Collisions among 10^7 strings have probability ~3e-6.
    """
    return int.from_bytes(hashlib.blake2b(smiles.encode("utf-8"), digest_size=8).digest(), "little")


def hash_smiles(smiles: Sequence[str]) -> np.ndarray:
    """Sorted unique uint64 `smiles_hash` of each string (membership: np.isin / np.searchsorted)."""
    return np.unique(np.fromiter((smiles_hash(s) for s in smiles), dtype=np.uint64, count=len(smiles)))


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries molvae's results depend on ("" when absent)."""
    out = {}
    for name in ("molvae", "torch", "numpy", "selfies", "rdkit", "safetensors"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = ""
    if not out["molvae"]:  # a checkout used without `pip install`
        from molvae import __version__

        out["molvae"] = __version__
    return out
