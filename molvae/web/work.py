"""The work behind each page and API call, on the public API only (`MolVAE` methods, `molvae.optimize`).

Each task takes the model, checked parameters and a `Progress`, runs the library in chunks so that the
page can show progress and a cancel takes effect between chunks, and returns a `Result`: the table and a
short summary. `rows` turns a table into JSON-ready records (NaN and infinities become null);
`table_bytes` writes one as CSV or SDF with molvae's own writer.
"""
from __future__ import annotations

import collections
import math
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from molvae.web.jobs import Progress

if TYPE_CHECKING:
    from molvae import MolVAE

__all__ = ["Result", "GRID_PROPERTIES", "DOWNLOAD_FORMATS", "sample_task", "analogs_task", "predict_task",
           "score_task", "rows", "table_bytes"]

GRID_PROPERTIES = ("logp", "mw", "qed", "tpsa", "sa")
DOWNLOAD_FORMATS = {"csv": "text/csv", "sdf": "chemical/x-mdl-sdfile", "smi": "chemical/x-daylight-smiles"}
SAMPLE_CHUNK = 50
SCORE_CHUNK = 100


@dataclass
class Result:
    """A finished job's table and summary (numbers and short strings only)."""

    table: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def _chunk_seed(seed: int, k: int) -> int:
    """The seed of the k-th chunk: the request's own for the first (so a small request equals
    `sample(n, seed=seed)`), a derived one after it."""
    return seed if k == 0 else int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


def _with_domain(model: MolVAE, df: pd.DataFrame) -> pd.DataFrame:
    """Add `in_domain` and `anomaly` (from `MolVAE.score`) to a table of valid molecules."""
    if df.empty or model.domain is None:
        return df.assign(in_domain=pd.Series(dtype=object), anomaly=pd.Series(dtype=float))
    scores = model.score(df["canonical"].tolist())
    return df.assign(in_domain=scores["in_domain"].to_numpy(), anomaly=scores["anomaly"].to_numpy())


def sample_task(model: MolVAE, n: int, where: str | None, seed: int | None, progress: Progress,
                near: str | None = None, similarity: float = 0.4) -> Result:
    """`n` distinct valid molecules (meeting `where` when given; analogs of `near` at Tanimoto >= `similarity`
    when given, with their `similarity` column), in chunks of 50, each with the grid's properties, novelty and
    the in-domain flag."""
    seed = secrets.randbelow(2**32) if seed is None else seed
    chunks = math.ceil(n / SAMPLE_CHUNK)
    progress.total(chunks)
    parts: list[pd.DataFrame] = []
    drawn, seen = 0, set()
    for k in range(chunks):
        size = min(SAMPLE_CHUNK, n - k * SAMPLE_CHUNK)
        df = model.sample(size, seed=_chunk_seed(seed, k), where=where, unique_valid=True,
                          properties=GRID_PROPERTIES, n_jobs=1, near=near, similarity=similarity)
        drawn += int(df.attrs.get("n_drawn", size))
        df = df[df["valid"].astype(bool) & ~df["canonical"].isin(seen)]
        seen.update(df["canonical"])
        parts.append(_with_domain(model, df.reset_index(drop=True)))
        progress.step(f"{sum(map(len, parts))} of {n} molecules")
    table = pd.concat(parts, ignore_index=True)
    table = table.drop(columns=[c for c in ("valid",) if c in table])
    summary = {"n": len(table), "asked": n, "seed": seed, "where": where or "", "near": near or "",
               "similarity": similarity if near else None, "decoded": drawn,
               "novel": _share(table, "novel"), "in_domain": _share(table, "in_domain")}
    return Result(table, summary)


def _share(df: pd.DataFrame, col: str) -> float | None:
    if col not in df or df.empty or df[col].isna().all():
        return None
    return float(df[col].fillna(False).astype(bool).mean())


# Search settings of one analog round (`molvae.optimize` from the molecule, gradient method): lighter than
# the benchmark defaults (200 candidates, 100 refine steps) so that a round takes seconds on a CPU.
ANALOG_ROUNDS = 3
ANALOG_SETTINGS: dict[str, Any] = {"n_starts": 16, "steps": 10, "candidates": 32, "refine_steps": 20}


