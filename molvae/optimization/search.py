"""Search loops in latent space: gradient ascent on the property head, random search and
Gaussian-process Bayesian optimization, all spending one budget of decoded molecules
through one `Evaluator` (decode -> RDKit -> constraints -> score -> record).

Vocabulary. A *trajectory* is one search path, starting at a latent `z0`; it belongs to a
*start* (the user's molecule, or for prior starts the molecule its own `z0` decodes to).
Every method decodes one latent per trajectory at each *decode step* (0, k, 2k, ...,
steps), so by default all methods spend the same budget: trajectories x decode steps.
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
from molvae.parallel import pmap

__all__ = ["Starts", "Evaluator", "decode_steps", "gradient_search", "random_search", "bo_search"]


def decode_steps(steps: int, every: int) -> list[int]:
    """Steps at which each trajectory is decoded: 0, every, 2*every, ..., and `steps`."""
    return sorted(set(range(0, steps + 1, every)) | {steps})


@dataclass
class Starts:
    """Starting points. z0 (T, Z) float32 CPU; group (T,) start index of each trajectory;
    sigma (T, Z): posterior std of the start (ones for prior starts), the natural scale of
    perturbations; smiles/canonical per start (prior starts: filled by the step-0 decode);
    from_prior: starts are prior draws (then T = number of starts)."""

    z0: torch.Tensor
    group: np.ndarray
    sigma: torch.Tensor
    smiles: list[str | None]
    canonical: list[str | None]
    from_prior: bool
    mols: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.mols:
            self.mols = [chem.to_mol(s) if s else None for s in self.smiles]

    @property
    def n_traj(self) -> int:
        return int(self.z0.size(0))

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
    score: np.ndarray     # (m,) result score; NaN unless the molecule passes every constraint
    ok: np.ndarray        # (m,) bool: valid and passes every constraint (the start itself included)
    cycle: np.ndarray     # (m,) JT-VAE ring penalty of the decoded molecule (0 if invalid)


class Evaluator:
    """Decodes latents greedily, rescores with RDKit, checks constraints, counts the budget
    and records every observation. RDKit results are cached per decoded SMILES for the run
    (trajectories revisit the same molecules often)."""

    def __init__(self, vae: Any, scorer: Scorer, constraints: Constraints, starts: Starts,
                 similarity: float | None, budget: int, n_jobs: int = 1):
        self.vae, self.scorer, self.constraints, self.starts = vae, scorer, constraints, starts
        self.similarity, self.budget, self.n_jobs = similarity, int(budget), n_jobs
        cycle = ("logp", "sa", "plogp_raw") if scorer.needs_cycle() else ()
        self.names = tuple(dict.fromkeys(scorer.rdkit_names() + constraints.rdkit_names() + cycle))
        self.used = 0
        self._cache: dict[str, tuple[str | None, dict[str, float], list[str]]] = {}
        self._sim: dict[tuple[int, str], float] = {}
        self._rows: list[dict[str, np.ndarray]] = []

    @property
    def remaining(self) -> int:
        return self.budget - self.used

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
        """Decode z (n, Z) for trajectories `traj` (n,) at `step`, as far as the budget goes."""
        m = max(0, min(len(traj), self.remaining))
        traj, z = np.asarray(traj[:m]), z[:m].detach().float().cpu()
        steps = np.full(m, int(step))
        if m == 0:
            return Batch(0, np.zeros(0), np.zeros(0, bool), np.zeros(0))
        self.used += m
        smiles = self.vae.decode(z, method="greedy", seed=0)
        self._rescore(smiles)
        groups = self.starts.group[traj]
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
        return Batch(m, np.where(ok, score, np.nan), ok, cycle)

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


def gradient_search(ev: Evaluator, steps: int, every: int, lr: float, prior_weight: float,
                    trust_radius: float | None) -> None:
    """Adam on all trajectories' z at once, maximizing the head's predicted score minus
    `prior_weight` * (-log N(z; 0, I)) (up to a constant), projected after each step onto the
    ball of `trust_radius` around z0 when given. Decodes every `every` steps and at the end."""
    vae, starts = ev.vae, ev.starts
    dev = vae.device
    anchor = starts.z0.to(dev)
    z = anchor.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    cycle = torch.zeros(starts.n_traj, device=dev)
    when = set(decode_steps(steps, every))
    traj = np.arange(starts.n_traj)
    head = vae.model.prop_head
    was_training = head.training
    head.eval()
    try:
        for step in range(steps + 1):
            if step in when:
                got = ev.evaluate(traj, z.detach(), step)
                if ev.scorer.needs_cycle() and got.n:
                    cycle[:got.n] = torch.as_tensor(got.cycle, dtype=cycle.dtype, device=dev)
                if ev.remaining <= 0:
                    break
            if step == steps:
                break
            opt.zero_grad(set_to_none=True)
            with torch.enable_grad():
                guide = ev.scorer.guide(vae.model.predict_props(z), cycle)
                loss = -guide.sum() + prior_weight * 0.5 * z.pow(2).sum()
                loss.backward()
            opt.step()
            if trust_radius is not None:
                with torch.no_grad():
                    d = z - anchor
                    scale = (trust_radius / d.norm(dim=1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0)
                    z.copy_(anchor + d * scale)
    finally:
        head.train(was_training)


def _perturb(starts: Starts, traj: np.ndarray, gen: torch.Generator, trust_radius: float | None,
             scale: tuple[float, float] = (0.1, 1.0)) -> torch.Tensor:
    """Random latents around each trajectory's z0. With a trust radius: a random direction
    at a distance uniform in [0, r] (uniform in volume would put nearly every point on the
    surface in high dimension). Without: z0 + s * sigma * eps, sigma the start's posterior
    std, s log-uniform in `scale` (a fresh s per draw, so that near and far both get tried)."""
    n, d = len(traj), starts.z0.size(1)
    eps = torch.randn(n, d, generator=gen)
    z0 = starts.z0[traj]
    if trust_radius is not None:
        r = trust_radius * torch.rand(n, 1, generator=gen)
        return z0 + eps / eps.norm(dim=1, keepdim=True).clamp_min(1e-12) * r
    lo, hi = math.log(scale[0]), math.log(scale[1])
    s = torch.exp(lo + (hi - lo) * torch.rand(n, 1, generator=gen))
    return z0 + s * starts.sigma[traj] * eps


def random_search(ev: Evaluator, steps: int, every: int, trust_radius: float | None, seed: int) -> None:
    """Decode z0, then at each later decode step one random latent per trajectory: a prior
    draw (prior starts) or a perturbation around the start (`_perturb`)."""
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
            z = _perturb(starts, traj, gen, trust_radius)
        ev.evaluate(traj, z, step)


# ------------------------------------------------------------------------- BO


def _gp(length_scale: float) -> Any:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * Matern(length_scale, (1e-2, 1e3), nu=2.5)
              + WhiteKernel(0.1, (1e-5, 1.0)))
    return GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=0, random_state=0)


def _ei(mu: np.ndarray, sd: np.ndarray, best: float, xi: float = 0.01) -> np.ndarray:
    """Expected improvement of a maximization over `best`."""
    from scipy.stats import norm

    sd = np.maximum(sd, 1e-9)
    u = (mu - best - xi) / sd
    return (mu - best - xi) * norm.cdf(u) + sd * norm.pdf(u)


def _targets(score: np.ndarray) -> np.ndarray:
    """GP targets: the score where the molecule is a usable result; invalid or constraint-
    breaking latents get the worst usable score minus one spread, so the GP learns to avoid
    them without its scale being set by an arbitrary penalty."""
    good = np.isfinite(score)
    if not good.any():
        return np.full(len(score), -1.0)
    lo, spread = score[good].min(), max(float(np.std(score[good])), 1e-3)
    return np.where(good, score, lo - spread)


def _select(gp: Any, cand: np.ndarray, q: int, best: float, length: float) -> np.ndarray:
    """Indices of q candidates by greedy batch expected improvement with local penalization:
    after each pick, EI near it is damped by 1 - exp(-d^2 / 2 l^2) (l: the GP's length scale)
    so that one batch spreads over several promising regions."""
    mu, sd = gp.predict(cand, return_std=True)
    ei = _ei(mu, sd, best)
    picks: list[int] = []
    for _ in range(min(q, len(cand))):
        i = int(np.argmax(ei))
        picks.append(i)
        d2 = ((cand - cand[i]) ** 2).sum(1)
        ei = ei * (1.0 - np.exp(-d2 / (2.0 * length ** 2)))
        ei[i] = -np.inf
    return np.asarray(picks)


def _length(gp: Any) -> float:
    try:
        return float(gp.kernel_.k1.k2.length_scale)
    except AttributeError:
        return 1.0


def bo_search(ev: Evaluator, steps: int, every: int, trust_radius: float | None, seed: int,
              n_candidates: int = 1024, max_points: int = 800) -> None:
    """Batched GP-EI Bayesian optimization (see `_bo_search`). BLAS runs on torch's thread
    count: small GP algebra on many threads mostly waits for them (measured: 3.5x slower
    on the 2-core dev machine under load)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=max(1, torch.get_num_threads()), user_api="blas"):
        _bo_search(ev, steps, every, trust_radius, seed, n_candidates, max_points)


