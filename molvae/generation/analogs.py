"""Analogs of a molecule: `MolVAE.sample(n, near=SMILES, similarity=0.4, where="logp>=3.5")` and
`molvae sample --near SMILES`. Hits are molecules at least `similarity` alike the given one (Tanimoto of
Morgan fingerprints, radius 2, 2048 bits), different from it, and inside every window (RDKit values).

Where the latents come from: the given molecule's posterior q(z|x) = N(mu, sigma^2), widened by a scale s:
z = mu + s sigma eps. Which s finds analogs depends on the molecule and the window (close to the molecule,
decodes repeat it; far, they fall below the similarity floor), so every round spreads its decodes over
`SCALES` in proportion to each scale's hits per decode so far (add-one smoothed; the first round evenly).

A conditional model also reads c: the molecule's own RDKit conditions with those the windows name moved into
their windows (`target_conditions`), so z keeps what the molecule is while c asks for the new property. An
unconditional model, or a window on a property the model is not conditioned on, relies on the spread of z
and on RDKit's check alone (the baseline the conditional model is measured against, docs/conditional.md).
"""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from molvae import chem
from molvae.errors import DataError
from molvae.generation.conditional_sampling import in_windows, keep_hits
from molvae.generation.conditioned_draws import INSIDE_MARGIN, conditioned_windows
from molvae.generation.conditions import Window, describe
from molvae.model import inference

if TYPE_CHECKING:
    from molvae.generation.codec import MoleculeCodec

__all__ = ["sample_near", "target_conditions", "SCALES"]

SCALES = (0.25, 0.5, 1.0, 2.0)  # posterior stds, near copies to far analogs (3 found none for paracetamol at .3)
_MAX_ROUNDS = 12


def target_conditions(codec: MoleculeCodec, own: np.ndarray, windows: Sequence[Window], m: int,
                      rng: np.random.Generator) -> torch.Tensor:
    """c (m, C) for m decodes near a molecule whose conditions in units are `own` (C,): each conditioned
    window's value, when `own` is outside it, drawn uniformly over the first 2 `INSIDE_MARGIN` training stds
    inside the nearest bound (clipped to the window), so the analog is asked for the smallest change that
    meets the window; values inside their window and the other conditions stay the molecule's own."""
    values = np.repeat(np.asarray(own, dtype=np.float64)[None, :], m, axis=0)
    for w in windows:
        j = codec.cond_names.index(w.name)
        width = 2 * INSIDE_MARGIN * codec.cond_stats[w.name][1]
        v = values[0, j]
        if v < w.lo:
            values[:, j] = rng.uniform(w.lo, min(w.hi, w.lo + width), m)
        elif v > w.hi:
            values[:, j] = rng.uniform(max(w.lo, w.hi - width), w.hi, m)
    return codec.standardize(values)


def _allocation(m: int, drawn: np.ndarray, hits: np.ndarray) -> np.ndarray:
    """Decodes per scale (len(SCALES),) summing to m, in proportion to (hits + 1) / (decodes + 2)."""
    rate = (hits + 1.0) / (drawn + 2.0)
    share = rate / rate.sum()
    counts = np.floor(share * m).astype(int)
    counts[np.argsort(-(share * m - counts))[:m - counts.sum()]] += 1
    return counts