def analogs_task(model: MolVAE, smiles: str, prop: str, direction: str, similarity: float, n: int, seed: int | None,
                 progress: Progress) -> Result:
    """Molecules at least `similarity` (Tanimoto) like `smiles` with a better `prop`: `ANALOG_ROUNDS` rounds
    of `molvae.optimize` (gradient search from the molecule, seeds derived from `seed`), the distinct
    results sorted by the property change (RDKit values), each with its other properties."""
    import molvae

    seed = secrets.randbelow(2**31) if seed is None else seed
    progress.total(ANALOG_ROUNDS)
    before, after = f"{prop}_before", f"{prop}_after"
    parts, decoded, rejected, start_value = [], 0, collections.Counter(), None
    for k in range(ANALOG_ROUNDS):
        res = molvae.optimize(model, objective=f"{prop}:{direction}", start=smiles, similarity=similarity,
                              top_k=n, seed=_chunk_seed(seed, k) % 2**31, n_jobs=1, **ANALOG_SETTINGS)
        decoded += int(res.attrs.get("n_decoded", 0))
        rejected.update({str(r): int(c) for r, c in dict(res.attrs.get("rejected", {})).items()})
        if len(res):
            start_value = float(res[before].iloc[0])
            parts.append(pd.DataFrame({"smiles": res["smiles"].astype(str), "similarity": res["similarity"],
                                       prop: res[after], "change": res[after] - res[before]}))
        progress.step(f"round {k + 1} of {ANALOG_ROUNDS}: {sum(map(len, parts))} candidates")
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {"smiles": pd.Series(dtype=object), "similarity": pd.Series(dtype=float), prop: pd.Series(dtype=float),
         "change": pd.Series(dtype=float)})
    table = table.sort_values("change", ascending=(direction == "min"), kind="stable")
    table = table.drop_duplicates("smiles").head(n).reset_index(drop=True)
    others = [p for p in GRID_PROPERTIES if p != prop]
    extra = molvae.chem.properties(table["smiles"].tolist(), others) if len(table) else None
    table = pd.concat([table, extra.reset_index(drop=True)], axis=1) if extra is not None else table
    summary = {"n": len(table), "start": smiles, "property": prop, "direction": direction, "similarity": similarity,
               "seed": seed, "start_value": start_value, "decoded": decoded, "rejected": dict(rejected)}
    return Result(table, summary)


def predict_task(model: MolVAE, smiles: Sequence[str], names: Sequence[str], progress: Progress) -> Result:
    """The property head's predictions with `in_domain`, `anomaly` and the `reason` for molecules the
    model cannot read, one row per input, in chunks of 100."""
    chunks = max(math.ceil(len(smiles) / SCORE_CHUNK), 1)
    progress.total(chunks)
    parts = []
    for k in range(chunks):
        part = list(smiles[k * SCORE_CHUNK:(k + 1) * SCORE_CHUNK])
        df = model.predict(part, on_invalid="keep", domain=True, rdkit=True)
        parts.append(df)
        progress.step(f"{min((k + 1) * SCORE_CHUNK, len(smiles))} of {len(smiles)} molecules")
    table = pd.concat(parts, ignore_index=True)
    table["row"] = np.arange(len(table))
    if any(names):
        table.insert(2, "name", list(names))
    summary = {"n": len(table), "in_domain": _share(table, "in_domain"),
               "unreadable": int((table["reason"].astype(str) != "").sum()) if "reason" in table else 0,
               "properties": list(model.prop_names)}
    return Result(table, summary)


def score_task(model: MolVAE, smiles: Sequence[str], progress: Progress) -> Result:
    """`MolVAE.score` (anomaly, in_domain and the score terms), one row per input, in chunks of 100."""
    chunks = max(math.ceil(len(smiles) / SCORE_CHUNK), 1)
    progress.total(chunks)
    parts = []
    for k in range(chunks):
        parts.append(model.score(list(smiles[k * SCORE_CHUNK:(k + 1) * SCORE_CHUNK])))
        progress.step(f"{min((k + 1) * SCORE_CHUNK, len(smiles))} of {len(smiles)} molecules")
    table = pd.concat(parts, ignore_index=True)
    table["row"] = np.arange(len(table))
    summary = {"n": len(table), "in_domain": _share(table, "in_domain"),
               "unreadable": int((table["reason"].astype(str) != "").sum())}
    return Result(table, summary)


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: numpy types to Python, NaN and infinities to None."""
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    return value if isinstance(value, (int, str)) else str(value)


def rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The table as a list of {column: value} records, JSON-ready."""
    cols = [str(c) for c in df.columns]
    return [{c: _plain(v) for c, v in zip(cols, rec)} for rec in df.itertuples(index=False, name=None)]


def table_bytes(df: pd.DataFrame, fmt: str) -> bytes:
    """The table written as `fmt` (csv, sdf, smi) by `molvae.data.write_molecules`."""
    from molvae.data import write_molecules

    with tempfile.TemporaryDirectory(prefix="molvae-web-") as tmp:
        path = Path(tmp) / f"result.{fmt}"
        write_molecules(df, path)
        return path.read_bytes()
