"""Validating molecule tables row by row, rejected rows kept with their reasons.

Nothing is dropped silently: every rejected row is counted in a `ValidationReport` and written, with its
reason, to `<name>.rejected.csv` beside the input (or where the caller says).

Property labels may be sparse (an assay table where many cells are empty): a missing value becomes NaN and
the molecule still trains the VAE; only a value that is present but not a finite number rejects its row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from molvae import chem
from molvae.errors import DataError, TokenizationError, UsageError
from molvae.data.datasets import cache_dir, dataset_path, is_dataset_name
from molvae.data.read import read_table

if TYPE_CHECKING:
    from molvae.data.tokens import Tokenizer, Vocabulary

__all__ = ["ValidationReport", "load_molecules", "MISSING_VALUES"]

# Cells read as "no label" (compared stripped and lower-cased): the empty cell and the usual spellings of a
# missing value in spreadsheets and pandas/R exports. Anything else that is not a number (">10", "ND") is
# rejected with its row, since only the user knows what a censored or qualitative value should mean.
MISSING_VALUES = frozenset({"", "na", "n/a", "nan", "null", "none", "#n/a", "<na>"})


@dataclass
class ValidationReport:
    """Counts of what happened to each input row; `rejected` holds one row per rejection."""

    source: str
    n_read: int = 0
    n_valid: int = 0
    n_empty: int = 0
    n_invalid: int = 0
    n_duplicate: int = 0
    n_bad_property: int = 0
    n_unknown_token: int = 0
    n_too_long: int = 0
    n_untokenizable: int = 0
    n_fragments: int = 0
    rejected: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["row", "smiles", "reason"]))
    rejected_path: Path | None = None
    labels: dict[str, int] = field(default_factory=dict)  # property name -> valid molecules that have a value
    computed: tuple[str, ...] = ()  # properties RDKit computed (not columns of the file)

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k.startswith("n_")}

    def summary(self) -> str:
        """One paragraph for the terminal."""
        parts = [f"{self.n_read} rows read from {self.source}", f"{self.n_valid} valid"]
        for key, label in [
            ("n_empty", "empty"),
            ("n_invalid", "invalid SMILES"),
            ("n_duplicate", "duplicates"),
            ("n_bad_property", "bad property values"),
            ("n_unknown_token", "unknown tokens"),
            ("n_too_long", "too long"),
            ("n_untokenizable", "not tokenizable"),
            ("n_fragments", "salts or mixtures"),
        ]:
            if getattr(self, key):
                parts.append(f"{getattr(self, key)} {label}")
        text = ", ".join(parts) + "."
        if self.labels:
            text += " Property labels: " + ", ".join(
                f"{name} {n} of {self.n_valid}" for name, n in self.labels.items()) + "."
        if self.rejected_path is not None and len(self.rejected):
            text += f" Rejected rows written to {self.rejected_path}."
        return text


def _default_rejected_path(path: Path) -> Path:
    name = path.name
    for suf in reversed(path.suffixes):
        name = name[: -len(suf)]
    return path.with_name(name + ".rejected.csv")


def _canon_with_reason(smiles: str) -> tuple[str | None, str | None]:
    if not smiles.strip():
        return None, "empty"
    mol, reason = chem.parse(smiles.strip())
    if mol is None:
        return None, f"invalid SMILES: {reason}"
    from rdkit import Chem

    out = Chem.MolToSmiles(mol)
    if "." in out:
        return None, "several fragments (a salt or mixture): standardize to keep the largest, neutralized fragment"
    return out, None


def _standardized_with_reason(smiles: str) -> tuple[str | None, str | None]:
    canon, reason = _canon_with_reason(smiles)
    if canon is not None or reason is None or not reason.startswith("several"):
        return canon, reason
    std = chem.standardize(smiles.strip())
    return (std, None) if std else (None, "standardization failed")


def _tokenize_with_reason(smiles: str, tokenizer: "Tokenizer") -> tuple[list[str] | None, str | None]:
    try:
        return tokenizer.tokenize(smiles), None
    except TokenizationError as exc:
        return None, str(exc)


_TOKENIZE_BLOCK = 100_000


def _tokenize_all(tokenizer: "Tokenizer", smiles: np.ndarray, idx: np.ndarray, n_jobs: int):
    """Yield (i, (tokens or None, reason)) for each index in `idx`, in order.

    SELFIES encoding costs about 0.7 ms per molecule (20 minutes for MOSES on one core), so it runs in
    `n_jobs` processes, a block at a time: the caller shares identical token strings block by block, and a
    whole unshared result list would briefly cost gigabytes.
    """
    from functools import partial

    from molvae.parallel import pmap

    fn = partial(_tokenize_with_reason, tokenizer=tokenizer)
    for start in range(0, len(idx), _TOKENIZE_BLOCK):
        block = idx[start:start + _TOKENIZE_BLOCK]
        yield from zip(block, pmap(fn, [str(smiles[i]) for i in block], n_jobs=n_jobs))


def load_molecules(
    source: str | Path,
    smiles_col: str | None = None,
    properties: Sequence[str] = (),
    tokenizer: "Tokenizer | None" = None,
    vocab: "Vocabulary | None" = None,
    max_len: int | None = None,
    rejected_path: Path | str | None = "auto",
    n_jobs: int = 1,
    deduplicate: bool = True,
    standardize: bool = False,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Read and validate a molecule file.

    Returns a DataFrame with `smiles` (RDKit canonical), `tokens` (when a tokenizer is given), one float
    column per property (RDKit-computable names such as logp/qed/sa are computed unless the file has that
    column), and `row` (the 0-based data row in the input). Every rejected row goes to the report and to
    `rejected_path` ("auto": `<name>.rejected.csv` beside a user file; None: not written).
    `max_len` counts tokens, without BOS/EOS. Molecules of several fragments (salts, mixtures) are rejected
    unless `standardize` is set, which keeps the largest fragment, neutralized (`chem.standardize`).
    A property cell that is empty or spells a missing value (`MISSING_VALUES`) is NaN and its molecule is
    kept; one that is not a finite number rejects the row. With `deduplicate`, a molecule in several rows is
    kept once, each property taking its first value in any of them (tables with one row per assay).
    Raises DataError when nothing valid remains, or when a property has no value among the valid molecules.
    """
    path = dataset_path(source, "train")
    raw, col = read_table(path, smiles_col)
    if len(raw) == 0:
        raise DataError(f"{path}: the file has a header but no rows.")
    rows = _Rows(raw[col].astype(str).tolist(), ValidationReport(source=str(source), n_read=len(raw)))
    df = _canonicalize(rows, standardize, n_jobs)
    prop_names = _resolve_property_columns(properties, raw.columns)
    _read_labels(df, raw, prop_names, rows, path)
    if deduplicate:
        _reject_duplicates(df, [name for name, file_col in prop_names if file_col is not None], rows)
    if tokenizer is not None:
        df["tokens"] = _tokens(df["smiles"].to_numpy(), rows, tokenizer, vocab, max_len, n_jobs)
    _add_computed_properties(df, [name for name, file_col in prop_names if file_col is None], rows, n_jobs)
    out = _accepted(df, rows, [name for name, _ in prop_names], source, path, rejected_path)
    for name, file_col in prop_names:  # labelled rows may all have been rejected for other reasons
        _require_labels(path, file_col or name, out[name].to_numpy(dtype=float), rows.report.n_valid,
                        after_validation=True)
    return out, rows.report


