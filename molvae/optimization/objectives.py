"""What latent-space optimization maximizes and what a result must satisfy.

`Objective`: one property, a direction (max / min / target) and a weight; several are summed.
`Constraints`: structural rules a reported molecule must pass (MOSES filters, PAINS, heavy
atoms, ring size, SA ceiling); the Tanimoto floor to the start is `optimize(similarity=...)`.
`Scorer`: resolves objectives against a model's property head and scores both

- the *guide*: the head's prediction at a latent z, differentiable (torch), used by the
  gradient search, and recorded as `score_pred` by every method, and
- the *result*: the decoded molecule's own values (RDKit; for a user's trained column that
  RDKit cannot compute, the head's prediction on the re-encoded molecule), which alone
  decide what is reported.

Units. A property the head predicts is standardized with the checkpoint's (mean, std), so
weights compare properties in training-set standard deviations: a term is
`w * (v - mean) / std` (max), its negative (min) or `-w * |v - target| / std` (target).
A property the head does not predict is in its own units (mean 0, std 1); plogp is already
a sum of three z-scores (JT-VAE's normalization).

plogp / plogp_raw guidance (gradient method): the head predicts logP and SA but not the ring
penalty, so the guide is plogp built from the logP and SA predictions plus the ring penalty
of the molecule last decoded on that trajectory (RDKit, held constant between decodes: it
has no gradient). Results are always rescored with RDKit's plogp.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from molvae import chem
from molvae.errors import UsageError

__all__ = ["Objective", "Constraints", "Scorer", "parse_objectives", "REJECT_REASONS", "DERIVED"]

DIRECTIONS = ("max", "min", "target")
# Properties the gradient search can guide from other head outputs (see module docstring).
DERIVED: Mapping[str, tuple[str, ...]] = {"plogp": ("logp", "sa"), "plogp_raw": ("logp", "sa")}
# Why a decoded molecule is not a result, in the order checked; a molecule is counted
# under every reason it fails. "unscored": an objective could not be computed (RDKit failed,
# or a user column for a molecule the vocabulary cannot re-encode); "duplicate_of_start":
# the start molecule itself (passes everything, but is no result).
REJECT_REASONS = ("invalid", "filters", "pains", "heavy_atoms", "ring_size", "sa", "similarity", "unscored",
                  "duplicate_of_start")


@dataclass(frozen=True)
class Objective:
    """One term of the score: `name` (property, case-insensitive), `direction` "max" |
    "min" | "target" (then `target` is the value aimed at), `weight` >= 0."""

    name: str
    direction: str = "max"
    weight: float = 1.0
    target: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise UsageError(f"objective property must be a non-empty name, got {self.name!r}")
        if self.direction not in DIRECTIONS:
            raise UsageError(f"objective direction must be one of {', '.join(DIRECTIONS)}, got {self.direction!r}")
        if not (isinstance(self.weight, (int, float)) and math.isfinite(self.weight) and self.weight >= 0):
            raise UsageError(f"objective weight must be a finite number >= 0, got {self.weight!r}")
        if self.direction == "target" and (self.target is None or not math.isfinite(float(self.target))):
            raise UsageError(f"objective {self.name!r}: direction 'target' needs a finite target value")

    def __str__(self) -> str:
        how = f"target={self.target:g}" if self.direction == "target" else self.direction
        return f"{self.name}:{how}:{self.weight:g}"


def _parse_one(item: str) -> Objective:
    """"name", "name:max", "name:min:0.5", "name:target=2.5", "name:target=2.5:2"."""
    parts = [p.strip() for p in item.split(":")]
    if not parts[0] or len(parts) > 3:
        raise UsageError(f"cannot read objective {item!r}; write name[:max|min|target=V][:weight], "
                         "e.g. 'qed:max:1.0,sa:min:0.5' or 'logp:target=2.5'")
    direction, target, weight = "max", None, 1.0
    if len(parts) >= 2 and parts[1]:
        head = parts[1].lower()
        if head.startswith("target"):
            value = head[len("target"):].lstrip("=").strip()
            try:
                target = float(value)
            except ValueError:
                raise UsageError(f"objective {item!r}: target needs a number, as in 'logp:target=2.5'") from None
            direction = "target"
        elif head in ("max", "min"):
            direction = head
        else:
            raise UsageError(f"objective {item!r}: direction must be max, min or target=V, got {parts[1]!r}")
    if len(parts) == 3:
        try:
            weight = float(parts[2])
        except ValueError:
            raise UsageError(f"objective {item!r}: weight must be a number, got {parts[2]!r}") from None
    return Objective(parts[0], direction, weight, target)


def parse_objectives(spec: str | Objective | Sequence[str | Objective]) -> tuple[Objective, ...]:
    """Objectives from "qed:max:1.0,sa:min:0.5", an `Objective`, or a list of either."""
    if isinstance(spec, Objective):
        items: list[str | Objective] = [spec]
    elif isinstance(spec, str):
        items = [s for s in spec.split(",") if s.strip()]
    elif isinstance(spec, Sequence):
        items = list(spec)
    else:
        raise UsageError(f"objective must be a string, an Objective or a list of them, got {type(spec).__name__}")
    out: list[Objective] = []
    for item in items:
        if isinstance(item, Objective):
            out.append(item)
        elif isinstance(item, str):
            out.extend(_parse_one(s) for s in item.split(",") if s.strip())
        else:
            raise UsageError(f"objective entries must be strings or Objective, got {type(item).__name__}")
    if not out:
        raise UsageError("no objective given; e.g. objective='logp' or 'qed:max:1.0,sa:min:0.5'")
    if all(o.weight == 0 for o in out):
        raise UsageError("every objective has weight 0; nothing to optimize")
    return tuple(out)


@dataclass(frozen=True)
class Constraints:
    """Rules a reported molecule must pass (None / False: not checked).

    filters: MOSES filters (`chem.passes_moses_filters`: allowed atoms, no charges, no ring
    of 8+, MCF and PAINS SMARTS). pains: no RDKit PAINS (A/B/C) alert (`chem.pains_match`).
    min/max_heavy_atoms: heavy-atom count bounds. max_ring_size: largest SSSR ring.
    max_sa: SA score ceiling (1 easy .. 10 hard).
    """

    filters: bool = False
    pains: bool = False
    min_heavy_atoms: int | None = None
    max_heavy_atoms: int | None = None
    max_ring_size: int | None = None
    max_sa: float | None = None

    def __post_init__(self) -> None:
        for name in ("min_heavy_atoms", "max_heavy_atoms", "max_ring_size"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
                raise UsageError(f"Constraints.{name} must be a positive integer or None, got {v!r}")
        if (self.min_heavy_atoms is not None and self.max_heavy_atoms is not None
                and self.min_heavy_atoms > self.max_heavy_atoms):
            raise UsageError(f"min_heavy_atoms {self.min_heavy_atoms} > max_heavy_atoms {self.max_heavy_atoms}")
        if self.max_sa is not None and not (isinstance(self.max_sa, (int, float)) and 1.0 <= self.max_sa <= 10.0):
            raise UsageError(f"max_sa must be a number in [1, 10] (the SA scale), got {self.max_sa!r}")

    def rdkit_names(self) -> tuple[str, ...]:
        """RDKit properties the checks need."""
        names = []
        if self.max_sa is not None:
            names.append("sa")
        if self.min_heavy_atoms is not None or self.max_heavy_atoms is not None:
            names.append("heavy_atoms")
        return tuple(names)

    def failures(self, mol: Any, values: Mapping[str, float]) -> list[str]:
        """Reasons (from REJECT_REASONS) a sanitized molecule breaks these constraints;
        `values` holds at least `rdkit_names()` for it."""
        out = []
        if self.filters and not chem.passes_moses_filters(mol):
            out.append("filters")
        if self.pains and chem.pains_match(mol):
            out.append("pains")
        n = values.get("heavy_atoms", math.nan)
        if (self.min_heavy_atoms is not None and not n >= self.min_heavy_atoms) or (
                self.max_heavy_atoms is not None and not n <= self.max_heavy_atoms):
            out.append("heavy_atoms")
        if self.max_ring_size is not None:
            if chem.largest_ring(mol) > self.max_ring_size:
                out.append("ring_size")
        if self.max_sa is not None and not values.get("sa", math.nan) <= self.max_sa:
            out.append("sa")
        return out


@dataclass(frozen=True)
class _Term:
    name: str          # normalized property name
    direction: str
    weight: float
    target: float | None
    mean: float
    std: float
    rdkit: bool        # True: the result value is RDKit's; False: head on the re-encoded molecule
    head: int | None   # index in the head's outputs, or None
    derived: bool      # guided through DERIVED head outputs


class Scorer:
    """Objectives resolved against a model's property head (`prop_stats`: {name: (mean,
    std)} in head order). `guided`: the terms the head can guide (all of them, or a
    UsageError, when `need_guide`)."""

    def __init__(self, objectives: Sequence[Objective], prop_stats: Mapping[str, tuple[float, float]],
                 need_guide: bool):
        head_names = list(prop_stats)
        lower = {chem.name_key(n): i for i, n in enumerate(head_names)}
        if len(lower) != len(head_names):
            raise UsageError(f"the model's property names differ only in case: {head_names}")
        self.head_names = tuple(head_names)
        self._stats = [tuple(map(float, prop_stats[n])) for n in head_names]
        terms: list[_Term] = []
        for obj in objectives:
            key = chem.name_key(obj.name)
            rdkit = key in chem.PROPERTY_NAMES
            if key in lower:
                i = lower[key]
                mean, std = self._stats[i]
                terms.append(_Term(key if rdkit else head_names[i], obj.direction, float(obj.weight), obj.target,
                                   mean, std if std > 0 else 1.0, rdkit, i, False))
            elif key in DERIVED and all(p in lower for p in DERIVED[key]):
                terms.append(_Term(key, obj.direction, float(obj.weight), obj.target, 0.0, 1.0, True, None, True))
            elif rdkit and not need_guide:
                terms.append(_Term(key, obj.direction, float(obj.weight), obj.target, 0.0, 1.0, True, None, False))
            else:
                raise UsageError(self._unknown_message(obj.name, need_guide))
        names = [t.name for t in terms]
        if len(set(names)) != len(names):
            raise UsageError(f"a property appears twice among the objectives: {names}")
        self.terms = tuple(terms)

    def _unknown_message(self, name: str, need_guide: bool) -> str:
        lower = {chem.name_key(n) for n in self.head_names}
        derived = [d for d, parts in DERIVED.items() if all(p in lower for p in parts)]
        predicts = ", ".join(self.head_names) or "nothing (it has no property head)"
        msg = f"cannot optimize {name!r}: this model's property head predicts {predicts}"
        if derived:
            msg += f"; the gradient method can also guide {', '.join(derived)} from those"
        if need_guide:
            msg += (". Any RDKit property (" + ", ".join(chem.PROPERTY_NAMES)
                    + ") can be optimized with method='random' or 'bo', which need no head")
        else:
            msg += ". method='random' and 'bo' also take any RDKit property: " + ", ".join(chem.PROPERTY_NAMES)
        return msg + "."

    # ------------------------------------------------------------------ names
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.terms)

    def rdkit_names(self) -> tuple[str, ...]:
        """RDKit properties computed on every decoded molecule."""
        return tuple(t.name for t in self.terms if t.rdkit)

    def head_only_names(self) -> tuple[str, ...]:
        """User properties RDKit cannot compute: scored by the head on the re-encoded molecule."""
        return tuple(t.name for t in self.terms if not t.rdkit)

    def scored_by(self) -> str:
        """How result values are obtained, for the `scored_by` column."""
        head = self.head_only_names()
        if not head:
            return "rdkit"
        rd = self.rdkit_names()
        return (f"rdkit: {', '.join(rd)}; " if rd else "") + f"head on re-encoded molecule: {', '.join(head)}"

    def describe(self) -> list[str]:
        """The resolved objectives as "name:direction:weight" strings."""
        return [str(Objective(t.name, t.direction, t.weight, t.target)) for t in self.terms]

    def has_guide(self) -> bool:
        return all(t.head is not None or t.derived for t in self.terms)

    def needs_cycle(self) -> bool:
        return any(t.derived for t in self.terms)

    # ---------------------------------------------------------------- scoring
    def _term(self, t: _Term, v: Any) -> Any:
        if t.direction == "target":
            return -t.weight * abs(v - t.target) / t.std
        s = (v - t.mean) / t.std
        return t.weight * (s if t.direction == "max" else -s)

    def score(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """Score (n,) from property values in original units, {name: (n,)}; NaN propagates."""
        total = None
        for t in self.terms:
            part = self._term(t, np.asarray(values[t.name], dtype=np.float64))
            total = part if total is None else total + part
        return np.asarray(total, dtype=np.float64)

    def predicted_values(self, pred_std: Any, cycle: Any = None) -> dict[str, Any]:
        """Head predictions in original units per objective (torch or numpy, (B,)); derived
        plogp/plogp_raw use `cycle` (B,), the ring penalty (0 when None). Terms the head
        cannot predict are absent."""
        out: dict[str, Any] = {}
        col = {}
        for i, (mean, std) in enumerate(self._stats):
            col[chem.name_key(self.head_names[i])] = pred_std[:, i] * std + mean
        for t in self.terms:
            if t.head is not None:
                out[t.name] = col[chem.name_key(self.head_names[t.head])]
            elif t.derived:
                logp, sa = col["logp"], col["sa"]
                c = 0.0 if cycle is None else cycle
                out[t.name] = chem.penalized_logp(logp, sa, c, normalized=t.name == "plogp")
        return out

    def guide(self, pred_std: Any, cycle: Any = None) -> Any:
        """Differentiable predicted score (B,) from standardized head outputs (B, P)."""
        values = self.predicted_values(pred_std, cycle)
        total = None
        for t in self.terms:
            part = self._term(t, values[t.name])
            total = part if total is None else total + part
        return total
