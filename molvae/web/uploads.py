"""Uploaded molecule files: size checked before and while reading, parsed by `molvae.data.read_table`."""
from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import Request
from starlette.datastructures import UploadFile

from molvae.errors import DataError, UsageError
from molvae.web.limits import Limits, check_smiles

__all__ = ["read_upload", "UPLOAD_SUFFIXES"]

UPLOAD_SUFFIXES = (".csv", ".tsv", ".smi", ".smiles", ".txt", ".sdf", ".sd", ".mol")
_NAME_COLUMNS = ("name", "id", "title", "compound", "compound_id", "mol_id", "_name")


def _too_big(limits: Limits, size: int | None = None) -> UsageError:
    got = f" ({size:,} bytes)" if size is not None else ""
    return UsageError(f"the file is too large{got}: the limit is {limits.max_upload_bytes:,} bytes "
                      f"({limits.max_upload_bytes / 2**20:.0f} MiB) per upload (max_upload_bytes)")


async def read_upload(request: Request, limits: Limits) -> tuple[list[str], list[str], str]:
    """(smiles, names, file name) of the file in the multipart field `file`. UsageError for a missing or
    too large file or too many molecules; DataError for a file molvae cannot read (its reason)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limits.max_upload_bytes + 64 * 1024:
        raise _too_big(limits, int(length))
    try:
        form = await request.form(max_files=1, max_fields=10)
    except Exception as exc:  # malformed multipart body
        raise UsageError(f"cannot read the upload: send a multipart form with a field 'file' ({exc})") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise UsageError("no file in the upload: send it as the multipart field 'file'")
    filename = Path(upload.filename or "upload.csv").name
    suffix = Path(filename[:-3] if filename.lower().endswith(".gz") else filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise UsageError(f"{filename}: unsupported file type {suffix or '(none)'!r}; upload .csv, .tsv, .smi "
                         "or .sdf")
    data = await upload.read(limits.max_upload_bytes + 1)
    if len(data) > limits.max_upload_bytes:
        raise _too_big(limits)
    if not data.strip():
        raise DataError(f"{filename}: the file is empty")
    return (*_parse(data, filename, suffix, limits), filename)


def _parse(data: bytes, filename: str, suffix: str, limits: Limits) -> tuple[list[str], list[str]]:
    from molvae.data import read_table

    if suffix in (".sd", ".mol"):
        suffix = ".sdf"
    with tempfile.TemporaryDirectory(prefix="molvae-upload-") as tmp:
        path = Path(tmp) / ("upload" + suffix + (".gz" if filename.lower().endswith(".gz") else ""))
        path.write_bytes(data)
        try:
            table, col = read_table(path)
        except DataError as exc:
            raise DataError(str(exc).replace(str(path), filename)) from None
    smiles = table[col].astype(str).tolist()
    lower = {str(c).lower(): c for c in table.columns if c != col}
    name_col = next((lower[n] for n in _NAME_COLUMNS if n in lower), None)
    names = table[name_col].astype(str).tolist() if name_col is not None else [""] * len(smiles)
    return check_smiles(smiles, limits, what=f"{filename} row"), names
