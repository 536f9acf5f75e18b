"""KL-weight and learning-rate schedules, and active-unit counting.

Every schedule is a pure function of the global optimizer step, so resuming a run needs
no scheduler object: the step alone restores it. (The one exception, "plateau", keeps a
small JSON-able state that the loop saves with the checkpoint.)

Schedule names and ranges are checked once, by TrainConfig; these functions trust them.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "KL_SCHEDULES", "LR_SCHEDULES", "kl_weight", "lr_factor", "PlateauState", "active_units",
]

KL_SCHEDULES = ("constant", "linear", "sigmoid", "cyclical")
LR_SCHEDULES = ("constant", "cosine", "plateau")


def kl_weight(step: int, schedule: str, beta_start: float, beta_end: float, warmup_steps: int,
              total_steps: int, cycles: int = 4, cycle_ratio: float = 0.5) -> float:
    """The KL weight beta at optimizer step `step` (0-based).

    constant: beta_end throughout.
    linear:   beta_start -> beta_end linearly over `warmup_steps`, then beta_end.
    sigmoid:  logistic ramp from beta_start to beta_end centred at warmup_steps / 2, reaching
              within 0.7% of beta_end at warmup_steps (slope 10 / warmup_steps).
    cyclical: Fu et al. (2019): the run is split into `cycles` equal cycles; in each, beta
              rises linearly over the first `cycle_ratio` of the cycle, then stays at beta_end.
    """
    if schedule == "constant":
        return float(beta_end)
    span = beta_end - beta_start
    if schedule == "cyclical":
        period = max(1.0, total_steps / cycles)  # a run shorter than `cycles` steps: one step per cycle
        pos = (step % period) / period
        frac = min(1.0, pos / cycle_ratio) if cycle_ratio > 0 else 1.0
        return float(beta_start + span * frac)
    if warmup_steps <= 0:
        return float(beta_end)
    if schedule == "linear":
        return float(beta_start + span * min(1.0, step / warmup_steps))
    # sigmoid
    x = 10.0 * (step / warmup_steps - 0.5)
    return float(beta_start + span / (1.0 + math.exp(-x)))


def lr_factor(step: int, schedule: str, total_steps: int, warmup_steps: int = 0, min_factor: float = 0.01,
              plateau_factor: float = 1.0) -> float:
    """Multiplier of the base learning rate at optimizer step `step`.

    Linear warm-up over `warmup_steps` for every schedule. constant: 1. cosine: half-cosine
    from 1 to `min_factor` over the remaining steps. plateau: the factor kept by
    `PlateauState` (reduced when validation loss stalls).
    """
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    if schedule == "constant":
        return warm
    if schedule == "plateau":
        return warm * plateau_factor
    rest = max(1, total_steps - warmup_steps)
    t = min(1.0, max(0, step - warmup_steps) / rest)
    return warm * (min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * t)))


@dataclass
class PlateauState:
    """ReduceLROnPlateau in JSON-able form: multiply the lr by `factor` after `patience`
    epochs without a validation improvement larger than `threshold` (relative)."""

    factor: float = 0.5
    patience: int = 2
    threshold: float = 1e-3
    min_factor: float = 0.01
    current: float = 1.0
    best: float = math.inf
    bad_epochs: int = 0

    def update(self, val_loss: float) -> float:
        """Record an epoch's validation loss; returns the (possibly reduced) lr factor."""
        if val_loss < self.best * (1.0 - self.threshold):
            self.best, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                self.current = max(self.min_factor, self.current * self.factor)
                self.bad_epochs = 0
        return self.current

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["best"] = None if math.isinf(self.best) else self.best
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PlateauState":
        d = dict(d)
        d["best"] = math.inf if d.get("best") is None else d["best"]
        return cls(**d)


def active_units(mu: np.ndarray, threshold: float = 0.01) -> int:
    """Burda et al. (2016) active units: latent dims whose posterior mean varies across data,
    Cov_x(E_q(z|x)[z_u]) > threshold (0.01), estimated from mu (N, Z) over a data sample.

    A collapsed dimension has the same mean for every molecule (variance ~0) whatever its
    KL, so this counts the dims the decoder can actually use.
    """
    import numpy as np  # here, not at the top: TrainConfig imports this module and must stay light

    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[0] < 2:
        return 0
    return int((mu.var(axis=0) > threshold).sum())
