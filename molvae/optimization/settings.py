"""The search settings of one `molvae.optimize` run: what the caller gave, completed by the defaults of
its method and kind of start, validated once.

Defaults for start molecules were chosen on the similarity-constrained plogp protocol
(docs/optimization.md): every method spends 20 decoded molecules per start molecule, the budget of that
protocol. Prior starts keep 64 trajectories of 100 steps decoded every 10.

Temperature, the one contract of every layer of `molvae.optimize` (the settings, the searches, the gradient
search's choice of copies, the decoder): a float in [0, 10]; 0 decodes greedily (the argmax token, one
molecule per latent, deterministic), T > 0 samples each token from softmax(logits / T). `decoding(T)` is the
only translation into the decoder's arguments (`MolVAE.decode(method=..., temperature=...)`, whose own
temperature is in (0, 10] beside a method), and `likelihood_temperature(T)` the temperature at which the
likelihood of a start molecule is measured: T itself, or 1 (the model's own distribution) for greedy decoding.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from molvae import arguments
from molvae.errors import UsageError

__all__ = ["SearchSettings", "resolve_settings", "DEFAULTS", "decoding", "likelihood_temperature"]


@dataclass(frozen=True)
class SearchSettings:
    """n_starts: prior starts, or trajectories per start molecule. steps, decode_every: steps per trajectory
    and how often each is decoded. budget: decoded molecules per start (None: whatever the decode steps
    spend). lr: step length in posterior stds (gradient). density_weight: weight of the learned latent
    log-density, nats (gradient). trust_radius: largest distance from the start, posterior stds (None:
    none). noise: Langevin noise per step, posterior stds (gradient). spread: the copies of a start
    molecule begin at mean + spread * sigma * N(0, I), the first at the mean. temperature: 0 decodes
    greedily; above 0, tokens are sampled at that temperature (the module docstring's contract).
    uncertainty_weight: penalty on the std of the predicted score across a head ensemble's members
    (gradient, with `heads`).
    Gradient search from start molecules only: candidates: copies searched per start, of which the
    n_starts whose -log p(x_start | z) at `likelihood_temperature` is nearest target_nll (nats) are decoded
    at each decode step (None: n_starts, every copy decoded); refine_steps: Adam steps on
    log p(x_start | z) from the posterior mean to z*, the latent that reconstructs the start (0: none),
    and the copies then begin along the segment from the mean to z* (`gradient.place_copies`)."""

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
    candidates: int | None = None
    refine_steps: int = 0
    target_nll: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Prior starts travel far (no similarity floor): steps of 0.5 and no density term gave the best RDKit logP
# and QED per start on 32 prior starts (docs/optimization.md); the density term held them back.
_PRIOR = SearchSettings(n_starts=64, steps=100, decode_every=10, lr=0.5, density_weight=0.0, trust_radius=None,
                        noise=0.0, spread=0.0, temperature=0.0)
_LOCAL_BASELINE = SearchSettings(n_starts=1, steps=19, decode_every=1, lr=0.1, density_weight=0.0,
                                 trust_radius=None, noise=0.0, spread=1.0, temperature=0.0)
# (method, "prior" | "molecules") -> defaults. Start molecules: 20 decoded molecules per start for every
# method. The gradient search climbs the decoder's likelihood of the start (100 steps, to z*), places 200
# copies between the mean and z* and decodes the 20 whose -log p_0.5(start | z) is nearest 2 nats: on the
# 800 starts of the protocol that succeeds at Tanimoto >= 0.4 more often than fewer steps and copies or the
# first round's default (docs/optimization.md: the two "800 starts, delta 0.4" sections give the figures).
# The head's steps are nearly off (one step of 0.01 stds): more and longer steps with the density term
# raised the improvement a little but cost success (docs/optimization.md, "Variants tried this round").
DEFAULTS: dict[tuple[str, str], SearchSettings] = {
    ("gradient", "prior"): _PRIOR,
    ("random", "prior"): _PRIOR,
    ("bo", "prior"): _PRIOR,
    ("gradient", "molecules"): SearchSettings(n_starts=20, steps=1, decode_every=1, lr=0.01, density_weight=0.0,
                                              trust_radius=None, noise=0.0, spread=2.0, temperature=0.5,
                                              candidates=200, refine_steps=100, target_nll=2.0),
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
        if name in ("n_starts", "steps", "decode_every", "budget", "candidates"):
            out[name] = arguments.positive_int(value, name)
        elif name == "refine_steps":
            out[name] = 0 if (value == 0 and not isinstance(value, bool)) else arguments.positive_int(value, name)
        elif name in ("lr", "trust_radius", "target_nll"):
            out[name] = arguments.number(value, name, 0.0, lo_open=True)
        elif name == "temperature":
            out[name] = arguments.number(value, name, 0.0, 10.0)
        elif name in ("density_weight", "noise", "spread", "uncertainty_weight"):
            out[name] = arguments.number(value, name, 0.0)
        else:
            raise UsageError(f"unknown search setting {name!r}")
    if "candidates" not in out and base.candidates is not None and out.get("n_starts", 0) > base.candidates:
        out["candidates"] = out["n_starts"]  # asked to decode more copies than the default searches: decode all
    cfg = dataclasses.replace(base, **out)
    if cfg.candidates is not None and cfg.candidates < cfg.n_starts:
        raise UsageError(f"candidates ({cfg.candidates}) must be at least n_starts ({cfg.n_starts}), the copies "
                         "decoded per start at each decode step")
    if cfg.candidates is not None and cfg.candidates > cfg.n_starts and cfg.target_nll is None:
        raise UsageError("candidates above n_starts need target_nll: it chooses which copies are decoded")
    if not (method == "gradient" and from_molecules) and (
            out.get("candidates") is not None or out.get("refine_steps") or out.get("target_nll") is not None):
        raise UsageError("candidates, refine_steps and target_nll shape the gradient search from start molecules "
                         "only; random and bo, and prior starts, take none of them")
    return cfg


def decoding(temperature: float) -> dict[str, Any]:
    """The decoder's arguments for a search temperature (0: greedy; T > 0: sampling at T)."""
    return {"method": "greedy"} if temperature == 0 else {"method": "multinomial", "temperature": temperature}


def likelihood_temperature(temperature: float) -> float:
    """The temperature at which -log p(x_start | z) ranks the copies of a start: the decoding temperature,
    or 1 when decoding is greedy (whose own likelihood is 0 or infinite, ranking nothing)."""
    return temperature if temperature > 0 else 1.0
