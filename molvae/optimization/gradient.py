"""Density-aware gradient search in latent space: normalized gradient steps on the property head's
predicted score plus `density_weight` times the model's learned latent log-density, measured in units of
each start's posterior standard deviation, inside a trust region, with optional Langevin noise.

Why this shape (docs/optimization.md has the measurements): Adam on the head's prediction with an
N(0, I) penalty walked out of the region the decoder was trained on, where the head extrapolates and
nearly every decode fell below the similarity floor. Here every trajectory lives in the whitened
coordinates u = (z - mu) / sigma of its start (mu, sigma: the start's posterior mean and std; prior
starts: z0 and ones), so that one unit of step, noise or trust radius is one posterior std wherever the
start sits; the log-density term pulls towards latents the decoder has seen (`LatentDensity`, the
aggregate posterior of training molecules; N(0, I) for a model without one).

For start molecules the posterior mixture (one component per training molecule) is replaced by its `k`
components most responsible at each start's mean: inside a trust region of a few sigma the others add
nothing measurable to log q(z) or its gradient, and the full mixture costs (trajectories x 20,000) per step.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from molvae import chem
from molvae.optimization.likelihood import StartLikelihood, nearest_to_target
from molvae.optimization.search import Evaluator, Starts, decode_steps
from molvae.optimization.settings import likelihood_temperature

__all__ = ["gradient_search", "log_density_fn", "place_copies", "LOCAL_COMPONENTS"]

LOCAL_COMPONENTS = 256


def _component_logits(density: Any, z: torch.Tensor) -> torch.Tensor:
    """log w_k + log N(z; mu_k, diag s_k^2), (n, K), for a diagonal (posterior-mixture) density."""
    inv_var = density.scales.to(z.dtype).pow(-2)
    mu = density.means.to(z.dtype)
    const = (-0.5 * (mu * mu * inv_var).sum(1) + 0.5 * inv_var.log().sum(1)
             - 0.5 * density.dim * math.log(2.0 * math.pi) + density.weights.to(z.dtype).clamp_min(1e-300).log())
    out = []
    for start in range(0, z.size(0), 512):
        zb = z[start:start + 512]
        out.append(-0.5 * (zb * zb) @ inv_var.T + zb @ (mu * inv_var).T + const)
    return torch.cat(out)


def log_density_fn(vae: Any, centers: torch.Tensor, per_start: int | None,
                   k: int = LOCAL_COMPONENTS) -> Callable[[torch.Tensor], torch.Tensor]:
    """A differentiable log q(z) (n,) for the trajectories' latents z (n, D), in nats.

    centers (S, D): one row per start; per_start: trajectories per start, in start order (None: prior
    starts, which travel far: the full density). With a posterior-mixture density and start molecules,
    each start keeps its `k` components of highest log w_k N(mu_start; mu_k, s_k^2) (module docstring)."""
    density = getattr(vae, "density", None)
    dim = centers.size(1)
    if density is None:
        return lambda z: -0.5 * (z * z).sum(1) - 0.5 * dim * math.log(2.0 * math.pi)
    if density.scales is None or per_start is None:
        return lambda z: density.log_prob(z.double()).to(z.dtype)
    with torch.no_grad():
        logits = _component_logits(density, centers.double())
        top = logits.topk(min(k, density.n_components), dim=1).indices  # (S, k)
    mu = density.means[top].float()  # (S, k, D)
    inv_var = density.scales[top].float().pow(-2)
    const = (density.weights[top].clamp_min(1e-300).log() + 0.5 * inv_var.double().log().sum(-1)
             - 0.5 * (mu.double() ** 2 * inv_var.double()).sum(-1)).float() - 0.5 * dim * math.log(2.0 * math.pi)
    scaled_mu_t = (mu * inv_var).transpose(1, 2)  # (S, D, k)
    inv_var_t = inv_var.transpose(1, 2)

    def local(z: torch.Tensor) -> torch.Tensor:
        # sum_d ((z - mu) / s)^2 expanded into batched matmuls: (S, per, k) without a (S, per, k, D) temporary
        zs = z.view(centers.size(0), per_start, dim)
        comp = -0.5 * torch.bmm(zs * zs, inv_var_t) + torch.bmm(zs, scaled_mu_t) + const[:, None, :]
        return torch.logsumexp(comp, dim=-1).reshape(-1)

    return local


def _start_cycles(canonical: list[str | None]) -> np.ndarray:
    """JT-VAE ring penalty (S,) of each start molecule (0 where it does not parse)."""
    v = chem.properties([c or "" for c in canonical], ["logp", "sa", "plogp_raw"])
    return np.nan_to_num((v["logp"] - v["sa"] - v["plogp_raw"]).to_numpy(dtype=np.float64))


def place_copies(starts: Starts, per_start: int, z_star: torch.Tensor | None, spread: float, seed: int) -> None:
    """Set the z0 of the `per_start` copies of each start molecule (trajectories in start order): copy 0 at
    the posterior mean mu, copy k at mu + a_k (z* - mu) + s_k sigma eps_k, a_k uniform in [0, 1] (z*: the
    start's `StartLikelihood.refine` latent, (S, D); None: mu), s_k log-uniform in [spread / 20, spread]
    posterior stds per coordinate, eps_k ~ N(0, I). The segment from mu to z* runs from latents whose
    decodes often fall below a similarity floor to latents that decode to the start itself; the spread
    of scales covers near and far (docs/optimization.md)."""
    n, d = starts.n_traj, starts.z0.size(1)
    gen = torch.Generator().manual_seed(int(seed) + 104729)
    center, sigma = starts.center, starts.sigma
    a = torch.rand(n, 1, generator=gen)
    hi = math.log(max(spread, 1e-12))
    s = torch.exp(hi - math.log(20.0) * torch.rand(n, 1, generator=gen)) if spread > 0 else torch.zeros(n, 1)
    eps = torch.randn(n, d, generator=gen)
    toward = torch.zeros_like(center) if z_star is None else z_star.cpu()[starts.group] - center
    z0 = center + a * toward + s * sigma * eps
    first = np.arange(0, n, per_start)
    z0[first] = center[first]
    starts.z0 = z0


def gradient_search(ev: Evaluator, steps: int, every: int, lr: float, density_weight: float,
                    trust_radius: float | None, noise: float, seed: int, per_start: int | None,
                    heads: Any = None, uncertainty_weight: float = 0.0, likelihood: StartLikelihood | None = None,
                    n_decode: int | None = None, target_nll: float | None = None) -> None:
    """Ascend the head's predicted score + `density_weight` * log q(z) from every trajectory's z0.

    Each step moves u = (z - center) / sigma by `lr` along the normalized gradient (a step of lr posterior
    stds, however steep the head), adds Langevin noise `noise` * xi / sqrt(D) (xi ~ N(0, I): a random
    move of about `noise` stds), then projects u onto ||u|| <= trust_radius. Decodes every `every` steps
    and at the last step; step 0 only for prior starts (per_start None), whose start molecule it defines:
    a start molecule's own neighbourhood at step 0 is what random search samples.

    heads: a `HeadEnsemble`; with `uncertainty_weight` > 0 the objective loses that many times the std
    of the predicted score across its members (where they disagree, the head's gradient is not trusted).

    Selection (start molecules): with `n_decode` < per_start, each decode step decodes only the n_decode
    copies of each start whose -log p_T(x_start | z) (`likelihood`, at
    `settings.likelihood_temperature` of the decoding temperature) is nearest `target_nll` nats; the others are searched, scored and never decoded."""
    vae, starts = ev.vae, ev.starts
    dev = vae.device
    center = starts.center.to(dev)
    sigma = starts.sigma.to(dev)
    u = ((starts.z0.to(dev) - center) / sigma).clone()
    log_q = log_density_fn(vae, center[::per_start] if per_start else center, per_start)
    cycle = torch.zeros(starts.n_traj, device=dev)
    if ev.scorer.needs_cycle() and per_start:  # until a trajectory's first decode: its start's ring penalty
        cycle = torch.as_tensor(_start_cycles(starts.canonical)[starts.group], dtype=torch.float32, device=dev)
    when = set(decode_steps(steps, every)) - ({0} if per_start else set())
    traj = np.arange(starts.n_traj)
    gen = torch.Generator().manual_seed(int(seed) + 3571)
    head = vae.model.prop_head
    was_training = head.training
    head.eval()
    try:
        for step in range(steps + 1):
            if step in when:
                pick = traj
                if per_start and n_decode is not None and n_decode < per_start:
                    z = (center + sigma * u).detach()
                    nll = likelihood.nll(z, starts.group, likelihood_temperature(ev.temperature))
                    pick = nearest_to_target(nll, starts.group, n_decode, target_nll)
                got = ev.evaluate(pick, center[pick] + sigma[pick] * u[pick], step)
                if ev.scorer.needs_cycle() and got.n:
                    rows = torch.as_tensor(pick[got.rows], dtype=torch.long, device=dev)
                    cycle[rows] = torch.as_tensor(got.cycle, dtype=cycle.dtype, device=dev)
                if ev.remaining <= 0:
                    break
            if step == steps:
                break
            u = u.detach().requires_grad_(True)
            with torch.enable_grad():
                z = center + sigma * u
                objective = ev.scorer.guide(vae.model.predict_props(z), cycle)
                if density_weight > 0:
                    objective = objective + density_weight * log_q(z)
                if heads is not None and uncertainty_weight > 0:
                    members = heads.predict(z)
                    spread = torch.stack([ev.scorer.guide(p, cycle) for p in members]).std(0)
                    objective = objective - uncertainty_weight * spread
                (g,) = torch.autograd.grad(objective.sum(), u)
            with torch.no_grad():
                u = u + lr * g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
                if noise > 0:
                    xi = torch.randn(u.shape, generator=gen).to(dev)
                    u = u + noise * xi / math.sqrt(u.size(1))
                if trust_radius is not None:
                    u = u * (trust_radius / u.norm(dim=1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0)
    finally:
        head.train(was_training)
