"""Where `MolVAE.sample(where=...)` draws its latents: the learned density steered by the property head
toward a property window (`molvae.generation.conditions` parses the condition;
`molvae.generation.conditional_sampling` runs the rounds and verifies every molecule with RDKit). The steered prior is the model's latent prior
(`molvae.generation.prior.LatentPrior`) reweighted; it changes neither that prior nor the density.

The shipped density is a mixture of the posteriors of training molecules. The head predicts each
component's properties y_k at its mean (accurate there); what matters is the molecule actually decoded
from a latent near that mean, whose RDKit value regresses toward the training mean mu:
value ~ mu + b (y_k - mu) + N(0, s^2), with b < 1 (docs/scoring.md gives b and s for logP with the shipped
model). `Calibration` fits b and s, round by round, to the RDKit values of the molecules
decoded so far. The fit is anchored at mu (one slope, no free intercept): steered draws come from a narrow
band of components far from mu, where a free line's slope is not identified (a pilot with a free intercept
fitted a slope near 0, which flattened the weights and sent the next round's hit rate down).

Each component is weighted by P_k = P(every steered value in its window) under that calibration, raised
to `SHARPEN` (every molecule is verified anyway, so the surest components are favoured). Draws are shrunk
toward the component means (`SHRINK` times the posterior scale: fewer decodes drift out of the window). A
component's j-th use in a run is weighted by `DECAY`^j (at most `SLOTS` uses per round), since repeated
use of one component mostly repeats its molecule; a component whose decode repeats a molecule already seen
in the run is charged `REPEAT_COST` further uses (weight x DECAY^REPEAT_COST), which is what keeps hits
unique where few components fit a window.

With another prior (N(0, I), a fitted Gaussian mixture) the head is applied to prior draws directly and a
subset of a pool is resampled by P (importance resampling); the head is far less accurate away from
posterior means, so expect lower hit rates there.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from molvae.generation.codec import MoleculeCodec
    from molvae.generation.conditions import Window
    from molvae.generation.prior import LatentPrior

__all__ = ["Calibration", "SteeredPrior", "window_probability", "pick_slots"]

# Chosen with the shipped model on 3.6 <= logP <= 5 (docs/scoring.md has the figures): every setting traded
# the share of decodes in the window against uniqueness along one curve; these sit where both stay high, and
# shrinking below the posterior itself raised the share at no cost in uniqueness.
SHARPEN = 32.0
SHRINK = 0.5
SLOTS = 4
DECAY = 0.5
REPEAT_COST = 4
POOL = 16  # prior draws per decoded latent in the importance-resampling pool (priors other than the mixture)
_MIN_SIGMA = 0.05  # of the property's training std: decoding is never trusted more than this
_MIN_FIT = 30  # valid decodes before the slope is fitted


def window_probability(pred: np.ndarray, windows: Sequence[Window], sigma: np.ndarray) -> np.ndarray:
    """P(every steered property in its window) (n,) under value ~ N(pred, sigma^2) per column, pred (n, S)."""
    from scipy.stats import norm

    p = np.ones(len(pred))
    for j, w in enumerate(windows):
        p *= norm.cdf((w.hi - pred[:, j]) / sigma[j]) - norm.cdf((w.lo - pred[:, j]) / sigma[j])
    return p


class Calibration:
    """What a head prediction y (at the latent drawn from) means for the molecule decoded there, per steered
    property: value ~ mean + slope (y - mean) + N(0, sigma^2), anchored at the training mean `mean` (S,).
    Until `_MIN_FIT` valid decodes are measured: slope 1 and sigma 0.3 training standard deviations."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean, self.std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
        self.slope, self.sigma = np.ones(len(self.std)), 0.3 * self.std
        self._x: list[list[float]] = [[] for _ in self.std]
        self._y: list[list[float]] = [[] for _ in self.std]

    def __call__(self, pred: np.ndarray) -> np.ndarray:
        """Expected decoded values (n, S) for head predictions pred (n, S)."""
        return self.mean + self.slope * (pred - self.mean)

    def update(self, j: int, pred: np.ndarray, value: np.ndarray) -> None:
        """Add (prediction, RDKit value) pairs of property j and refit its slope (least squares through the
        anchor) and sigma (root mean square residual)."""
        self._x[j].extend(pred.tolist())
        self._y[j].extend(value.tolist())
        x, y = np.asarray(self._x[j]) - self.mean[j], np.asarray(self._y[j]) - self.mean[j]
        if len(x) >= _MIN_FIT and float(x @ x) > 0:
            self.slope[j] = float(x @ y) / float(x @ x)
            self.sigma[j] = max(float(np.sqrt(np.mean((y - self.slope[j] * x) ** 2))), _MIN_SIGMA * self.std[j])


