"""Write molecule tables to files chosen by extension: .csv, .smi, .sdf, .parquet.

Every write is atomic (`molvae.files.atomic_path`: a temporary file in the target directory, renamed
over the target), so a crash never leaves a half-written file.
"""
from __future__ import annotations

import datetime
import math
import os
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from molvae.errors import DataError, UsageError
from molvae.files import atomic_path, atomic_write_text, json_text, library_versions

__all__ = ["FORMATS", "output_format", "MoleculeWriter", "write_molecules", "record_path", "write_record"]

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


def _sdf_records(rows: pd.DataFrame, names: Any, writer: Any) -> int:
    """Write the rows' molecules with every other column as an SD field; returns the count written."""
    from molvae import chem

    fields = [c for c in rows.columns if c != "mol"]
    n = 0
    for name, (_, row) in zip(names, rows.iterrows()):
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
    return n


class MoleculeWriter:
    """Write a molecule table to `path` in chunks (`write(df)` per chunk), so that no more than one chunk
    is in memory; the format follows the extension as in `write_molecules`, and every chunk's rows are
    named by their position in the whole stream (.smi/.sdf without a `name` column). The file appears
    atomically when the writer closes without error (use it as a context manager); on an error the
    partial file is removed. Chunks must have the same columns (.parquet: the same types as the first).
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.format = output_format(path)
        self.rows_seen = 0  # rows passed to `write`, written or not
        self.rows_written = 0
        self._stack = ExitStack()
        self._tmp: Path | None = None
        self._handle: Any = None  # open text file, SDWriter or ParquetWriter

    def __enter__(self) -> MoleculeWriter:
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self._handle is None and exc[0] is None:  # nothing written: still leave a valid empty file
                self.write(pd.DataFrame({"smiles": pd.Series([], dtype=object)}))
            if self._handle is not None:
                self._handle.close()
        finally:
            self._stack.__exit__(*exc)

    def _open(self, df: pd.DataFrame) -> None:
        if self.format == ".parquet":
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError as exc:
                raise DataError(f"writing .parquet needs pyarrow ({exc}); pip install pyarrow") from exc
            self._schema = pa.Schema.from_pandas(df.rename(columns=str), preserve_index=False)
            self._handle = pq.ParquetWriter(self._tmp, self._schema)
        elif self.format == ".sdf":
            from rdkit import Chem

            self._handle = Chem.SDWriter(str(self._tmp))
        else:
            self._handle = open(self._tmp, "w", encoding="utf-8", newline="")

    def write(self, df: pd.DataFrame) -> int:
        """Append one chunk (column `smiles`, any others; RangeIndex); returns the rows written."""
        if "smiles" not in df:
            raise UsageError(f"cannot write molecules: the table has no 'smiles' column (columns: {list(df.columns)})")
        df = df.drop(columns=[c for c in ("mol",) if c in df])  # RDKit Mol objects (notebook display) stay out
        first = self._handle is None
        if first:
            self._open(df)
        offset, self.rows_seen = self.rows_seen, self.rows_seen + len(df)
        if self.format == ".csv":
            df.to_csv(self._handle, index=False, header=first)
            n = len(df)
        elif self.format == ".parquet":
            import pyarrow as pa

            self._handle.write_table(pa.Table.from_pandas(df.rename(columns=str), schema=self._schema,
                                                          preserve_index=False))
            n = len(df)
        else:
            rows = _valid_rows(df)
            names = rows["name"] if "name" in rows else rows.index + offset
            if self.format == ".smi":
                for smi, name in zip(rows["smiles"], names):
                    self._handle.write(f"{smi}\t{name}\n")
                n = len(rows)
            else:
                n = _sdf_records(rows, names, self._handle)
        self.rows_written += n
        return n


def write_molecules(df: pd.DataFrame, path: str | os.PathLike[str]) -> int:
    """Write a molecule DataFrame (column `smiles`, any others) to `path`; return the rows written.

    .csv: every row and column. .parquet: every row and column (needs pyarrow).
    .smi: "SMILES<TAB>name" per line, no header, valid molecules only (the name is a
    `name` column if present, else the row index). .sdf: valid molecules only, every
    other column as an SD data field (floats to 6 significant digits, NaN left out).
    Raises UsageError for an unknown extension or a frame without `smiles`.
    """
    output_format(path)
    if "smiles" not in df:
        raise UsageError(f"cannot write molecules: the table has no 'smiles' column (columns: {list(df.columns)})")
    with MoleculeWriter(path) as writer:
        return writer.write(df)


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
