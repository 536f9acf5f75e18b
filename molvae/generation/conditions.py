"""Property conditions for `MolVAE.sample(n, where="logp>=4,logp<=5")`: the condition language and the
windows it gives. The sampling rounds that find molecules meeting them are
`molvae.generation.conditional_sampling`.

A condition is a comma-separated list of clauses `NAME>=V`, `NAME<=V` or `NAME=V` (within a tolerance:
`NAME=V+-T`, default T = 5% of max(|V|, 1)); clauses on one property intersect into a window [lo, hi].
NAME is an RDKit property (`chem.PROPERTY_NAMES`) or one the model's property head predicts.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from molvae import chem
from molvae.errors import UsageError

__all__ = ["Window", "parse_where", "describe", "DEFAULT_TOLERANCE"]

DEFAULT_TOLERANCE = 0.05  # NAME=V means |x - V| <= 0.05 * max(|V|, 1) unless a tolerance is given
_CLAUSE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|=)\s*([-+]?[0-9.]+(?:[eE][-+]?\d+)?)"
                     r"(?:\s*(?:\+-|\+/-|±)\s*([0-9.]+(?:[eE][-+]?\d+)?))?\s*$")


@dataclass(frozen=True)
class Window:
    """A property window lo <= x <= hi (either may be infinite); `name` as in `chem.PROPERTY_NAMES` or the
    model's own property names."""

    name: str
    lo: float
    hi: float

    def contains(self, x: np.ndarray) -> np.ndarray:
        return (x >= self.lo) & (x <= self.hi)

    def __str__(self) -> str:
        if math.isinf(self.lo):
            return f"{self.name}<={self.hi:g}"
        if math.isinf(self.hi):
            return f"{self.name}>={self.lo:g}"
        return f"{self.lo:g}<={self.name}<={self.hi:g}"


def _property(name: str, head: Sequence[str]) -> str:
    lowered = {h.lower(): h for h in head}
    if name.lower() in lowered:
        return lowered[name.lower()]
    try:
        return chem.property_name(name)
    except UsageError:
        known = sorted(set(chem.PROPERTY_NAMES) | set(head))
        raise UsageError(f"unknown property {name!r} in the condition; conditions can use {', '.join(known)}") from None


def parse_where(where: str, head: Sequence[str] = ()) -> tuple[Window, ...]:
    """The windows of a condition string, one per property, in order of first mention. UsageError for a
    malformed clause, an unknown property or a window nothing can be in (lo > hi)."""
    if not isinstance(where, str) or not where.strip():
        raise UsageError(f"where must be a condition such as 'logp>=4,logp<=5', got {where!r}")
    bounds: dict[str, list[float]] = {}
    for clause in where.split(","):
        m = _CLAUSE.match(clause)
        if m is None:
            raise UsageError(f"malformed condition {clause.strip()!r}: write NAME>=VALUE, NAME<=VALUE or "
                             "NAME=VALUE[+-TOLERANCE], separated by commas (e.g. 'logp>=4,logp<=5,qed>=0.6')")
        name, op, value = _property(m.group(1), head), m.group(2), float(m.group(3))
        lo, hi = bounds.setdefault(name, [-math.inf, math.inf])
        if op == ">=":
            lo = max(lo, value)
        elif op == "<=":
            hi = min(hi, value)
        else:
            tol = float(m.group(4)) if m.group(4) else DEFAULT_TOLERANCE * max(abs(value), 1.0)
            lo, hi = max(lo, value - tol), min(hi, value + tol)
        if lo > hi:
            raise UsageError(f"the condition {where.strip()!r} leaves an empty window for {name}: "
                             f"{lo:g} <= {name} <= {hi:g} holds for no value")
        bounds[name] = [lo, hi]
    return tuple(Window(k, v[0], v[1]) for k, v in bounds.items())


def describe(windows: Sequence[Window]) -> str:
    return ", ".join(str(w) for w in windows)
