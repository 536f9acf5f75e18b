"""Reading molecule files in chunks, for commands that stream a file through the model (`molvae score`):
memory is bounded by the chunk size, not by the file.

The formats and column rules are those of `molvae.data.read.read_table` (.csv/.tsv/.smi/.sdf, optionally
gzipped, SMILES column found by name), plus .parquet. Each chunk is a DataFrame of strings with a
RangeIndex; its SMILES column is named by the second item of each pair.
"""
from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from molvae import chem
from molvae.data.read import SMILES_COLUMN_NAMES, _base_suffix, _find_smiles_column, _sniff_binary, read_table
from molvae.errors import DataError

__all__ = ["READ_FORMATS", "iter_molecules", "count_rows"]

READ_FORMATS = (".csv", ".tsv", ".smi", ".smiles", ".txt", ".sdf", ".parquet")


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
