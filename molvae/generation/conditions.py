"""Sampling under property conditions: `MolVAE.sample(n, where="logp>=4,logp<=5")`.

A condition is a comma-separated list of clauses `NAME>=V`, `NAME<=V` or `NAME=V` (within a tolerance:
`NAME=V+-T`, default T = 5% of max(|V|, 1)); clauses on one property intersect into a window [lo, hi].
NAME is an RDKit property (`chem.PROPERTY_NAMES`) or one the model's property head predicts.

How molecules are found: latents come from the learned density steered by the property head
(`molvae.generation.conditional_prior.SteeredPrior`: components reweighted by their calibrated probability
of decoding into the windows, draws shrunk toward component means, repeated use of a component damped).
Latents are decoded; RDKit computes the properties of each decoded molecule and only those inside every
window are kept ("hits"; a property RDKit cannot compute is checked with the head's prediction for the
decoded molecule). A small first round measures how decoding regresses the head's predictions; rounds
repeat until `n` hits or the decode budget is spent, so a condition nothing meets ends with a warning,
never in an endless loop. Properties the head does not predict are not steered, only checked.
"""
from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from molvae import chem
from molvae.errors import UsageError
from molvae.generation.conditional_prior import SteeredPrior
from molvae.model import inference

if TYPE_CHECKING:
    from molvae.generation.api import MolVAE

__all__ = ["Window", "parse_where", "describe", "sample_where", "DEFAULT_TOLERANCE"]

DEFAULT_TOLERANCE = 0.05  # NAME=V means |x - V| <= 0.05 * max(|V|, 1) unless a tolerance is given
_CLAUSE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|=)\s*([-+]?[0-9.]+(?:[eE][-+]?\d+)?)"
                     r"(?:\s*(?:\+-|\+/-|±)\s*([0-9.]+(?:[eE][-+]?\d+)?))?\s*$")
_MAX_ROUNDS = 12
_FIRST_ROUND = 96  # decodes of the first steered round: enough to fit the calibration's one slope


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


def sample_where(vae: MolVAE, n: int, windows: Sequence[Window], names: tuple[str, ...], seed: int,
                 temperature: float = 1.0, method: str = "multinomial", beam_width: int = 5,
                 batch_size: int | None = None, max_len: int | None = None, n_jobs: int | None = None,
                 prior: str = "density", unique: bool = False, max_decodes: int | None = None,
                 steer: bool = True) -> pd.DataFrame:
    """Up to `n` molecules meeting every window (arguments checked by `MolVAE.sample`). Returns the
    molecule table of the hits (properties `names` plus the conditioned ones) with `df.attrs` = {where,
    n_drawn (decoded latents), n_valid (valid molecules among them), hits, hit_rate (hits per decode,
    before keeping n), rounds, steered, calibration ({property: {slope, sigma}} fitted by the steering),
    seconds}. unique: distinct hits only. max_decodes: the budget (default 20 n + 1000). steer=False is plain rejection sampling (the baseline it is measured against)."""
    t0 = time.perf_counter()
    budget = int(max_decodes) if max_decodes is not None else 20 * n + 1000
    rdkit_names = tuple(w.name for w in windows if w.name in chem.PROPERTY_NAMES)
    head_only = [w for w in windows if w.name not in chem.PROPERTY_NAMES]
    steered = [w for w in windows if w.name in vae.prop_names and vae.model.prop_head is not None] if steer else []
    table_names = tuple(dict.fromkeys(names + rdkit_names))
    steering = SteeredPrior(vae, steered, prior) if steered else None
    gen, rng = torch.Generator().manual_seed(seed), np.random.default_rng(seed)
    kept: list[pd.DataFrame] = []
    seen: set[str] = set()  # distinct hits kept (unique=True)
    decoded: set[str] = set()  # every valid molecule decoded so far, for the steering's repeat damping
    found = drawn = hits = rounds = n_valid = 0
    while found < n and drawn < budget and rounds < _MAX_ROUNDS:
        rate = max(hits / drawn, 0.02) if drawn else (0.3 if steered else 0.1)
        m = int(min(budget - drawn, max(64, math.ceil((n - found) / rate * 1.2))))
        if steering is not None and not drawn:  # a first, smaller round measures how decoding regresses
            m = min(m, max(_FIRST_ROUND, n // 4))
        if steering is not None:
            z, z_pred = steering.draw(m, gen, rng)
        else:
            z, z_pred = vae.draw_latents(m, gen, prior), np.zeros((m, 0))
        ids = vae._decode_ids(z, method, temperature, inference.sub_seed(seed, 2_000_003, rounds), beam_width,
                              batch_size, max_len)
        part = vae._table(ids, table_names, n_jobs)
        drawn, rounds = drawn + m, rounds + 1
        ok = part["valid"].to_numpy().copy()
        for w in windows:
            if w.name in rdkit_names:
                ok &= w.contains(part[w.name].to_numpy())
        if head_only and ok.any():
            rows = np.flatnonzero(ok)
            predicted = vae.predict(part["canonical"].iloc[rows].tolist(), on_invalid="skip")
            for w in head_only:
                values = np.full(len(part), np.nan)
                values[rows[predicted["row"].to_numpy()]] = predicted[w.name].to_numpy()
                part[w.name] = values
                ok &= w.contains(values)
        valid = part["valid"].to_numpy()
        if steering is not None:  # how far the decoded molecules landed from what the head predicted
            canon = part["canonical"]
            repeated = valid & (canon.duplicated().to_numpy() | canon.isin(decoded).to_numpy())
            decoded.update(canon[valid])
            steering.observe(z_pred, {k: part[k].to_numpy() for k in rdkit_names}, valid, repeated)
        hits, n_valid = hits + int(ok.sum()), n_valid + int(valid.sum())
        part = part[ok]
        if unique:
            part = part[~part["canonical"].duplicated().to_numpy() & ~part["canonical"].isin(seen).to_numpy()]
            seen.update(part["canonical"])
        part = part.head(n - found)
        kept.append(part)
        found += len(part)
    df = pd.concat(kept, ignore_index=True) if kept else vae._table(np.zeros((0, 1), dtype=np.int64), table_names, 1)
    if found < n:
        warnings.warn(f"only {found} of {n} molecules met {describe(windows)} in {drawn} decodes "
                      f"({hits / max(drawn, 1):.2%} per decode, {rounds} rounds); widen the condition or raise "
                      "the budget", RuntimeWarning, stacklevel=3)
    df.attrs.update(where=describe(windows), n_drawn=drawn, n_valid=n_valid, hits=hits,
                    hit_rate=hits / max(drawn, 1), rounds=rounds, steered=[w.name for w in steered],
                    calibration=steering.summary() if steering is not None else {},
                    seconds=time.perf_counter() - t0)
    return df