class _Rows:
    """The input rows on their way through `load_molecules`: which are still kept, and every rejection
    (row, SMILES as read, reason) counted under its `ValidationReport` counter."""

    def __init__(self, smiles: list[str], report: ValidationReport):
        self.smiles, self.report = smiles, report
        self.keep = np.ones(len(smiles), dtype=bool)
        self.rejected: list[dict] = []

    def reject(self, i: int, reason: str, counter: str) -> None:
        self.keep[i] = False
        self.rejected.append({"row": i, "smiles": self.smiles[i], "reason": reason})
        setattr(self.report, counter, getattr(self.report, counter) + 1)


def _canonicalize(rows: _Rows, standardize: bool, n_jobs: int) -> pd.DataFrame:
    """(row, smiles) with the RDKit canonical SMILES of each row (None where rejected: empty, invalid, or a
    salt or mixture unless `standardize` keeps its largest fragment)."""
    from molvae.parallel import pmap

    with chem.rdkit_quiet():
        canon = pmap(_standardized_with_reason if standardize else _canon_with_reason, rows.smiles, n_jobs=n_jobs)
    for i, (c, reason) in enumerate(canon):
        if c is None:
            reason = reason or "invalid"
            counter = ("n_empty" if reason == "empty" else "n_fragments" if reason.startswith("several")
                       else "n_invalid")
            rows.reject(i, reason, counter)
    return pd.DataFrame({"row": np.arange(len(rows.smiles)), "smiles": [c for c, _ in canon]})


