"""Search loops in latent space: gradient ascent on the property head, random search and
Gaussian-process Bayesian optimization, all spending one budget of decoded molecules
through one `Evaluator` (decode -> RDKit -> constraints -> score -> record).

Vocabulary. A *trajectory* is one search path, starting at a latent `z0`; it belongs to a
*start* (the user's molecule, or for prior starts the molecule its own `z0` decodes to).
Every method decodes at *decode steps* (0, k, 2k, ..., steps; the gradient search from
start molecules skips step 0) and every start has its own budget of decoded molecules,
counted and enforced by the `Evaluator`, so that methods compare at equal budgets.
The gradient search lives in `molvae.optimization.gradient`, Bayesian optimization in
`molvae.optimization.bo`.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch

from molvae import chem
from molvae.optimization.objectives import Constraints, Scorer
from molvae.optimization.settings import decoding
from molvae.parallel import pmap

__all__ = ["Starts", "Evaluator", "Batch", "decode_steps", "perturb", "random_search"]


def decode_steps(steps: int, every: int) -> list[int]:
    """Steps at which each trajectory is decoded: 0, every, 2*every, ..., and `steps`."""
    return sorted(set(range(0, steps + 1, every)) | {steps})


@dataclass
class Starts:
    """Starting points. z0 (T, Z) float32 CPU; group (T,) start index of each trajectory;
    sigma (T, Z): posterior std of the start (ones for prior starts), the unit of every
    step, perturbation and trust radius; center (T, Z): the start's posterior mean (prior
    starts: z0), the centre of the trust region; smiles/canonical per start (prior starts:
    filled by the step-0 decode); from_prior: starts are prior draws (then T = number of
    starts)."""

    z0: torch.Tensor
    group: np.ndarray
    sigma: torch.Tensor
    smiles: list[str | None]
    canonical: list[str | None]
    from_prior: bool
    center: torch.Tensor | None = None
    mols: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.center is None:
            self.center = self.z0.clone()
        if not self.mols:
            self.mols = [chem.to_mol(s) if s else None for s in self.smiles]

    @property
    def n_traj(self) -> int:
        return int(self.z0.size(0))

    @property
    def n_starts(self) -> int:
        return len(self.smiles)

    def set_start(self, g: int, smiles: str, canonical: str | None) -> None:
        self.smiles[g], self.canonical[g] = smiles, canonical
        self.mols[g] = chem.to_mol(canonical) if canonical else None


def _rdkit_row(smiles: str, names: tuple[str, ...], constraints: Constraints) -> tuple[str | None, list[float], list[str]]:
    """(canonical or None, values of `names`, constraint failures) for one decoded SMILES.
    Module-level so that `pmap` can run it in worker processes."""
    mol = chem.to_mol(smiles) if smiles else None
    if mol is None:
        return None, [math.nan] * len(names), ["invalid"]
    from rdkit import Chem

    values = chem.mol_properties(mol, names)
    return Chem.MolToSmiles(mol), [values[n] for n in names], constraints.failures(mol, values)


@dataclass
class Batch:
    """What `Evaluator.evaluate` learned about the latents it decoded (m <= n rows)."""

    n: int                # rows decoded (the budget may cut a batch short)
    rows: np.ndarray      # (m,) positions in the batch given to `evaluate` that were decoded
    score: np.ndarray     # (m,) result score; NaN unless the molecule passes every constraint
    ok: np.ndarray        # (m,) bool: valid and passes every constraint (the start itself included)
    cycle: np.ndarray     # (m,) JT-VAE ring penalty of the decoded molecule (0 if invalid)


class Evaluator:
    """Decodes latents, rescores with RDKit, checks constraints, counts each start's budget
    and records every observation. RDKit results are cached per decoded SMILES for the run
    (trajectories revisit the same molecules often).

    budget: decoded molecules per start. temperature: 0 decodes greedily, T > 0 samples tokens at T
    (`molvae.optimization.settings.decoding`; sampling is seeded by `seed` and the call count, so a run is
    reproducible)."""

    def __init__(self, vae: Any, scorer: Scorer, constraints: Constraints, starts: Starts,
                 similarity: float | None, budget: int, n_jobs: int | None = 1, temperature: float = 0.0,
                 seed: int = 0):
        self.vae, self.scorer, self.constraints, self.starts = vae, scorer, constraints, starts
        self.similarity, self.budget, self.n_jobs = similarity, int(budget), n_jobs
        self.temperature, self.seed, self._calls = temperature, int(seed), 0
        cycle = ("logp", "sa", "plogp_raw") if scorer.needs_cycle() else ()
        self.names = tuple(dict.fromkeys(scorer.rdkit_names() + constraints.rdkit_names() + cycle))
        self.spent = np.zeros(starts.n_starts, dtype=np.int64)
        self._cache: dict[str, tuple[str | None, dict[str, float], list[str]]] = {}
        self._sim: dict[tuple[int, str], float] = {}
        self._rows: list[dict[str, np.ndarray]] = []

    @property
    def used(self) -> int:
        """Decoded molecules so far, all starts together."""
        return int(self.spent.sum())

    @property
    def remaining(self) -> int:
        """Decoded molecules left, all starts together."""
        return int((self.budget - self.spent).clip(min=0).sum())

    def _within_budget(self, groups: np.ndarray) -> np.ndarray:
        """Positions of the rows (start of each, in order) that the starts' budgets still allow."""
        left = (self.budget - self.spent).clip(min=0)
        rank = np.zeros(len(groups), dtype=np.int64)
        seen: dict[int, int] = {}
        for i, g in enumerate(groups.tolist()):
            rank[i] = seen.get(g, 0)
            seen[g] = rank[i] + 1
        return np.flatnonzero(rank < left[groups])

    def _decode(self, z: torch.Tensor) -> list[str]:
        self._calls += 1
        return self.vae.decode(z, seed=self.seed * 1_000_003 + self._calls, **decoding(self.temperature))

    # ------------------------------------------------------------- pieces
    def _rescore(self, smiles: Sequence[str]) -> None:
        """Fill the cache for SMILES not seen before."""
        new = list(dict.fromkeys(s for s in smiles if s not in self._cache))
        if not new:
            return
        with chem.rdkit_quiet():
            rows = pmap(partial(_rdkit_row, names=self.names, constraints=self.constraints), new,
                        self.n_jobs if len(new) >= 256 else 1)
        head = self.scorer.head_only_names()
        head_values: dict[str, dict[str, float]] = {}
        if head:
            valid = [c for c, _, _ in rows if c is not None]
            head_values = self._head_values(valid, head)
        for s, (canon, vals, fails) in zip(new, rows):
            values = dict(zip(self.names, vals))
            for name in head:
                values[name] = head_values.get(canon, {}).get(name, math.nan) if canon else math.nan
            self._cache[s] = (canon, values, fails)

    def _head_values(self, canonical: list[str], names: tuple[str, ...]) -> dict[str, dict[str, float]]:
        """The head's prediction on the re-encoded molecule, for properties RDKit cannot compute."""
        if not canonical:
            return {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # molecules the vocabulary cannot spell stay NaN
            z, rows = self.vae.encode(canonical, on_invalid="skip", return_rows=True)
        if len(rows) == 0:
            return {}
        with torch.no_grad():
            pred = self.vae.model.predict_props(torch.from_numpy(z).to(self.vae.device)).float().cpu().numpy()
        values = self.scorer.predicted_values(pred)
        return {canonical[r]: {n: float(values[n][i]) for n in names} for i, r in enumerate(rows)}

    def _similarity(self, g: int, canonical: str | None) -> float:
        mol = self.starts.mols[g]
        if canonical is None or mol is None:
            return 0.0 if canonical is not None else math.nan
        key = (g, canonical)
        if key not in self._sim:
            self._sim[key] = float(chem.bulk_tanimoto(mol, [canonical])[0])
        return self._sim[key]

    def predict(self, z: torch.Tensor, cycle: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Predicted score (n,) and predicted objective values {name: (n,)} at latents z
        (head, no grad). The score is NaN unless the head predicts every objective; values
        it cannot predict are absent."""
        n = z.size(0)
        if self.vae.model.prop_head is None:
            return np.full(n, math.nan), {}
        with torch.no_grad():
            p = self.vae.model.predict_props(z.to(self.vae.device).float()).float().cpu().numpy()
        vals = {k: np.asarray(v, dtype=np.float64) for k, v in self.scorer.predicted_values(p, cycle).items()}
        return (self.scorer.score(vals) if self.scorer.has_guide() else np.full(n, math.nan)), vals

    # ---------------------------------------------------------- evaluate
    def evaluate(self, traj: np.ndarray, z: torch.Tensor, step: int) -> Batch:
        """Decode z (n, Z) for trajectories `traj` (n,) at `step`, as far as each start's budget
        goes (`Batch.rows` says which rows were decoded)."""
        traj = np.asarray(traj)
        keep = self._within_budget(self.starts.group[traj])
        m = len(keep)
        traj, z = traj[keep], z.detach().float().cpu()[torch.as_tensor(keep, dtype=torch.long)]
        steps = np.full(m, int(step))
        if m == 0:
            return Batch(0, keep, np.zeros(0), np.zeros(0, bool), np.zeros(0))
        groups = self.starts.group[traj]
        np.add.at(self.spent, groups, 1)
        smiles = self._decode(z)
        self._rescore(smiles)
        canon = [self._cache[s][0] for s in smiles]
        if self.starts.from_prior:  # a prior start is the molecule its own z0 decodes to
            for i in np.flatnonzero(steps == 0):
                self.starts.set_start(int(groups[i]), canon[i] or smiles[i], canon[i])
        values = {n: np.array([self._cache[s][1][n] for s in smiles]) for n in self.scorer.names}
        sim = np.array([self._similarity(int(g), c) for g, c in zip(groups, canon)])
        fails = [list(self._cache[s][2]) for s in smiles]
        for i in range(m):
            if self.similarity is not None and canon[i] is not None and not sim[i] >= self.similarity:
                fails[i].append("similarity")
        score = self.scorer.score(values)
        for i in range(m):  # e.g. a user column for a molecule the vocabulary cannot re-encode
            if canon[i] is not None and not np.isfinite(score[i]):
                fails[i].append("unscored")
        ok = np.array([not f for f in fails], dtype=bool)
        is_start = np.array([c is not None and c == self.starts.canonical[int(g)] for g, c in zip(groups, canon)])
        cycle = np.zeros(m)
        if self.scorer.needs_cycle():  # ring penalty = logP - SA - plogp_raw (see chem.mol_properties)
            v = [self._cache[s][1] for s in smiles]
            cycle = np.nan_to_num(np.array([x["logp"] - x["sa"] - x["plogp_raw"] for x in v]))
        score_pred, pred = self.predict(z, cycle)
        row = {"traj": traj, "start_id": groups, "step": steps, "smiles": np.array(smiles, dtype=object),
               "canonical": np.array(canon, dtype=object), "valid": np.array([c is not None for c in canon]),
               "ok": ok, "result": ok & ~is_start, "rejected": np.array([",".join(f) for f in fails], dtype=object),
               "similarity": sim, "score": score, "score_pred": score_pred}
        for n in self.scorer.names:
            row[n] = values[n]
            row[f"{n}_pred"] = pred.get(n, np.full(m, math.nan))
        self._rows.append(row)
        return Batch(m, keep, np.where(ok, score, np.nan), ok, cycle)

    def observations(self) -> Any:
        """Every decoded latent as a DataFrame, in decoding order."""
        import pandas as pd

        if not self._rows:
            cols = ["traj", "start_id", "step", "smiles", "canonical", "valid", "ok", "result", "rejected",
                    "similarity", "score", "score_pred"]
            return pd.DataFrame({c: [] for c in cols})
        keys = self._rows[0].keys()
        return pd.DataFrame({k: np.concatenate([r[k] for r in self._rows]) for k in keys})


# --------------------------------------------------------------------------- methods


def perturb(starts: Starts, traj: np.ndarray, gen: torch.Generator, trust_radius: float | None,
             scale: tuple[float, float] = (0.1, 1.0)) -> torch.Tensor:
    """Random latents around each trajectory's start (`Starts.center`), in units of the
    start's posterior std sigma. With a trust radius: a random direction at a distance
    uniform in [0, r] sigma (uniform in volume would put nearly every point on the surface in
    high dimension). Without: center + s * sigma * eps, s log-uniform in `scale` (a fresh s
    per draw, so that near and far both get tried)."""
    n, d = len(traj), starts.z0.size(1)
    eps = torch.randn(n, d, generator=gen)
    center, sigma = starts.center[traj], starts.sigma[traj]
    if trust_radius is not None:
        r = trust_radius * torch.rand(n, 1, generator=gen)
        return center + sigma * eps / eps.norm(dim=1, keepdim=True).clamp_min(1e-12) * r
    lo, hi = math.log(scale[0]), math.log(scale[1])
    s = torch.exp(lo + (hi - lo) * torch.rand(n, 1, generator=gen))
    return center + s * sigma * eps


def random_search(ev: Evaluator, steps: int, every: int, trust_radius: float | None, seed: int) -> None:
    """Decode z0, then at each later decode step one random latent per trajectory: a prior
    draw (prior starts) or a perturbation around the start (`perturb`)."""
    starts = ev.starts
    gen = torch.Generator().manual_seed(int(seed) + 7919)
    traj = np.arange(starts.n_traj)
    for r, step in enumerate(decode_steps(steps, every)):
        if ev.remaining <= 0:
            break
        if r == 0:
            z = starts.z0
        elif starts.from_prior and trust_radius is None:
            z = torch.randn(starts.n_traj, starts.z0.size(1), generator=gen)
        else:
            z = perturb(starts, traj, gen, trust_radius)
        ev.evaluate(traj, z, step)
