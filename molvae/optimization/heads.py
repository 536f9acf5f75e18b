"""A property head that knows where it is wrong: a small ensemble of MLPs fitted post hoc on posterior
samples z ~ q(z|x) of training molecules, with RDKit targets.

Why: the model's own head is trained on posterior means only, so its gradients away from the means are
unconstrained, and it has no uncertainty. Members differ by initialization, bootstrap resample and
posterior draws; where they disagree (std of the predicted score across members) the gradient search can
be penalized (`gradient_search(uncertainty_weight=...)`).

`fit_heads(vae, smiles)` -> `HeadEnsemble`; `.save(directory)` writes `heads.safetensors` (plain arrays)
and `heads.json` (properties, sizes, how it was fitted); `HeadEnsemble.load(directory)`. The members
predict the model head's properties, standardized with the model's own (mean, std), so that every
`Scorer` built for the model reads them unchanged. Only RDKit-computable properties can be fitted.
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from molvae import arguments, chem
from molvae.errors import CheckpointError, DataError, UsageError

__all__ = ["HeadEnsemble", "fit_heads", "HEADS_FILE", "HEADS_INFO_FILE"]

HEADS_FILE = "heads.safetensors"
HEADS_INFO_FILE = "heads.json"


@dataclass(frozen=True)
class HeadEnsemble:
    """M two-layer MLPs z (D,) -> standardized properties (P,): w1 (M, D, H), b1 (M, H), w2 (M, H, P),
    b2 (M, P); `names` the properties in the model head's order; `info` how it was fitted."""

    w1: torch.Tensor
    b1: torch.Tensor
    w2: torch.Tensor
    b2: torch.Tensor
    names: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_members(self) -> int:
        return int(self.w1.shape[0])

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        """Standardized predictions (M, n, P) for z (n, D); differentiable in z."""
        h = torch.nn.functional.silu(torch.einsum("nd,mdh->mnh", z, self.w1.to(z)) + self.b1.to(z)[:, None])
        return torch.einsum("mnh,mhp->mnp", h, self.w2.to(z)) + self.b2.to(z)[:, None]

    def save(self, directory: str | Path) -> None:
        """Write heads.safetensors and heads.json into `directory` (created if needed), atomically."""
        from safetensors.torch import save as st_save

        from molvae.files import atomic_write_bytes, atomic_write_text

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {k: getattr(self, k).float().contiguous() for k in ("w1", "b1", "w2", "b2")}
        atomic_write_bytes(directory / HEADS_FILE, st_save(arrays, metadata={"format": "molvae-heads"}))
        meta = {**self.info, "names": list(self.names), "n_members": self.n_members}
        atomic_write_text(directory / HEADS_INFO_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> HeadEnsemble:
        """The ensemble stored in `directory`; CheckpointError when absent or unreadable."""
        from safetensors import SafetensorError
        from safetensors.torch import load as st_load

        path = Path(directory) / HEADS_FILE
        if not path.is_file():
            raise CheckpointError(f"no head ensemble in {directory} (expected {HEADS_FILE}); fit one with "
                                  "molvae.optimization.heads.fit_heads")
        try:
            arrays = st_load(path.read_bytes())
            meta = json.loads((Path(directory) / HEADS_INFO_FILE).read_text())
            ens = cls(arrays["w1"], arrays["b1"], arrays["w2"], arrays["b2"], tuple(meta["names"]), meta)
        except (SafetensorError, KeyError, ValueError, OSError) as exc:
            raise CheckpointError(f"{path}: unreadable head ensemble ({exc})") from exc
        m, d, h = ens.w1.shape
        if ens.b1.shape != (m, h) or ens.w2.shape[:2] != (m, h) or ens.b2.shape != (m, ens.w2.shape[2]) \
                or len(ens.names) != ens.w2.shape[2]:
            raise CheckpointError(f"{path}: inconsistent head ensemble shapes")
        return ens

    def check(self, vae: Any) -> None:
        """UsageError unless this ensemble predicts `vae`'s head properties in the same order and latent size."""
        names = tuple(chem.name_key(n) for n in vae.prop_stats)
        if names != tuple(chem.name_key(n) for n in self.names) or self.w1.shape[1] != vae.latent_dim:
            raise UsageError(f"this head ensemble predicts {', '.join(self.names)} from {self.w1.shape[1]}-dim "
                             f"latents; the model's head predicts {', '.join(vae.prop_stats)} from "
                             f"{vae.latent_dim}: fit one for this model")


def fit_heads(vae: Any, smiles: Sequence[str], n_members: int = 5, hidden: int = 128, epochs: int = 30,
              draws: int = 4, seed: int = 0) -> HeadEnsemble:
    """Fit `n_members` MLPs on `draws` posterior samples per molecule of `smiles` (the model's training
    molecules), RDKit targets standardized with the model's (mean, std); each member sees its own
    bootstrap resample of the molecules. Adam, batch 512, `epochs` passes. Raises UsageError when the
    model's head predicts a property RDKit cannot compute, DataError with fewer than 100 usable molecules."""
    n_members, hidden = arguments.positive_int(n_members, "n_members"), arguments.positive_int(hidden, "hidden")
    epochs, draws = arguments.positive_int(epochs, "epochs"), arguments.positive_int(draws, "draws")
    names = tuple(vae.prop_stats)
    missing = [n for n in names if chem.name_key(n) not in chem.PROPERTY_NAMES]
    if missing:
        raise UsageError(f"a head ensemble needs RDKit targets; RDKit cannot compute {', '.join(missing)}")
    from molvae.generation.inputs import encode_batched, encode_inputs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rows the vocabulary cannot spell are left out
        enc = encode_inputs(list(smiles), vae.tokenizer, vae.vocab, "skip")
    if not enc.ids:
        raise DataError("none of the molecules could be encoded; a head ensemble needs 100")
    mu, logvar = encode_batched(vae.model, enc.ids, 1024, vae.precision)
    kept = [smiles[r] for r in enc.rows]
    values = chem.properties(kept, [chem.name_key(n) for n in names])
    y = np.stack([(values[chem.name_key(n)].to_numpy() - m) / (s if s > 0 else 1.0)
                  for n, (m, s) in vae.prop_stats.items()], axis=1)
    good = np.isfinite(y).all(1)
    if good.sum() < 100:
        raise DataError(f"only {int(good.sum())} molecules could be encoded and scored; a head ensemble needs 100")
    mu_t = torch.from_numpy(mu[good]).float()
    sd_t = torch.from_numpy(np.exp(0.5 * logvar[good])).float()
    y_t = torch.from_numpy(y[good]).float()
    n, d, p = len(y_t), mu_t.shape[1], y_t.shape[1]
    gen = torch.Generator().manual_seed(int(seed))
    w1 = (torch.randn(n_members, d, hidden, generator=gen) / d ** 0.5).requires_grad_(True)
    b1 = torch.zeros(n_members, hidden, requires_grad=True)
    w2 = (torch.randn(n_members, hidden, p, generator=gen) / hidden ** 0.5).requires_grad_(True)
    b2 = torch.zeros(n_members, p, requires_grad=True)
    opt = torch.optim.Adam([w1, b1, w2, b2], lr=2e-3)
    boot = torch.randint(0, n, (n_members, n * draws), generator=gen)  # each member's resample, draws x
    batch = 512
    for _ in range(epochs):
        order = torch.randperm(n * draws, generator=gen)
        for start in range(0, n * draws, batch):
            idx = boot[:, order[start:start + batch]]  # (M, B) molecule indices per member
            z = mu_t[idx] + sd_t[idx] * torch.randn(idx.shape + (d,), generator=gen)  # (M, B, D)
            h = torch.nn.functional.silu(torch.einsum("mbd,mdh->mbh", z, w1) + b1[:, None])
            pred = torch.einsum("mbh,mhp->mbp", h, w2) + b2[:, None]
            loss = (pred - y_t[idx]).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    info = {"n_molecules": int(n), "draws": int(draws), "epochs": int(epochs), "hidden": int(hidden),
            "seed": int(seed), "final_train_mse": float(loss.detach()), "targets": "RDKit, standardized with the "
            "model's property (mean, std)", "inputs": "posterior samples z ~ q(z|x)"}
    return HeadEnsemble(w1.detach(), b1.detach(), w2.detach(), b2.detach(), names, info)