def sample_near(codec: MoleculeCodec, n: int, smiles: str, similarity: float, windows: Sequence[Window],
                names: tuple[str, ...], seed: int, temperature: float = 1.0, method: str = "multinomial",
                beam_width: int = 5, batch_size: int | None = None, max_len: int | None = None,
                n_jobs: int | None = None, unique: bool = False, max_decodes: int | None = None,
                top_p: float = 1.0) -> pd.DataFrame:
    """Up to `n` analogs of `smiles` (see the module docstring); the arguments are checked by `MolVAE.sample`
    (DataError when the molecule cannot be encoded). Returns the molecule table of the hits (properties
    `names` plus the windows' RDKit ones) with `similarity`, in the order found, and `df.attrs` = {near (the
    molecule as encoded), similarity, where, n_drawn, n_valid, hits, hit_rate (hits per decode), rounds,
    conditioned, scales ({scale: [decodes, hits]}), seconds}. unique: distinct hits only. max_decodes:
    the budget (default 20 n + 1000)."""
    t0 = time.perf_counter()
    budget = int(max_decodes) if max_decodes is not None else 20 * n + 1000
    try:
        enc, mu, logvar = codec.encode_checked([smiles], "error", False, None)
    except DataError as exc:
        raise DataError(f"cannot encode the molecule given as near: {exc}") from exc
    query = enc.smiles[0]
    mu_t, sigma = torch.from_numpy(mu[0]).double(), torch.from_numpy(np.exp(0.5 * logvar[0])).double()
    targeted = conditioned_windows(codec, windows)
    own = codec.unstandardize(codec.rdkit_conditions([query]))[0] if codec.is_conditional else None
    rdkit_names = tuple(w.name for w in windows if w.name in chem.PROPERTY_NAMES)
    table_names = tuple(dict.fromkeys(names + rdkit_names))
    gen, rng = torch.Generator().manual_seed(seed), np.random.default_rng(seed)
    per_drawn, per_hits = np.zeros(len(SCALES)), np.zeros(len(SCALES))
    kept, seen = [], set()
    found = drawn = hits = n_valid = rounds = 0
    while found < n and drawn < budget and rounds < _MAX_ROUNDS:
        rate = max(hits / drawn, 0.05) if drawn else 0.1
        m = int(min(budget - drawn, max(32, math.ceil((n - found) / rate * 1.2))))
        counts = _allocation(m, per_drawn, per_hits)
        scale = torch.from_numpy(np.repeat(np.asarray(SCALES), counts))
        z = (mu_t[None] + scale[:, None] * sigma[None] * torch.randn(m, len(mu_t), generator=gen,
                                                                    dtype=torch.float64)).float()
        c = target_conditions(codec, own, targeted, m, rng) if own is not None else None
        ids = codec.decode_ids(z, method, temperature, inference.sub_seed(seed, 3_000_017, rounds), beam_width,
                               batch_size, max_len, c, top_p)
        part = codec.table(ids, table_names, n_jobs)
        part["similarity"] = chem.bulk_tanimoto(query, part["smiles"].tolist())
        ok = part["valid"].to_numpy() & (part["similarity"].to_numpy() >= similarity)
        ok &= (part["canonical"] != query).to_numpy() & in_windows(part, windows, rdkit_names)
        np.add.at(per_drawn, np.repeat(np.arange(len(SCALES)), counts), 1)
        np.add.at(per_hits, np.repeat(np.arange(len(SCALES)), counts)[ok], 1)
        drawn, rounds = drawn + m, rounds + 1
        hits, n_valid = hits + int(ok.sum()), n_valid + int(part["valid"].sum())
        part = keep_hits(part, ok, unique, seen, n - found)
        kept.append(part)
        found += len(part)
    df = pd.concat(kept, ignore_index=True)
    if found < n:  # stacklevel: this function <- MolVAE.sample <- the caller
        warnings.warn(f"only {found} of {n} analogs of {query} at similarity >= {similarity:g}"
                      f"{' meeting ' + describe(windows) if windows else ''} in {drawn} decodes; lower the "
                      "similarity, widen the condition or raise max_decodes", RuntimeWarning, stacklevel=3)
    df.attrs.update(near=query, similarity=float(similarity), where=describe(windows), n_drawn=drawn,
                    n_valid=n_valid, hits=hits, hit_rate=hits / max(drawn, 1), rounds=rounds,
                    conditioned=[w.name for w in targeted],
                    scales={f"{s:g}": [int(a), int(b)] for s, a, b in zip(SCALES, per_drawn, per_hits)},
                    seconds=time.perf_counter() - t0)
    return df
