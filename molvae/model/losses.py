"""The VAE's loss terms that are not the decoder's cross-entropy: the KL of a diagonal Gaussian posterior to
N(0, I) and the property head's loss over sparse labels (`VAE.forward` adds them up; `molvae.analysis` scores
molecules with the KL)."""
from __future__ import annotations

import torch

__all__ = ["kl_divergence", "masked_property_loss"]


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per element, (B, Z), in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def masked_property_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Property loss of a batch, pred and target (B, P) standardized, target NaN where unlabelled: B times
    the mean squared error over the labelled cells (0 when none is labelled).

    With every cell labelled this is the sum over molecules of their mean over properties, so sparse and
    full labels give losses of one scale. Each process of a data-parallel run normalizes by its own shard's
    label count, so with sparse labels its update equals the single-process one in expectation only.
    """
    labelled = torch.isfinite(target)
    # torch.where, not a product with the mask: NaN * 0 is NaN, in the loss and in its gradient
    sq = torch.where(labelled, pred - torch.nan_to_num(target), torch.zeros_like(pred)).pow(2)
    return sq.sum() * (pred.size(0) / labelled.sum().clamp(min=1))
