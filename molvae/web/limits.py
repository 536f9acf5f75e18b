"""What one request may ask of the server, and the checks that enforce it.

Every parameter that comes in over HTTP is checked here once (the web's public boundary); the library
checks its own arguments again at its boundary (`MolVAE.sample`, `molvae.optimize`). Each failure is a
`UsageError` whose message names the parameter, the value given and the limit, which the app answers
with a 4xx JSON error.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from molvae.errors import UsageError

__all__ = ["Limits", "check_smiles", "check_n", "check_seed", "check_where", "check_similarity",
           "check_direction", "check_property", "split_pasted"]


@dataclass(frozen=True)
class Limits:
    """Per-request limits of `molvae serve`.

    max_molecules: SMILES per score/predict request or upload. max_sample: molecules per sample request.
    max_analogs: result rows of an analog search. max_smiles_length: characters in one SMILES.
    max_upload_bytes: size of an uploaded file. max_queued: jobs waiting for the model at once (the
    server answers 503 past it). max_jobs_kept: finished jobs whose results stay downloadable.
    """

    max_molecules: int = 1000
    max_sample: int = 500
    max_analogs: int = 50
    max_smiles_length: int = 300
    max_upload_bytes: int = 5 * 1024 * 1024
    max_queued: int = 256
    max_jobs_kept: int = 200

    def __post_init__(self) -> None:
        for name in ("max_molecules", "max_sample", "max_analogs", "max_smiles_length", "max_upload_bytes",
                     "max_queued", "max_jobs_kept"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be a positive integer, got {value!r}")


def check_smiles(smiles: Any, limits: Limits, what: str = "smiles") -> list[str]:
    """A non-empty list of SMILES strings within the count and length limits (a molecule RDKit cannot
    read is not an error here: it gets its reason in the result)."""
    if isinstance(smiles, str) or not isinstance(smiles, Sequence):
        raise UsageError(f"{what} must be a list of SMILES strings, got {type(smiles).__name__}")
    items = list(smiles)
    if not items:
        raise UsageError(f"{what} is empty: give at least one SMILES")
    if len(items) > limits.max_molecules:
        raise UsageError(f"too many molecules: {len(items):,} given, the limit is {limits.max_molecules:,} "
                         "per request (max_molecules); split the list")
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise UsageError(f"{what}[{i}] must be a string, got {type(item).__name__}")
        if len(item) > limits.max_smiles_length:
            raise UsageError(f"{what}[{i}] is {len(item):,} characters long; the limit is "
                             f"{limits.max_smiles_length} characters per SMILES (max_smiles_length)")
    return [s.strip() for s in items]


def check_n(n: Any, limit: int, name: str = "n") -> int:
    """A positive integer at most `limit`."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"{name} must be a positive integer, got {n!r}")
    if n > limit:
        raise UsageError(f"{name} = {n:,} is over the limit of {limit:,} molecules per request")
    return n


def check_seed(seed: Any) -> int | None:
    """None (a fresh seed) or an integer in [0, 2**32)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise UsageError(f"seed must be an integer in [0, 4294967295] or null, got {seed!r}")
    return seed


def check_where(where: Any) -> str | None:
    """None/empty (no condition) or a condition string of reasonable length (its grammar is checked by
    `MolVAE.sample`)."""
    if where is None or (isinstance(where, str) and not where.strip()):
        return None
    if not isinstance(where, str):
        raise UsageError(f"where must be a condition string such as 'logp>=2,logp<=3', got {where!r}")
    if len(where) > 500:
        raise UsageError(f"where is {len(where)} characters long; the limit is 500")
    return where.strip()


def check_similarity(value: Any) -> float:
    """A Tanimoto floor in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise UsageError(f"similarity must be a number in [0, 1], got {value!r}")
    return float(value)


def check_direction(value: Any) -> str:
    """"max" or "min"."""
    if value not in ("max", "min"):
        raise UsageError(f"direction must be 'max' or 'min', got {value!r}")
    return value


def check_property(value: Any, names: Sequence[str]) -> str:
    """One of the property names the model's head predicts (case-insensitive)."""
    if not isinstance(value, str) or value.strip().lower() not in [n.lower() for n in names]:
        raise UsageError(f"property must be one the model predicts ({', '.join(names)}), got {value!r}")
    return value.strip().lower()


def split_pasted(text: str, limits: Limits) -> tuple[list[str], list[str]]:
    """SMILES (and names) from pasted text: one molecule per line, `SMILES [name]`; blank lines and lines
    starting with # are skipped. Returns (smiles, names), names "" where a line has none."""
    if not isinstance(text, str):
        raise UsageError(f"text must be a string, got {type(text).__name__}")
    smiles, names = [], []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        smiles.append(parts[0])
        names.append(parts[1] if len(parts) > 1 else "")
    check_smiles(smiles, limits)
    return smiles, names