def _bo_search(ev: Evaluator, steps: int, every: int, trust_radius: float | None, seed: int,
              n_candidates: int = 1024, max_points: int = 800) -> None:
    """Batched GP-EI Bayesian optimization in latent space, the same decode steps as the
    other methods (one latent per trajectory per step).

    Prior starts: one GP over every observation (up to `max_points`: the best half and a
    random rest), candidates drawn half from the prior and half around the 16 best latents;
    each step picks one batch of `n_trajectories` by `_select`. User starts: one GP per start
    (local optimization), kernel hyperparameters fitted once per step on a pooled subsample
    and then held fixed per start, candidates from `_perturb` around the start.
    """
    starts = ev.starts
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(int(seed) + 104729)
    T, d = starts.n_traj, starts.z0.size(1)
    X: list[np.ndarray] = []
    Y: list[np.ndarray] = []
    G: list[np.ndarray] = []
    plan = decode_steps(steps, every)
    got = ev.evaluate(np.arange(T), starts.z0, plan[0])
    X.append(starts.z0[:got.n].numpy())
    Y.append(got.score)
    G.append(starts.group[:got.n])
    for step in plan[1:]:
        if ev.remaining <= 0:
            break
        x, y, g = np.concatenate(X), _targets(np.concatenate(Y)), np.concatenate(G)
        traj = np.arange(T)
        if starts.from_prior and trust_radius is None:
            keep = np.arange(len(x))
            if len(x) > max_points:
                top = np.argsort(-y)[:max_points // 2]
                rest = rng.choice(np.setdiff1d(keep, top), max_points - len(top), replace=False)
                keep = np.concatenate([top, rest])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # sklearn's convergence chatter on bounds
                gp = _gp(math.sqrt(d)).fit(x[keep], y[keep])
            elite = x[np.argsort(-y)[:16]]
            half = n_candidates // 2
            local = elite[rng.integers(0, len(elite), half)]
            local = local + rng.standard_normal((half, d)) * np.exp(rng.uniform(math.log(0.05), 0.0, (half, 1)))
            cand = np.concatenate([rng.standard_normal((n_candidates - half, d)), local]).astype(np.float32)
            z = torch.from_numpy(cand[_select(gp, cand, T, float(y.max()), _length(gp))])
        else:
            z = _local_bo(starts, x, y, g, trust_radius, gen, rng, max(64, n_candidates // 8), max_points)
        got = ev.evaluate(traj, z, step)
        X.append(z[:got.n].numpy())
        Y.append(got.score)
        G.append(starts.group[:got.n])


def _local_bo(starts: Starts, x: np.ndarray, y: np.ndarray, g: np.ndarray, trust_radius: float | None,
              gen: torch.Generator, rng: np.random.Generator, n_cand: int, max_points: int) -> torch.Tensor:
    """One proposal per trajectory, from the GP of its own start (see `bo_search`)."""
    from sklearn.gaussian_process import GaussianProcessRegressor

    pool = rng.choice(len(x), min(len(x), max_points // 2), replace=False)
    # Centre each start's targets so that the pooled fit sees one function's local shapes.
    sums, counts = np.bincount(g, weights=y), np.bincount(g)
    yc = y - (sums / np.maximum(counts, 1))[g]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = _gp(math.sqrt(x.shape[1])).fit(x[pool], yc[pool]).kernel_
    out = torch.empty_like(starts.z0)
    for t in range(starts.n_traj):
        k = starts.group[t]
        mine = g == k
        cand = _perturb(starts, np.full(n_cand, t), gen, trust_radius).numpy()
        gp = GaussianProcessRegressor(fitted, optimizer=None, normalize_y=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gp.fit(x[mine], y[mine])
        best = float(y[mine].max())
        out[t] = torch.from_numpy(cand[_select(gp, cand, 1, best, 1.0)[0]])
    return out