def _read_labels(df: pd.DataFrame, raw: pd.DataFrame, prop_names: list[tuple[str, str | None]], rows: _Rows,
                 path: Path) -> None:
    """A float column in `df` per property read from the file: missing spellings are NaN, any other value
    that is not a finite number rejects its row."""
    for name, file_col in prop_names:
        if file_col is None:
            continue
        text = raw[file_col].astype(str).str.strip()
        missing = text.str.lower().isin(MISSING_VALUES).to_numpy()
        values = np.array(pd.to_numeric(text.mask(missing), errors="coerce"), dtype=float)
        for i in np.flatnonzero(~missing & ~np.isfinite(values) & rows.keep):
            rows.reject(i, f"property {file_col!r} is not a finite number: {raw[file_col].iloc[i]!r}",
                        "n_bad_property")
        values[missing] = np.nan
        _require_labels(path, file_col, values, len(raw))
        df[name] = values


def _reject_duplicates(df: pd.DataFrame, labels: list[str], rows: _Rows) -> None:
    """Keep each canonical molecule once (its first kept row); for each label, the first value among all its
    kept rows (tables with one row per assay). A rejected row is no earlier copy."""
    kept = np.flatnonzero(rows.keep)
    if labels:
        df.loc[kept, labels] = df.iloc[kept].groupby("smiles", sort=False)[labels].transform("first").to_numpy()
    dup = np.zeros(len(df), dtype=bool)
    dup[kept] = df["smiles"].iloc[kept].duplicated(keep="first").to_numpy()
    for i in np.flatnonzero(dup):
        rows.reject(i, f"duplicate of an earlier row (canonical {df['smiles'].iloc[i]})", "n_duplicate")


def _tokens(smiles: np.ndarray, rows: _Rows, tokenizer: "Tokenizer", vocab: "Vocabulary | None",
            max_len: int | None, n_jobs: int) -> list[list[str] | None]:
    """The tokens of each kept row (None elsewhere); rows that cannot be tokenized, hold tokens outside
    `vocab` or are longer than `max_len` tokens are rejected."""
    tokens: list[list[str] | None] = [None] * len(smiles)
    # One shared object per distinct token: 1.58 M molecules x ~40 fresh str objects would take ~3.5 GB.
    shared: dict[str, str] = {}
    for i, (raw_toks, why) in _tokenize_all(tokenizer, smiles, np.flatnonzero(rows.keep), n_jobs):
        if raw_toks is None:
            rows.reject(i, f"cannot tokenize: {why}", "n_untokenizable")
            continue
        toks = [shared.setdefault(t, t) for t in raw_toks]
        unknown = vocab.unknown_tokens(toks) if vocab is not None else []
        if unknown:
            rows.reject(i, f"tokens not in the model vocabulary: {', '.join(sorted(set(unknown)))}", "n_unknown_token")
        elif max_len is not None and len(toks) > max_len:
            rows.reject(i, f"{len(toks)} tokens, longer than max_len={max_len}", "n_too_long")
        else:
            tokens[i] = toks
    return tokens


def _add_computed_properties(df: pd.DataFrame, computed: list[str], rows: _Rows, n_jobs: int) -> None:
    """A column per property RDKit computes (not in the file), for the kept rows (NaN elsewhere)."""
    rows.report.computed = tuple(computed)
    if not computed:
        return
    idx = np.flatnonzero(rows.keep)
    values = _computed_properties(df["smiles"].iloc[idx].tolist(), computed, n_jobs=n_jobs)
    for name in computed:
        column = np.full(len(df), np.nan)
        column[idx] = values[name].to_numpy(dtype=float)
        df[name] = column


