"""The Fréchet ChemNet Distance: ChemNet activation moments of a molecule set, and the Fréchet
distance of two Gaussians.

ChemNet (weights and network) comes from the `fcd` package (1.2.x; the weights ship in its wheel).
The SMILES featurization is ours: it reproduces `fcd_torch` (what MOSES 0.3.1 uses) token for
token, because the two packages differ and ChemNet's last LSTM state depends on it:

* `fcd_torch` reads a symbol as two characters when the second one is ``r``, ``i`` or ``l``
  (``Br``, ``Cl``, ``Si``); anything outside ChemNet's 35-symbol vocabulary becomes ``X``;
* it stops at the first ``.`` (only the first fragment of a multi-fragment SMILES is read) and
  truncates to 349 symbols, then writes the ``.`` end token;
* it pads every molecule to 350 positions and scales the one-hot rows by 1/35.

The caller canonicalizes first (`fcd_torch` does it inside; `fcd` does not).
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

__all__ = ["CHEMNET_VOCAB", "CHEMNET_PAD_LEN", "chemnet_token_ids", "chemnet_moments", "frechet_distance"]

CHEMNET_VOCAB: tuple[str, ...] = (
    "C", "N", "O", "H", "F", "Cl", "P", "B", "Br", "S", "I", "Si", "#", "(", ")", "+", "-", "1",
    "2", "3", "4", "5", "6", "7", "8", "=", "[", "]", "@", "c", "n", "o", "s", "X", ".",
)
CHEMNET_PAD_LEN = 350
_C2I = {s: i for i, s in enumerate(CHEMNET_VOCAB)}
_UNK, _END = _C2I["X"], _C2I["."]
_ACT_DIM = 512


def chemnet_token_ids(smiles: str, pad_len: int = CHEMNET_PAD_LEN) -> list[int]:
    """ChemNet vocabulary indices of `smiles`, end token included (length <= `pad_len`),
    exactly as `fcd_torch.utils.get_one_hot` places its ones."""
    if not smiles:
        return [_END]
    s = smiles + "."
    ids: list[int] = []
    src = 0
    while True:
        if s[src + 1] in "ril":
            sym, src = s[src:src + 2], src + 2
        else:
            sym, src = s[src], src + 1
        ids.append(_C2I.get(sym, _UNK))
        if s[src] == "." or len(ids) == pad_len - 1:
            ids.append(_END)
            return ids


def _one_hot(batch: Sequence[str], torch):  # torch passed in: imported lazily
    """(B, 35, 350) float32 input for ChemNet: one-hot / 35, zero padding."""
    x = torch.zeros(len(batch), CHEMNET_PAD_LEN, len(CHEMNET_VOCAB))
    rows, cols, vals = [], [], []
    for b, smi in enumerate(batch):
        ids = chemnet_token_ids(smi)
        rows.extend([b] * len(ids))
        cols.extend(range(len(ids)))
        vals.extend(ids)
    x[torch.tensor(rows), torch.tensor(cols), torch.tensor(vals)] = 1.0 / len(CHEMNET_VOCAB)
    return x.transpose(1, 2)


def _chemnet():
    import fcd

    with warnings.catch_warnings():  # fcd unpacks its weights through a TemporaryDirectory
        warnings.simplefilter("ignore")
        return fcd.load_ref_model()


def chemnet_moments(smiles: Sequence[str], weights: Sequence[float] | None = None, batch_size: int = 512,
                    device: str = "cpu") -> tuple[np.ndarray, np.ndarray, float]:
    """Weighted mean (512,) and covariance (512, 512) of ChemNet's penultimate activations.

    `weights` are frequencies (a molecule listed once with weight 3 counts as three copies, as
    `np.cov(fweights=...)`); the covariance is the unbiased one MOSES uses (divides by N - 1).
    Activations are reduced batch by batch in float64, so memory stays O(batch). Returns
    (mu, sigma, N). Raises ValueError if N < 2.
    """
    import torch

    w = np.ones(len(smiles)) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    if len(smiles) != len(w):
        raise ValueError("smiles and weights differ in length")
    if total < 2:
        raise ValueError(f"needs at least 2 molecules, got {total:g}")
    model = _chemnet()
    s1 = np.zeros(_ACT_DIM)
    s2 = np.zeros((_ACT_DIM, _ACT_DIM))
    model.to(device)
    try:
        with torch.no_grad():
            for start in range(0, len(smiles), batch_size):
                act = model(_one_hot(smiles[start:start + batch_size], torch).to(device)).cpu().numpy()
                act = act.astype(np.float64)
                wb = w[start:start + batch_size]
                s1 += wb @ act
                s2 += (act * wb[:, None]).T @ act
    finally:
        model.to("cpu")
    mu = s1 / total
    sigma = (s2 - total * np.outer(mu, mu)) / (total - 1.0)
    return mu, (sigma + sigma.T) / 2.0, total


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance of two Gaussians, ``|mu1-mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr(sqrt(S1 S2))``.

    Same value as `fcd.calculate_frechet_distance` (agreement to ~1e-12 relative is tested), but
    Tr(sqrt(S1 S2)) is taken as the sum of square roots of the eigenvalues of the symmetric
    sqrt(S1) S2 sqrt(S1) (two `eigh` of 512 x 512) instead of a general matrix square root, which
    is about ten times faster and never produces a complex result.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError("the two Gaussians differ in dimension")
    w, v = np.linalg.eigh(sigma1)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    inner = root1 @ sigma2 @ root1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2.0), 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)
