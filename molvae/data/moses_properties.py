"""RDKit properties of the MOSES training split, shipped with molvae so that a new machine does not compute them.

QED and SA cost about a millisecond per molecule, so computing logP, QED and SA for the 1,584,663 MOSES
training molecules takes most of the data preparation of a full-MOSES training run (docs/training.md, "Data
preparation"). They are the same numbers on every machine, so they ship once in
``molvae/resources/moses_train_properties.npz``: one float16 column per property (float16 keeps logP and SA
within 0.002 and QED within 0.0003, far below the property head's error) and what identifies the molecules:
their number and the sha256 of the canonical SMILES list in the order molvae reads the split
(`molvae.files.strings_digest`). A list is matched by that content, never by the dataset's name, so any other
list (an edited file, a subset, another canonicalization) falls back to computing, and so does a property the
table lacks. The table records the RDKit version it was computed with.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from molvae.files import load_npz, save_npz, strings_digest

__all__ = ["SHIPPED_PATH", "shipped_properties", "write_table"]

SHIPPED_PATH = Path(__file__).resolve().parents[1] / "resources" / "moses_train_properties.npz"
FORMAT = "molvae-moses-properties-v1"


def shipped_properties(smiles: Sequence[str], names: Sequence[str],
                       path: str | Path | None = None) -> dict[str, np.ndarray]:
    """{name: float64 values (len(smiles),)} for those of `names` the table at `path` (default: the shipped one)
    holds, when `smiles` is exactly the list it was built from (same molecules, same order); {} otherwise."""
    arrays = load_npz(Path(path or SHIPPED_PATH))
    if arrays is None or str(arrays["format"]) != FORMAT or int(arrays["n"]) != len(smiles):
        return {}
    wanted = [n for n in names if f"values.{n}" in arrays]
    if not wanted or strings_digest(smiles) != str(arrays["digest"]):
        return {}
    return {n: arrays[f"values.{n}"].astype(np.float64) for n in wanted}


def write_table(path: str | Path, smiles: Sequence[str], values: Mapping[str, np.ndarray], rdkit_version: str) -> Path:
    """Write the table of `values` ({name: (len(smiles),) array}) for the canonical SMILES list `smiles`."""
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT), "n": np.array(len(smiles)), "digest": np.array(strings_digest(smiles)),
        "rdkit_version": np.array(rdkit_version),
    }
    for name, column in values.items():
        column = np.asarray(column, dtype=np.float64)
        if column.shape != (len(smiles),):
            raise ValueError(f"property {name!r} has shape {column.shape}, expected ({len(smiles)},)")
        arrays[f"values.{name}"] = column.astype(np.float16)
    save_npz(Path(path), arrays, compressed=True)
    return Path(path)
