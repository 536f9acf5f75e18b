"""Checks of user-supplied arguments, made once at the public boundary (the `MolVAE` methods,
`molvae.optimize`, the CLI); the layers below trust what passes them. Each raises `UsageError` with
the argument's name, the value given and what is allowed."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from molvae.errors import UsageError

__all__ = ["positive_int", "number", "temperature", "choice", "unknown_fields"]


def positive_int(value: Any, name: str) -> int:
    """`value` as an int if it is a positive integer (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UsageError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def number(value: Any, name: str, lo: float, hi: float | None = None, lo_open: bool = False) -> float:
    """`value` as a finite float in [lo, hi] (or (lo, hi] with `lo_open`; no upper bound when hi is None)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and (v > lo if lo_open else v >= lo) and (hi is None or v <= hi)):
        upper = "inf)" if hi is None else f"{hi:g}]"
        raise UsageError(f"{name} must be a number in {'(' if lo_open else '['}{lo:g}, {upper}, got {value!r}")
    return v


def temperature(value: Any) -> float:
    """A softmax temperature in (0, 10]."""
    return number(value, "temperature", 0.0, 10.0, lo_open=True)


def choice(value: Any, name: str, options: Sequence[str]) -> str:
    """`value` if it is one of `options` (exact spelling)."""
    if value not in options:
        raise UsageError(f"unknown {name} {value!r}; expected one of {', '.join(options)}")
    return value


def unknown_fields(cls: type, mapping: Any) -> list[str]:
    """Keys of `mapping` that are not fields of the dataclass `cls`, sorted (a config from a newer
    version, or a typo); the caller raises the error that suits it."""
    from dataclasses import fields

    return sorted(set(mapping) - {f.name for f in fields(cls)})
