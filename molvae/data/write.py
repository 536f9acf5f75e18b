"""Write molecule tables to files chosen by extension: .csv, .smi, .sdf, .parquet.

Every write is atomic (`molvae.files.atomic_path`: a temporary file in the target directory, renamed
over the target), so a crash never leaves a half-written file.
"""
from __future__ import annotations

import datetime
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from molvae.errors import DataError, UsageError
from molvae.files import atomic_path, atomic_write_text, json_text, library_versions

__all__ = ["FORMATS", "output_format", "write_molecules", "record_path", "write_record"]

FORMATS: tuple[str, ...] = (".csv", ".smi", ".sdf", ".parquet")


def output_format(path: str | os.PathLike[str]) -> str:
    """The format (one of `FORMATS`) for `path`, from its extension (case-insensitive).

    Raises UsageError for any other extension.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(
            f"cannot write {os.fspath(path)!r}: unknown extension {suffix or '(none)'!r}; "
            f"use one of {', '.join(FORMATS)}"
        )
    return suffix


def _valid_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that hold a molecule: `valid` when the column exists, else non-empty `smiles`."""
    if "valid" in df:
        return df[df["valid"].astype(bool)]
    return df[df["smiles"].astype(str).str.strip() != ""]


def _sd_value(value: object) -> str | None:
    """Text of one SD field, or None to leave the field out (missing values)."""
    if value is None:
        return None
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else f"{float(value):.6g}"
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    text = str(value)
    return text.replace("\n", " ")


def _write_sdf(df: pd.DataFrame, tmp: Path) -> int:
    from rdkit import Chem

    from molvae import chem

    fields = [c for c in df.columns if c != "mol"]
    names = df["name"] if "name" in df else df.index
    n = 0
    writer = Chem.SDWriter(str(tmp))
    try:
        for name, (_, row) in zip(names, df.iterrows()):
            mol = chem.to_mol(row["smiles"])
            if mol is None:
                continue
            mol.SetProp("_Name", str(name))
            for col in fields:
                text = _sd_value(row[col])
                if text is not None:
                    mol.SetProp(str(col), text)
            writer.write(mol)
            n += 1
    finally:
        writer.close()
    return n


def write_molecules(df: pd.DataFrame, path: str | os.PathLike[str]) -> int:
    """Write a molecule DataFrame (column `smiles`, any others) to `path`; return the rows written.

    .csv: every row and column. .parquet: every row and column (needs pyarrow).
    .smi: "SMILES<TAB>name" per line, no header, valid molecules only (the name is a
    `name` column if present, else the row index). .sdf: valid molecules only, every
    other column as an SD data field (floats to 6 significant digits, NaN left out).
    Raises UsageError for an unknown extension or a frame without `smiles`.
    """
    fmt = output_format(path)
    if "smiles" not in df:
        raise UsageError(f"cannot write molecules: the table has no 'smiles' column (columns: {list(df.columns)})")
    df = df.drop(columns=[c for c in ("mol",) if c in df])  # RDKit Mol objects (notebook display) stay out
    with atomic_path(path) as tmp:
        if fmt == ".csv":
            df.to_csv(tmp, index=False)
            return len(df)
        if fmt == ".parquet":
            try:
                df.rename(columns=str).to_parquet(tmp, index=False)
            except ImportError as exc:
                raise DataError(f"writing .parquet needs pyarrow ({exc}); pip install pyarrow") from exc
            return len(df)
        rows = _valid_rows(df)
        if fmt == ".smi":
            names = rows["name"] if "name" in rows else rows.index
            with open(tmp, "w", encoding="utf-8") as fh:
                for smi, name in zip(rows["smiles"], names):
                    fh.write(f"{smi}\t{name}\n")
            return len(rows)
        return _write_sdf(rows, tmp)


def record_path(path: str | os.PathLike[str]) -> Path:
    """Where the run record of output `path` goes: `out.csv` -> `out.config.json`."""
    return Path(path).with_suffix(".config.json")


def write_record(path: str | os.PathLike[str], command: str, settings: Mapping[str, Any],
                 model: Mapping[str, Any] | None = None, **facts: Any) -> Path:
    """Write the run record beside output `path` (see `record_path`) and return its path.

    The record holds what regenerates the file: the command, its settings as given, the model
    (name, directory, representation), `facts` such as the seed actually drawn and the row count,
    the library versions and the time (UTC). Values JSON cannot hold (paths) are written as strings.
    """
    record = {
        "command": command,
        "settings": dict(settings),
        "model": dict(model or {}),
        **facts,
        "versions": library_versions(),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    target = record_path(path)
    atomic_write_text(target, json_text(record, default=str))
    return target