def pick_slots(weights: np.ndarray, uses: np.ndarray, m: int, rng: np.random.Generator, slots: int = SLOTS,
               decay: float = DECAY) -> np.ndarray:
    """m component indices (m,), each at most `slots` times: component k's j-th use in the run (j counted
    from `uses[k]`, its uses so far) has weight weights[k] * decay^j; the m largest of
    log(weight) + Gumbel noise are taken (sampling without replacement over the slots)."""
    slots = max(slots, -(-m // max(int(np.count_nonzero(weights > 0)), 1)))  # enough slots for m draws
    j = uses[:, None] + np.arange(slots)[None, :]
    w = (weights[:, None] * decay ** j).ravel()
    if not np.any(w > 0):
        w = np.ones_like(w)
    keys = np.log(np.maximum(w, 1e-300)) + rng.gumbel(size=len(w))
    return np.argpartition(-keys, m - 1)[:m] // slots


class SteeredPrior:
    """Latent draws steered toward `windows` (the ones the head predicts), refined round by round with
    `observe`. For a posterior-mixture density: reweighted, shrunk components (module docstring);
    otherwise importance resampling of a pool of prior draws."""

    def __init__(self, codec: MoleculeCodec, latent_prior: LatentPrior, windows: Sequence[Window], prior: str):
        self.codec, self.latent_prior, self.windows, self.prior = codec, latent_prior, list(windows), prior
        names = [w.name for w in self.windows]
        stats = codec.prop_stats
        self.calibration = Calibration([stats[n][0] for n in names], [stats[n][1] for n in names])
        density = latent_prior.density if prior == "density" else None
        self.mixture = density is not None and density.scales is not None
        # A posterior mixture's components are training molecules: the head predicts well at their means
        self.components = codec.head_values(density.means.float(), names) if self.mixture else None
        self.uses = np.zeros(density.n_components if self.mixture else 0)
        self._last = np.zeros(0, dtype=np.int64)  # the components of the latest draws

    def draw(self, m: int, gen: torch.Generator, rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray]:
        """m latents (m, Z) float32 on CPU and the head prediction each is calibrated with (m, S)."""
        names = [w.name for w in self.windows]
        cal = self.calibration
        if not self.mixture:
            pool = self.latent_prior.draw(m * POOL, gen, self.prior)
            pred = self.codec.head_values(pool, names)
            keys = np.log(np.maximum(window_probability(cal(pred), self.windows, cal.sigma), 1e-300))
            pick = np.sort(np.argpartition(-(keys + rng.gumbel(size=len(keys))), m - 1)[:m])
            return pool[torch.from_numpy(pick)], pred[pick]
        density = self.latent_prior.density
        p = window_probability(cal(self.components), self.windows, cal.sigma)
        k = pick_slots(density.weights.double().cpu().numpy() * p ** SHARPEN, self.uses, m, rng)
        np.add.at(self.uses, k, 1)
        self._last = k
        kt = torch.from_numpy(k)
        eps = torch.randn(m, density.dim, generator=gen, dtype=torch.float64)
        z = density.means.double().cpu()[kt] + SHRINK * density.scales.double().cpu()[kt] * eps
        return z.float(), self.components[k]

    def observe(self, pred: np.ndarray, values: dict[str, np.ndarray], valid: np.ndarray,
                repeated: np.ndarray | None = None) -> None:
        """Refit the calibration with the RDKit values (name -> (m,)) of the valid molecules decoded from
        the latest draws, whose head predictions were `pred` (m, S); properties RDKit does not compute are
        skipped. repeated (m,) bool: decodes that repeat a molecule seen before; their components are damped."""
        if repeated is not None and self.mixture and len(self._last) == len(repeated):
            np.add.at(self.uses, self._last[repeated], REPEAT_COST)
        for j, w in enumerate(self.windows):
            if w.name in values and valid.any():
                self.calibration.update(j, pred[valid, j], values[w.name][valid])

    def summary(self) -> dict[str, dict[str, float]]:
        """The fitted calibration per steered property: {name: {slope, sigma}}."""
        cal = self.calibration
        return {w.name: {"slope": float(cal.slope[j]), "sigma": float(cal.sigma[j])} for j, w in enumerate(self.windows)}
