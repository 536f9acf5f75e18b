"""The search settings of one `molvae.optimize` run: what the caller gave, completed by the defaults of
its method and kind of start, validated once.

Defaults for start molecules were chosen on the similarity-constrained plogp protocol
(docs/optimization.md): every method spends 20 decoded molecules per start molecule, the budget of that
protocol. Prior starts keep 64 trajectories of 100 steps decoded every 10.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from molvae import arguments
from molvae.errors import UsageError

__all__ = ["SearchSettings", "resolve_settings", "DEFAULTS"]


@dataclass(frozen=True)
class SearchSettings:
    """n_starts: prior starts, or trajectories per start molecule. steps, decode_every: steps per trajectory
    and how often each is decoded. budget: decoded molecules per start (None: whatever the decode steps
    spend). lr: step length in posterior stds (gradient). density_weight: weight of the learned latent
    log-density, nats (gradient). trust_radius: largest distance from the start, posterior stds (None:
    none). noise: Langevin noise per step, posterior stds (gradient). spread: the copies of a start
    molecule begin at mean + spread * sigma * N(0, I), the first at the mean. temperature: 0 decodes
    greedily; above 0, tokens are sampled at that temperature. uncertainty_weight: penalty on the std of
    the predicted score across a head ensemble's members (gradient, with `heads`)."""

    n_starts: int
    steps: int
    decode_every: int
    lr: float
    density_weight: float
    trust_radius: float | None
    noise: float
    spread: float
    temperature: float
    budget: int | None = None
    uncertainty_weight: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Prior starts travel far (no similarity floor): steps of 0.5 and no density term gave the best RDKit logP
# and QED per start on 32 prior starts (docs/optimization.md); the density term held them back.
_PRIOR = SearchSettings(n_starts=64, steps=100, decode_every=10, lr=0.5, density_weight=0.0, trust_radius=None,
                        noise=0.0, spread=0.0, temperature=0.0)
_LOCAL_BASELINE = SearchSettings(n_starts=1, steps=19, decode_every=1, lr=0.1, density_weight=0.0,
                                 trust_radius=None, noise=0.0, spread=1.0, temperature=0.0)
# (method, "prior" | "molecules") -> defaults. Start molecules: 20 decoded molecules per start for every
# method; the gradient search spends them as 20 perturbed copies decoded once after its steps.
DEFAULTS: dict[tuple[str, str], SearchSettings] = {
    ("gradient", "prior"): _PRIOR,
    ("random", "prior"): _PRIOR,
    ("bo", "prior"): _PRIOR,
    ("gradient", "molecules"): SearchSettings(n_starts=20, steps=10, decode_every=10, lr=0.2, density_weight=3.0,
                                              trust_radius=None, noise=0.0, spread=0.5, temperature=0.5),
    ("random", "molecules"): _LOCAL_BASELINE,
    ("bo", "molecules"): _LOCAL_BASELINE,
}


def resolve_settings(method: str, from_molecules: bool, given: dict[str, Any]) -> SearchSettings:
    """The defaults of (method, kind of start) with the non-None entries of `given` (names of
    `SearchSettings` fields) validated and put in their place."""
    base = DEFAULTS[(method, "molecules" if from_molecules else "prior")]
    out: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            continue
        if name in ("n_starts", "steps", "decode_every", "budget"):
            out[name] = arguments.positive_int(value, name)
        elif name in ("lr", "trust_radius"):
            out[name] = arguments.number(value, name, 0.0, lo_open=True)
        elif name == "temperature":
            out[name] = arguments.number(value, name, 0.0, 10.0)
        elif name in ("density_weight", "noise", "spread", "uncertainty_weight"):
            out[name] = arguments.number(value, name, 0.0)
        else:
            raise UsageError(f"unknown search setting {name!r}")
    return dataclasses.replace(base, **out)