def _accepted(df: pd.DataFrame, rows: _Rows, names: list[str], source: str | Path, path: Path,
              rejected_path: Path | str | None) -> pd.DataFrame:
    """The kept rows; the report completed (counts, labels of the properties `names`, rejected rows, written
    to `rejected_path`).
    DataError, naming the commonest reasons, when no row is left."""
    report = rows.report
    report.n_valid = int(rows.keep.sum())
    report.labels = {name: int(np.isfinite(df[name].to_numpy(dtype=float)[rows.keep]).sum()) for name in names}
    report.rejected = pd.DataFrame(rows.rejected, columns=["row", "smiles", "reason"]).sort_values("row",
                                                                                                   kind="stable")
    if len(report.rejected) and rejected_path is not None:
        target = _default_rejected_path(path) if rejected_path == "auto" else Path(rejected_path)
        if is_dataset_name(source):
            target = cache_dir() / target.name
        target.parent.mkdir(parents=True, exist_ok=True)
        report.rejected.to_csv(target, index=False)
        report.rejected_path = target
    if report.n_valid == 0:
        reasons = report.rejected["reason"].str.split(":").str[0].value_counts().head(3)
        raise DataError(
            f"{path}: no usable molecules among {report.n_read} rows; commonest reasons: "
            + "; ".join(f"{r} ({n} rows)" for r, n in reasons.items())
            + (f". Rejected rows are in {report.rejected_path}." if report.rejected_path else ".")
        )
    return df[rows.keep].reset_index(drop=True)


def _require_labels(path: Path, column: str, values: np.ndarray, n_rows: int, after_validation: bool = False) -> None:
    """DataError naming `column` when none of `values` (the column over all `n_rows` rows read, or over the
    valid molecules) is a number: its head could learn nothing, and its mean and std would be undefined."""
    if np.isfinite(values).any():
        return
    where = (f"none of the {n_rows} valid molecules has a value" if after_validation
             else f"no row among {n_rows} has a numeric value")
    raise DataError(f"{path}: property column {column!r} has no labels ({where}); fill it in or leave it out "
                    "of --property.")


_PROPERTY_CACHE_MIN = 20_000


def _computed_properties(smiles: list[str], names: Sequence[str], n_jobs: int = 1) -> pd.DataFrame:
    """RDKit properties of canonical SMILES, from the table shipped for the MOSES training split
    (`molvae.data.moses_properties`), else cached on disk for large sets.

    QED and SA cost about 1 ms per molecule, so the 1.58 M MOSES molecules take 20+ minutes on 2 cores;
    resuming or retraining on the same data must not pay that again. The cache file is named by
    `molvae.files.content_key` (the SMILES list, the property names and the RDKit version), so any change to
    either recomputes, and is written and read with the metric cache's `save_npz` / `load_npz` (atomic,
    no pickle, unreadable files recomputed).
    """
    if len(smiles) < _PROPERTY_CACHE_MIN:
        return chem.properties(smiles, list(names), n_jobs=n_jobs)
    from molvae.data.moses_properties import shipped_properties
    from molvae.files import content_key, load_npz, save_npz

    names = [chem.property_name(n) for n in names]
    shipped = shipped_properties(smiles, names)  # the MOSES training split: logP, QED, SA ship with molvae
    rest = [n for n in names if n not in shipped]
    if rest:
        path = cache_dir() / "properties" / f"{content_key(smiles, 'properties:' + ','.join(rest))}.npz"
        arrays = load_npz(path)
        if arrays is None or arrays["values"].shape != (len(smiles), len(rest)):
            arrays = {"values": chem.properties(smiles, rest, n_jobs=n_jobs).to_numpy(dtype=np.float64)}
            save_npz(path, arrays)
        shipped.update(zip(rest, arrays["values"].T))
    return pd.DataFrame({n: shipped[n] for n in names})


def _resolve_property_columns(properties: Sequence[str], columns: Sequence[str]) -> list[tuple[str, str | None]]:
    """Map each requested property to (name, file column or None when RDKit computes it)."""
    lower = {str(c).lower(): str(c) for c in columns}
    resolved = []
    for prop in properties:
        if prop.lower() in lower:
            resolved.append((prop.lower(), lower[prop.lower()]))
            continue
        try:
            resolved.append((chem.property_name(prop), None))
        except UsageError as exc:
            raise UsageError(
                f"property {prop!r} is neither a column of the file (columns: {list(columns)[:20]}) nor one RDKit "
                f"computes ({', '.join(chem.PROPERTY_NAMES)})."
            ) from exc
    names = [n for n, _ in resolved]
    if len(set(names)) != len(names):
        raise UsageError(f"property names repeat: {names}")
    return resolved
