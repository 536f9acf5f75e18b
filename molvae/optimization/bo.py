"""Batched Gaussian-process Bayesian optimization in latent space (expected improvement with
local penalization), spending its budget through the same `Evaluator` as the other methods."""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from molvae.optimization.search import Evaluator, Starts, decode_steps, perturb

__all__ = ["bo_search"]

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
    count: small GP algebra on many threads mostly waits for them (several times slower on a
    loaded machine; docs/optimization.md, "Bayesian optimization's threads")."""
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
    and then held fixed per start, candidates from `perturb` around the start.
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
    X.append(starts.z0[got.rows].numpy())
    Y.append(got.score)
    G.append(starts.group[got.rows])
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
        X.append(z[got.rows].numpy())
        Y.append(got.score)
        G.append(starts.group[got.rows])


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
        cand = perturb(starts, np.full(n_cand, t), gen, trust_radius).numpy()
        gp = GaussianProcessRegressor(fitted, optimizer=None, normalize_y=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gp.fit(x[mine], y[mine])
        best = float(y[mine].max())
        out[t] = torch.from_numpy(cand[_select(gp, cand, 1, best, 1.0)[0]])
    return out
