"""`LatentPrior`: the distribution a `MolVAE` draws latents from when it samples, held by the model.

Names, one meaning each: the *density* is the learned latent density, plain arrays fitted to the posteriors
of training molecules (`molvae.model.density.LatentDensity`, made by `molvae.generation.density_fit`); the
*latent prior* is what sampling draws from, that density ("density") or N(0, I) ("standard"); the *steered
prior* (`molvae.generation.steered_prior.SteeredPrior`) is the latent prior reweighted toward a property
window for `sample(where=...)`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from molvae import arguments
from molvae.errors import UsageError
from molvae.model.density import LatentDensity

__all__ = ["LatentPrior", "PRIORS"]

PRIORS = ("density", "standard")


class LatentPrior:
    """The learned latent density `density` (None for a model without one) and N(0, I) in `latent_dim`
    dimensions; `choose` says which one a sampling call uses."""

    def __init__(self, latent_dim: int, density: LatentDensity | None = None):
        self.latent_dim = int(latent_dim)
        self.density = density

    @property
    def kind(self) -> str:
        """The learned density's kind ("posterior-mixture", "gaussian-mixture"), or "standard-normal"."""
        return self.density.kind if self.density is not None else "standard-normal"

    def choose(self, prior: str | None, model: str | None = None, path: Any = None) -> str:
        """The prior a call samples from: `prior` checked, or by default "density" when there is one, else
        "standard". UsageError for "density" without one; `model` and `path` name the model in that message."""
        if prior is None:
            return "density" if self.density is not None else "standard"
        arguments.choice(prior, "prior", PRIORS)
        if prior == "density" and self.density is None:
            raise UsageError(f"model {model or ''} has no latent density: fit one with `molvae density "
                             f"{path or 'MODEL'}` (or MolVAE.fit_density), or sample with prior='standard'")
        return prior

    def draw(self, n: int, generator: torch.Generator, prior: str = "density") -> torch.Tensor:
        """n latents (n, latent_dim) float32 on CPU from the learned density or N(0, I) ("standard")."""
        if prior == "density":
            return self.density.sample(n, generator)
        return torch.randn(n, self.latent_dim, generator=generator)

    def draw_with_conds(self, n: int, generator: torch.Generator,
                        prior: str = "density") -> tuple[torch.Tensor, torch.Tensor | None]:
        """`draw`'s latents (the same ones for the same generator state) with the conditions c (n, C) stored
        with each draw's density component (a conditional model's posterior mixture), else None: the
        decoder then takes c from the property head's prediction at z."""
        if prior == "density":
            return self.density.sample_with_conds(n, generator)
        return torch.randn(n, self.latent_dim, generator=generator), None

    def log_density(self, z: torch.Tensor) -> np.ndarray:
        """Log-density (n,) float64, nats, of CPU latents z (n, latent_dim) under the learned density, or
        under N(0, I) without one."""
        zt = z.double()
        with torch.no_grad():
            if self.density is not None:
                return self.density.log_prob(zt).numpy()
            return (-0.5 * (zt * zt).sum(1) - 0.5 * self.latent_dim * np.log(2 * np.pi)).numpy()
