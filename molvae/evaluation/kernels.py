"""Numeric kernels behind `molvae.evaluation.moses`: blockwise Tanimoto reductions over packed bit
fingerprints (SNN, IntDiv, GuacaMol internal similarity) and GuacaMol's KL divergences.

Fingerprints travel as packed bits (``np.packbits``: 128 bytes for 1024 bits), so 176k reference
molecules take 22 MB. The similarity matrix is never materialized: blocks of at most
``block[0] x block[1]`` pairs are computed with one matmul of 0/1 matrices (the intersection
counts), reduced, and discarded; the work buffers are allocated once (fresh large tensors per block
cost more in page faults than the arithmetic).

Exactness: intersection counts are integers no larger than the smaller popcount. bfloat16 holds
integers up to 256 exactly and the CPU matmul accumulates in float32, so counts are exact in
bfloat16 when every popcount is <= 256 (float16 on CUDA: <= 2048); otherwise float32 is used.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

__all__ = ["popcount", "tanimoto_reduce", "continuous_kldiv", "discrete_kldiv", "kl_divergences"]

_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.int32)


def popcount(packed: np.ndarray) -> np.ndarray:
    """Number of set bits per row of a packed (n, n_bytes) uint8 array -> (n,) int32."""
    out = np.zeros(len(packed), dtype=np.int32)
    for start in range(0, len(packed), 65536):  # bounded temporaries
        out[start:start + 65536] = _POP8[packed[start:start + 65536]].sum(axis=1)
    return out


def _matmul_dtype(max_count: int, device: str):
    import torch

    if device.startswith("cuda"):
        return torch.float16 if max_count <= 2048 else torch.float32
    fast_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or \
        getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    return torch.bfloat16 if fast_bf16 and max_count <= 256 else torch.float32


def tanimoto_reduce(query: np.ndarray, stock: np.ndarray, *, agg: str = "max", p: float = 1.0,
                    stock_weights: np.ndarray | None = None, exclude_self: bool = False, device: str = "cpu",
                    block: tuple[int, int] = (2048, 8192)) -> np.ndarray:
    """Reduce the Tanimoto matrix T (n_query, n_stock) of packed bit fingerprints row by row.

    agg="max": max_j T_ij (with `exclude_self`, `query` is `stock` and j = i is skipped; rows with
    no other molecule get 0). agg="mean": sum_j w_j T_ij^p / sum_j w_j, weights `stock_weights`
    (default 1). As in MOSES, T = 1 for two empty fingerprints. Returns (n_query,) float64.
    """
    import torch

    if agg not in ("max", "mean"):
        raise ValueError("agg must be 'max' or 'mean'")
    nq, ns = len(query), len(stock)
    acc = np.zeros(nq, dtype=np.float64)
    if nq == 0 or ns == 0:
        return acc
    q_count, s_count = popcount(query), popcount(stock)
    dtype = _matmul_dtype(int(max(q_count.max(), s_count.max())), device)
    empty_rows = bool((q_count == 0).any() and (s_count == 0).any())  # 0/0 pairs exist
    qx = torch.from_numpy(np.unpackbits(query, axis=1)).to(device=device, dtype=dtype)
    qc = torch.from_numpy(q_count.astype(np.float32)).to(device)
    sc_all = torch.from_numpy(s_count.astype(np.float32)).to(device)
    w_all = None
    if agg == "mean":
        w = np.ones(ns) if stock_weights is None else np.asarray(stock_weights, dtype=np.float64)
        w_all = torch.from_numpy((w / w.sum()).astype(np.float32)).to(device)
    bq, bs = min(block[0], nq), min(block[1], ns)
    mm_buf = torch.empty(bq * bs, dtype=dtype, device=device)
    t_buf = torch.empty(bq * bs, dtype=torch.float32, device=device)
    d_buf = torch.empty(bq * bs, dtype=torch.float32, device=device)
    acc_t = torch.zeros(nq, dtype=torch.float64, device=device)
    for j0 in range(0, ns, bs):
        sx = torch.from_numpy(np.unpackbits(stock[j0:j0 + bs], axis=1)).to(device=device, dtype=dtype)
        sc = sc_all[j0:j0 + len(sx)]
        for i0 in range(0, nq, bq):
            m, n = min(bq, nq - i0), len(sx)
            inter = mm_buf[:m * n].view(m, n)
            torch.mm(qx[i0:i0 + m], sx.T, out=inter)
            t = t_buf[:m * n].view(m, n)
            t.copy_(inter)
            d = d_buf[:m * n].view(m, n)
            torch.add(qc[i0:i0 + m, None], sc[None, :], out=d)
            d.sub_(t)
            t.div_(d)
            if empty_rows:
                torch.nan_to_num_(t, nan=1.0)
            if agg == "max":
                if exclude_self:
                    lo, hi = max(i0, j0), min(i0 + m, j0 + n)
                    if lo < hi:
                        idx = torch.arange(lo, hi, device=device)
                        t[idx - i0, idx - j0] = -1.0
                acc_t[i0:i0 + m] = torch.maximum(acc_t[i0:i0 + m], t.amax(dim=1).double())
            else:
                if p != 1:
                    t.pow_(p)
                acc_t[i0:i0 + m] += (t @ w_all[j0:j0 + n]).double()
    return acc_t.cpu().numpy()


# --------------------------------------------------------------------------- GuacaMol KL


def continuous_kldiv(baseline: np.ndarray, sampled: np.ndarray) -> float:
    """GuacaMol `continuous_kldiv`: KL(P || Q) of Gaussian KDEs evaluated on 1000 points spanning
    both samples (+1e-10). Raises `np.linalg.LinAlgError` for a constant sample."""
    from scipy.stats import entropy, gaussian_kde

    both = np.hstack([baseline, sampled])
    x = np.linspace(both.min(), both.max(), num=1000)
    return float(entropy(gaussian_kde(baseline)(x) + 1e-10, gaussian_kde(sampled)(x) + 1e-10))


def discrete_kldiv(baseline: np.ndarray, sampled: np.ndarray) -> float:
    """GuacaMol `discrete_kldiv`: KL of 10-bin density histograms on the baseline's bins (+1e-10).
    Where no sampled value falls in those bins, GuacaMol divides 0 by 0 (NaN); here Q is then
    1e-10 everywhere, unnormalized, giving KL = sum P log(P / 1e-10), about 23 (score ~1e-10)."""
    from scipy.stats import entropy

    p, bins = np.histogram(baseline, bins=10, density=True)
    counts, _ = np.histogram(sampled, bins=bins)
    if counts.sum() == 0:
        pn = (p + 1e-10) / (p + 1e-10).sum()
        return float(np.sum(pn * np.log(pn / 1e-10)))
    return float(entropy(p + 1e-10, counts / (counts.sum() * np.diff(bins)) + 1e-10))


def kl_divergences(names: Sequence[str], ref_desc: np.ndarray, ref_maxsim: np.ndarray, gen_desc: np.ndarray,
                   gen_maxsim: np.ndarray, n_continuous: int = 4) -> Mapping[str, float]:
    """GuacaMol's KL divergences: descriptor columns (the first `n_continuous` by KDE, the rest by
    histogram) and ``internal_similarity`` (nearest-neighbour similarity within each set)."""
    out: dict[str, float] = {}
    for i, name in enumerate(names):
        fn = continuous_kldiv if i < n_continuous else discrete_kldiv
        out[name] = fn(ref_desc[:, i], gen_desc[:, i])
    out["internal_similarity"] = continuous_kldiv(ref_maxsim, gen_maxsim)
    if not all(math.isfinite(v) for v in out.values()):
        raise ValueError("a KL divergence is not finite")
    return out
