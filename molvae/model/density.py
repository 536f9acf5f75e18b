"""The learned latent density: a Gaussian mixture over latent vectors, fitted to the aggregate posterior
of the training molecules and used as the sampling prior, by the optimizer (log-density penalty) and by
anomaly scores.

Why not N(0, I): a VAE's aggregate posterior q(z) = mean over x of q(z|x) does not fill the prior; prior
draws land where the decoder was never trained ("prior holes"). A mixture fitted to posterior draws of
the training set puts samples where the decoder has seen latents.

Stored as plain arrays (`density.safetensors`: weights (K,), means (K, D), cholesky (K, D, D), the lower
Cholesky factors of the component covariances; `density.json`: how it was fitted), never as a pickled
scikit-learn object: scikit-learn fits it, the arrays are copied out and the mixture is rebuilt in torch.
Torch and numpy only; no RDKit.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from molvae.errors import CheckpointError

__all__ = ["LatentDensity", "fit_mixture", "select_mixture", "posterior_mixture", "DENSITY_FILE", "DENSITY_INFO_FILE"]

DENSITY_FILE = "density.safetensors"
DENSITY_INFO_FILE = "density.json"
_CHUNK = 4096  # latents per log-density block: bounds the (K, D, chunk) temporary


@dataclass(frozen=True)
class LatentDensity:
    """A Gaussian mixture over latents z (D,): `weights` (K,) summing to 1, `means` (K, D), and either
    `cholesky` (K, D, D), lower-triangular factors of full covariances (a fitted mixture, K small), or
    `scales` (K, D), per-dimension standard deviations (diagonal components: the "posterior mixture" of
    training molecules, one component q(z|x) per molecule, K large); `info` records how it was made.
    `conds` (K, C): for a conditional model's posterior mixture, the standardized conditioning vector c of
    each component's molecule, so that sampling draws z and c together (None otherwise)."""

    weights: torch.Tensor
    means: torch.Tensor
    cholesky: torch.Tensor | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    scales: torch.Tensor | None = None
    conds: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if (self.cholesky is None) == (self.scales is None):
            raise ValueError("a LatentDensity has either full covariances (cholesky) or diagonal ones (scales)")
        if self.conds is not None and (self.conds.ndim != 2 or self.conds.shape[0] != self.means.shape[0]):
            raise ValueError(f"conds must be (K, C) for K = {self.means.shape[0]} components, got "
                             f"{tuple(self.conds.shape)}")

    @property
    def n_conds(self) -> int:
        """Columns C of the stored conditioning vectors (0: none stored)."""
        return 0 if self.conds is None else int(self.conds.shape[1])

    @property
    def kind(self) -> str:
        return "gaussian-mixture" if self.cholesky is not None else "posterior-mixture"

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @property
    def n_components(self) -> int:
        return int(self.means.shape[0])

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z) in nats, (n,) for z (n, D); differentiable in z, computed on z's device and dtype."""
        w = self.weights.to(z.device, z.dtype).clamp_min(1e-300).log()
        if self.scales is not None:
            return self._log_prob_diagonal(z, w)
        mu, chol = self.means.to(z.device, z.dtype), self.cholesky.to(z.device, z.dtype)
        half_logdet = torch.diagonal(chol, dim1=-2, dim2=-1).log().sum(-1)  # (K,)
        const = 0.5 * self.dim * math.log(2.0 * math.pi)
        parts = []
        for start in range(0, z.shape[0], _CHUNK):
            zb = z[start:start + _CHUNK]
            diff = (zb[None, :, :] - mu[:, None, :]).transpose(1, 2)  # (K, D, n)
            y = torch.linalg.solve_triangular(chol, diff, upper=False)  # (K, D, n)
            comp = -0.5 * (y * y).sum(1) - half_logdet[:, None] - const  # (K, n)
            parts.append(torch.logsumexp(comp + w[:, None], dim=0))
        return torch.cat(parts) if parts else z.new_zeros(0)

    def _log_prob_diagonal(self, z: torch.Tensor, log_w: torch.Tensor) -> torch.Tensor:
        # sum_d ((z - mu) / s)^2 expanded into matmuls: (n, K) without an (n, K, D) temporary
        inv_var = self.scales.to(z.device, z.dtype).pow(-2)  # (K, D)
        mu = self.means.to(z.device, z.dtype)
        const = (-0.5 * (mu * mu * inv_var).sum(1) + 0.5 * inv_var.log().sum(1)
                 - 0.5 * self.dim * math.log(2.0 * math.pi) + log_w)  # (K,)
        parts = []
        for start in range(0, z.shape[0], _CHUNK // 8):
            zb = z[start:start + _CHUNK // 8]
            comp = -0.5 * (zb * zb) @ inv_var.T + zb @ (mu * inv_var).T + const  # (n, K)
            parts.append(torch.logsumexp(comp, dim=1))
        return torch.cat(parts) if parts else z.new_zeros(0)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n draws (n, D) float32 on CPU, determined by the generator's state alone.

        Components are chosen by systematic resampling, in random order: each draw's component has the
        mixture's distribution, but component k is used floor(n w_k) or ceil(n w_k) times, never by chance
        more. In a posterior mixture a component is one training molecule's narrow q(z|x), and two draws from
        it mostly decode to the same molecule: drawn independently, 10,000 draws from 20,000 equal components
        would reuse about 2,100 of them."""
        return self.sample_with_conds(n, generator)[0]

    def sample_with_conds(self, n: int, generator: torch.Generator,
                          scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """n draws (n, D) float32 as `sample` (the same draws for the same generator state), with the stored
        conditioning vector of each draw's component (n, C) float32, or None when none is stored. `scale`
        multiplies each component's spread (1: the component itself)."""
        k = self._components(n, generator)
        eps = torch.randn(n, self.dim, generator=generator, dtype=torch.float64) * float(scale)
        mu = self.means.double().cpu()
        if self.scales is not None:
            z = mu[k] + self.scales.double().cpu()[k] * eps
        else:
            z = mu[k] + torch.einsum("nij,nj->ni", self.cholesky.double().cpu()[k], eps)
        return z.float(), (None if self.conds is None else self.conds.float().cpu()[k])

    def subset(self, keep: torch.Tensor) -> LatentDensity:
        """The mixture of the components `keep` (a bool mask (K,) or indices), their weights renormalized."""
        w = self.weights[keep]
        pick = (lambda t: None if t is None else t[keep])
        return LatentDensity(w / w.sum(), self.means[keep], pick(self.cholesky), dict(self.info),
                             pick(self.scales), pick(self.conds))

    def _components(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n,) component indices: systematic resampling of the weights, then a random permutation."""
        cdf = torch.cumsum(self.weights.double().cpu(), 0)
        u = (torch.rand(1, generator=generator, dtype=torch.float64) + torch.arange(n, dtype=torch.float64)) / n
        k = torch.searchsorted(cdf / cdf[-1], u).clamp_max(self.n_components - 1)
        return k[torch.randperm(n, generator=generator)]

    # ------------------------------------------------------------------ storage
    def tensors(self) -> dict[str, torch.Tensor]:
        """What is stored: float32, except a posterior mixture's per-molecule means and scales in float16
        (one pair per training molecule kept; float16 halves the file at a relative error of 5e-4)."""
        out = {"weights": self.weights.float().contiguous()}
        if self.conds is not None:
            out["conds"] = self.conds.float().contiguous()
        if self.scales is not None:
            return {**out, "means": self.means.half().contiguous(), "scales": self.scales.half().contiguous()}
        return {**out, "means": self.means.float().contiguous(), "cholesky": self.cholesky.float().contiguous()}

    def save(self, directory: str | Path) -> None:
        """Write `density.safetensors` and `density.json` into a checkpoint directory, atomically."""
        from safetensors.torch import save as st_save

        from molvae.files import atomic_write_bytes, atomic_write_text

        directory = Path(directory)
        atomic_write_bytes(directory / DENSITY_FILE, st_save(self.tensors(), metadata={"format": "molvae-density"}))
        info = {**self.info, "kind": self.kind, "n_components": self.n_components, "dim": self.dim}
        atomic_write_text(directory / DENSITY_INFO_FILE, json.dumps(info, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> LatentDensity | None:
        """The density stored in a checkpoint directory, or None when it has none."""
        from safetensors import SafetensorError
        from safetensors.torch import load as st_load

        path = Path(directory) / DENSITY_FILE
        if not path.is_file():
            return None
        try:
            arrays = st_load(path.read_bytes())
            info_path = Path(directory) / DENSITY_INFO_FILE
            info = json.loads(info_path.read_text()) if info_path.is_file() else {}
            chol, scales, conds = arrays.get("cholesky"), arrays.get("scales"), arrays.get("conds")
            density = cls(arrays["weights"].double(), arrays["means"].double(),
                          None if chol is None else chol.double(), info, None if scales is None else scales.double(),
                          None if conds is None else conds.double())
        except (SafetensorError, KeyError, ValueError, OSError) as exc:
            raise CheckpointError(f"{path}: unreadable latent density ({exc}); refit it with `molvae density`") from exc
        k, d = density.n_components, density.dim
        shape = tuple((density.cholesky if density.cholesky is not None else density.scales).shape)
        if density.means.ndim != 2 or shape not in ((k, d, d), (k, d)) or density.weights.shape != (k,):
            raise CheckpointError(f"{path}: inconsistent latent density shapes {tuple(density.means.shape)}, {shape}")
        return density


def fit_mixture(z: np.ndarray, n_components: int, seed: int = 0, reg_covar: float = 1e-4,
                max_iter: int = 200) -> LatentDensity:
    """Fit a full-covariance Gaussian mixture to latents z (n, D) with scikit-learn (k-means init, EM)
    and copy its parameters out as arrays. `reg_covar` is added to every covariance diagonal."""
    from sklearn.mixture import GaussianMixture

    gm = GaussianMixture(n_components=n_components, covariance_type="full", reg_covar=reg_covar,
                         max_iter=max_iter, random_state=seed)
    gm.fit(np.asarray(z, dtype=np.float64))
    chol = np.linalg.cholesky(gm.covariances_)
    info = {"n_fit": int(len(z)), "seed": int(seed), "reg_covar": float(reg_covar), "converged": bool(gm.converged_),
            "em_iterations": int(gm.n_iter_)}
    return LatentDensity(torch.from_numpy(gm.weights_), torch.from_numpy(gm.means_), torch.from_numpy(chol), info)


def select_mixture(z_fit: np.ndarray, z_held: np.ndarray, candidates: Sequence[int], seed: int = 0,
                   progress: Any = None) -> tuple[LatentDensity, list[dict[str, float]]]:
    """Fit one mixture per component count in `candidates` and keep the one with the highest mean
    held-out log-likelihood (nats per latent) on `z_held`. Returns it and one row per candidate."""
    rows, best, best_ll = [], None, -math.inf
    held = torch.from_numpy(np.asarray(z_held, dtype=np.float64))
    for k in candidates:
        density = fit_mixture(z_fit, int(k), seed=seed)
        ll = float(density.log_prob(held).mean())
        rows.append({"n_components": int(k), "heldout_loglik": ll})
        if progress is not None:
            progress(k, ll)
        if ll > best_ll:
            best, best_ll = density, ll
    assert best is not None
    info = {**best.info, "selection": rows, "heldout_loglik": best_ll, "n_heldout": int(len(z_held))}
    return LatentDensity(best.weights, best.means, best.cholesky, info), rows


def posterior_mixture(mu: np.ndarray, logvar: np.ndarray, info: Mapping[str, Any] | None = None,
                      conds: np.ndarray | None = None) -> LatentDensity:
    """The aggregate posterior of m molecules as a density: (1/m) sum_i N(mu_i, diag(exp(logvar_i))),
    from posterior means and log-variances (m, D); `conds` (m, C): each molecule's standardized conditions
    (a conditional model's), kept with its component."""
    mu_t = torch.from_numpy(np.asarray(mu, dtype=np.float64))
    scales = torch.from_numpy(np.exp(0.5 * np.asarray(logvar, dtype=np.float64)))
    weights = torch.full((len(mu_t),), 1.0 / len(mu_t), dtype=torch.float64)
    c = None if conds is None else torch.from_numpy(np.asarray(conds, dtype=np.float64))
    return LatentDensity(weights, mu_t, None, dict(info or {}), scales, c)
