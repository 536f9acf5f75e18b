"""Reading molecule tables: .csv/.tsv/.smi/.sdf, optionally gzipped, and finding their SMILES column; whole
(`read_table`) or in chunks (`iter_molecules`, .parquet too, for commands that stream a file through the
model with memory bounded by the chunk).

Only reading happens here; validation, rejected rows and encoding live in `molvae.data`.
"""
from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Sequence

import pandas as pd

from molvae import chem
from molvae.errors import DataError

__all__ = ["SMILES_COLUMN_NAMES", "read_table", "iter_molecules", "count_rows"]

SMILES_COLUMN_NAMES = ("smiles", "canonical_smiles", "smi", "smiles_string", "molecule", "mol")


def _sniff_binary(path: Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(4096)
        except OSError as exc:
            raise DataError(f"{path}: not a readable gzip file ({exc}).") from exc
    if b"\x00" in head:
        raise DataError(f"{path}: looks like a binary file, not a text table of molecules (CSV, SMI or SDF).")


def _base_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _find_smiles_column(columns: Sequence[str], wanted: str | None, path: Path) -> str:
    lower = {str(c).lower(): c for c in columns}
    if wanted is not None:
        if wanted in columns:
            return wanted
        if wanted.lower() in lower:
            return lower[wanted.lower()]
        raise DataError(f"{path}: no column named {wanted!r}; columns are {list(columns)}.")
    for name in SMILES_COLUMN_NAMES:
        if name in lower:
            return lower[name]
    raise DataError(
        f"{path}: no SMILES column found (looked for {', '.join(SMILES_COLUMN_NAMES)}, any case); "
        f"columns are {list(columns)[:20]}. Name it with --smiles-col."
    )


def read_table(path: str | Path, smiles_col: str | None = None) -> tuple[pd.DataFrame, str]:
    """Read .csv/.tsv/.smi/.sdf (optionally .gz) into a DataFrame; return it and the SMILES column name.

    SMILES values are kept as strings exactly as read (empty cells become ""). SDF molecules are written
    out as SMILES, with their data fields as further columns.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found.")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a CSV, SMI or SDF file.")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty.")
    _sniff_binary(path)
    suffix = _base_suffix(path)
    if suffix == ".sdf":
        return _read_sdf(path), "smiles"
    if suffix in (".smi", ".smiles", ".txt"):
        df = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, keep_default_na=False, engine="python",
                         on_bad_lines="skip", usecols=[0]).rename(columns={0: "smiles"})
        if len(df) and df["smiles"].iloc[0].lower() in SMILES_COLUMN_NAMES:
            df = df.iloc[1:].reset_index(drop=True)
        return df, "smiles"
    if suffix not in (".csv", ".tsv"):
        raise DataError(f"{path}: unsupported file type {suffix!r}; use .csv, .tsv, .smi or .sdf (optionally .gz).")
    sep = "\t" if suffix == ".tsv" else ","
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as {suffix[1:].upper()} ({exc}).") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: the file is empty.") from exc
    if df.shape[1] == 1 and smiles_col is None and str(df.columns[0]).lower() not in SMILES_COLUMN_NAMES:
        raise DataError(
            f"{path}: no SMILES column found; the only column is {df.columns[0]!r}. "
            "Add a header named 'smiles' or pass --smiles-col."
        )
    return df, _find_smiles_column(list(df.columns), smiles_col, path)


def _read_sdf(path: Path) -> pd.DataFrame:
    from rdkit import Chem

    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with chem.rdkit_quiet(), opener(path, "rb") as fh:
        for mol in Chem.ForwardSDMolSupplier(fh, sanitize=True):
            if mol is None:
                rows.append({"smiles": ""})
                continue
            row = {"smiles": Chem.MolToSmiles(mol)}
            row.update({k: str(v) for k, v in mol.GetPropsAsDict().items()})
            rows.append(row)
    if not rows:
        raise DataError(f"{path}: no molecules in this SDF file.")
    return pd.DataFrame(rows).fillna("")


def _parquet_chunks(path: Path, smiles_col: str | None, chunk_size: int) -> Iterator[tuple[pd.DataFrame, str]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise DataError(f"reading .parquet needs pyarrow ({exc}); pip install pyarrow") from exc
    try:
        handle = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own error types for a file that is not parquet
        raise DataError(f"{path}: not a readable parquet file ({exc})") from exc
    col = _find_smiles_column(handle.schema_arrow.names, smiles_col, path)
    for batch in handle.iter_batches(batch_size=chunk_size):
        df = batch.to_pandas()
        df[col] = df[col].fillna("").astype(str)
        yield df.reset_index(drop=True), col


def _sdf_chunks(path: Path, chunk_size: int) -> Iterator[tuple[pd.DataFrame, str]]:
    from rdkit import Chem

    opener = gzip.open if path.suffix == ".gz" else open
    rows: list[dict[str, str]] = []
    with chem.rdkit_quiet(), opener(path, "rb") as fh:
        for mol in Chem.ForwardSDMolSupplier(fh, sanitize=True):
            row = {"smiles": ""} if mol is None else {"smiles": Chem.MolToSmiles(mol),
                                                      **{k: str(v) for k, v in mol.GetPropsAsDict().items()}}
            rows.append(row)
            if len(rows) == chunk_size:
                yield pd.DataFrame(rows).fillna(""), "smiles"
                rows = []
    if rows:
        yield pd.DataFrame(rows).fillna(""), "smiles"


def iter_molecules(path: str | Path, smiles_col: str | None = None,
                   chunk_size: int = 10_000) -> Iterator[tuple[pd.DataFrame, str]]:
    """Chunks (DataFrame of at most `chunk_size` rows, SMILES column name) of a molecule file, in order.

    The file is checked as `read_table` checks it (missing, empty, binary, no SMILES column: DataError);
    a text table's first chunk is read by `read_table` itself so that every rule is the same.
    """
    path = Path(path)
    suffix = _base_suffix(path)
    if suffix == ".parquet" and path.is_file():
        yield from _parquet_chunks(path, smiles_col, chunk_size)
        return
    if suffix == ".sdf" and path.is_file() and path.stat().st_size > 0:
        yield from _sdf_chunks(path, chunk_size)
        return
    col = _check_text_table(path, suffix, smiles_col)
    if suffix in (".smi", ".smiles", ".txt"):
        reader = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, keep_default_na=False, engine="python",
                             on_bad_lines="skip", usecols=[0], chunksize=chunk_size)
        first = True
        for df in reader:
            df = df.rename(columns={0: "smiles"})
            if first and len(df) and df["smiles"].iloc[0].lower() in SMILES_COLUMN_NAMES:
                df = df.iloc[1:]
            first = False
            yield df.reset_index(drop=True), "smiles"
        return
    sep = "\t" if suffix == ".tsv" else ","
    try:
        for df in pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, chunksize=chunk_size):
            yield df.reset_index(drop=True), col
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as {suffix[1:].upper()} ({exc}).") from exc


def _check_text_table(path: Path, suffix: str, smiles_col: str | None) -> str:
    """`read_table`'s checks of a text table and its SMILES column; a file under 1 MB (or a missing,
    empty or unsupported one) is simply read by `read_table`, a larger one is checked from its head."""
    text = suffix in (".smi", ".smiles", ".txt", ".csv", ".tsv")
    if not path.is_file() or path.stat().st_size < (1 << 20) or not text:
        return read_table(path, smiles_col)[1]
    _sniff_binary(path)
    if suffix not in (".csv", ".tsv"):
        return "smiles"
    columns = list(pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, nrows=0).columns)
    return _find_smiles_column(columns, smiles_col, path)


def count_rows(path: str | Path) -> int | None:
    """Rows of a text table or parquet file, for a progress bar (None when counting would mean parsing)."""
    path = Path(path)
    suffix = _base_suffix(path)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    if suffix == ".sdf":
        return None
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        lines = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
    return max(lines - (0 if suffix in (".smi", ".smiles", ".txt") else 1), 0)
