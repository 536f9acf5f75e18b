"""The decoder's likelihood of each start molecule at a latent: where the decoder still "means" the start.

Why (docs/optimization.md, "Where the decodes go"): near the posterior mean of the lowest-plogp MOSES
molecules, a decoded molecule is either the start itself or, more often, a molecule below the similarity
floor; the posterior mean is a poor latent for these molecules (greedy decoding at the mean often returns
the start itself or a molecule below the floor; that section gives the shares). The teacher-forced negative
log-likelihood of the start's own token sequence, -log p_T(x_start | z) at the decoding temperature T,
is a calibrated measure of that: exp(-nll) is the probability that sampling at z returns the start
itself, and decodes at latents with nll of a few nats are different from the start but close to it.

No molecule is decoded here: the start's tokens are scored by the decoder (teacher forcing), as the
encoder is run on them. The budget of decoded molecules is untouched.

`StartLikelihood.refine` climbs log p(x_start | z) from the posterior mean (the latent that reconstructs
the start, z*); `StartLikelihood.nll` scores latents; `nearest_to_target` picks, per start, the latents
whose nll is nearest a target.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from molvae.model.inference import autocast

__all__ = ["StartLikelihood", "nearest_to_target"]

_BATCH = 2048


class StartLikelihood:
    """Token sequences of the start molecules (ids (S, L) long, BOS..EOS then PAD; lengths (S,) with BOS
    and EOS) and the model that scores them. `vae`: a `MolVAE`."""

    def __init__(self, vae: Any, smiles: Sequence[str]):
        from molvae.generation.inputs import encode_inputs, pad_sequences

        enc = encode_inputs(list(smiles), vae.tokenizer, vae.vocab, "error")
        net = vae.model
        self.vae, self.net = vae, net
        self.ids, self.lengths = pad_sequences(enc.ids, net.cfg.pad_id)
        # Tokens sampling never produces (PAD, BOS, <unk>): excluded from the softmax as in decoding.
        self.mask = torch.zeros(net.cfg.vocab_size)
        self.mask[[net.cfg.pad_id, net.cfg.bos_id, vae.vocab.unk_id]] = float("-inf")

    @property
    def n_starts(self) -> int:
        return int(self.ids.size(0))

    def _nll(self, z: torch.Tensor, group: torch.Tensor, temperature: float) -> torch.Tensor:
        """-log p_T(x_start | z) (n,) nats for latents z (n, D) of starts `group` (n,); differentiable."""
        lengths = self.lengths[group]
        steps = int(lengths.max()) - 1
        ids = self.ids[group, :steps + 1].to(z.device)
        # A conditional model reads the conditions the head predicts at z, as decoding a bare latent does.
        c = self.vae.codec.head_conditions_differentiable(z) if self.vae.is_conditional else None
        with autocast(z.device, self.vae.precision):
            logits = self.net.decode_logits(ids[:, :-1], z, lengths - 1, c).float()
        logp = torch.log_softmax(logits / temperature + self.mask.to(z.device), dim=-1)
        tok = logp.gather(-1, ids[:, 1:, None])[..., 0]
        real = torch.arange(steps, device=z.device)[None] < (lengths - 1).to(z.device)[:, None]
        return -torch.where(real, tok, torch.zeros_like(tok)).sum(1)  # PAD after EOS has log-prob -inf

    @torch.no_grad()
    def nll(self, z: torch.Tensor, group: np.ndarray, temperature: float = 1.0) -> np.ndarray:
        """-log p_T(x_start | z) (n,) float64 nats: z (n, D) latents, group (n,) start of each row; T the
        softmax temperature of sampling (exp(-nll) is then the chance that sampling returns the start)."""
        g = torch.as_tensor(np.asarray(group), dtype=torch.long)
        was = self.net.training
        self.net.eval()
        try:
            parts = [self._nll(z[i:i + _BATCH].to(self.vae.device).float(), g[i:i + _BATCH], temperature).cpu()
                     for i in range(0, z.size(0), _BATCH)]
        finally:
            self.net.train(was)
        return torch.cat(parts).double().numpy() if parts else np.zeros(0)

    def refine(self, center: torch.Tensor, sigma: torch.Tensor, steps: int, lr: float = 0.1) -> torch.Tensor:
        """z* (S, D): `steps` Adam steps of `lr` posterior stds per coordinate on -log p(x_start | z) from
        each start's posterior mean `center` (S, D), in the whitened coordinates (z - center) / sigma."""
        dev = self.vae.device
        center, sigma = center.to(dev).float(), sigma.to(dev).float()
        if steps <= 0:
            return center.clone()
        u = torch.zeros_like(center, requires_grad=True)
        opt = torch.optim.Adam([u], lr=lr)
        group = torch.arange(self.n_starts)
        was = self.net.training
        self.net.eval()
        frozen = [p for p in self.net.parameters() if p.requires_grad]
        for p in frozen:  # only u gets gradients; the model is left as it was
            p.requires_grad_(False)
        try:
            with torch.enable_grad():
                for _ in range(steps):
                    opt.zero_grad()
                    loss = sum(self._nll(center[i:i + _BATCH] + sigma[i:i + _BATCH] * u[i:i + _BATCH],
                                         group[i:i + _BATCH], 1.0).sum() for i in range(0, self.n_starts, _BATCH))
                    loss.backward()
                    opt.step()
        finally:
            for p in frozen:
                p.requires_grad_(True)
            self.net.train(was)
        return (center + sigma * u).detach()


def nearest_to_target(nll: np.ndarray, group: np.ndarray, k: int, target: float) -> np.ndarray:
    """Positions (sorted) of at most `k` rows per start `group` (n,) whose nll (n,) is nearest `target`
    nats on a log scale (a decode at nll 1 is the start a third of the time, at nll 8 rarely similar:
    ratios, not differences, compare alike). Ties go to the earlier row."""
    dist = np.abs(np.log(np.maximum(nll, 1e-6)) - math.log(target))
    order = np.lexsort((np.arange(len(nll)), dist, group))  # by start, then distance, then position
    g = group[order]
    first = np.searchsorted(g, g, side="left")  # rank within its start = position - first of that start
    rank = np.arange(len(order)) - first
    return np.sort(order[rank < k])
