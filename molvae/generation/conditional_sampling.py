"""Sampling under property conditions, the rounds behind `MolVAE.sample(n, where="logp>=4,logp<=5")`
(`molvae.generation.conditions` parses the condition into windows).

How molecules are found: latents come from the learned density steered by the property head
(`molvae.generation.steered_prior.SteeredPrior`: components reweighted by their calibrated probability
of decoding into the windows, draws shrunk toward component means, repeated use of a component damped).
Latents are decoded; RDKit computes the properties of each decoded molecule and only those inside every
window are kept ("hits"; a property RDKit cannot compute is checked with the head's prediction for the
decoded molecule). A small first round measures how decoding regresses the head's predictions; rounds
repeat until `n` hits or the decode budget is spent, so a condition nothing meets ends with a warning,
never in an endless loop. Properties the head does not predict are not steered, only checked.

A conditional model whose density keeps each component's conditions is not steered: its windows on
conditioned properties choose the components and their conditions c (`molvae.generation.conditioned_draws`),
z and c are decoded together, and the other windows are only checked.
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
from molvae.generation.conditioned_draws import ConditionedDraws, conditioned_windows
from molvae.generation.conditions import Window, describe
from molvae.generation.steered_prior import SteeredPrior
from molvae.model import inference

if TYPE_CHECKING:
    from molvae.generation.codec import MoleculeCodec
    from molvae.generation.prior import LatentPrior

__all__ = ["sample_where", "in_windows", "keep_hits"]

_MAX_ROUNDS = 12
_FIRST_ROUND = 96  # decodes of the first steered round: enough to fit the calibration's one slope


def sample_where(codec: MoleculeCodec, latent_prior: LatentPrior, n: int, windows: Sequence[Window],
                 names: tuple[str, ...], seed: int,
                 temperature: float = 1.0, method: str = "multinomial", beam_width: int = 5,
                 batch_size: int | None = None, max_len: int | None = None, n_jobs: int | None = None,
                 prior: str = "density", unique: bool = False, max_decodes: int | None = None,
                 steer: bool = True, top_p: float = 1.0) -> pd.DataFrame:
    """Up to `n` molecules meeting every window, decoded by `codec` from latents of `latent_prior` (`prior`
    names which: "density" or "standard"); the arguments are checked by `MolVAE.sample`. Returns the
    molecule table of the hits (properties `names` plus the conditioned ones) with `df.attrs` = {where,
    n_drawn (decoded latents), n_valid (valid molecules among them), hits, hit_rate (hits per decode,
    before keeping n), rounds, steered, calibration ({property: {slope, sigma}} fitted by the steering),
    conditioned (names of the windows the conditions targeted), conditioning ({inside, moved, components}),
    seconds}. unique: distinct hits only. max_decodes: the budget (default 20 n + 1000). steer=False is plain
    rejection sampling (the baseline it is measured against), also for a conditional model."""
    t0 = time.perf_counter()
    budget = int(max_decodes) if max_decodes is not None else 20 * n + 1000
    rdkit_names = tuple(w.name for w in windows if w.name in chem.PROPERTY_NAMES)
    head_only = [w for w in windows if w.name not in chem.PROPERTY_NAMES]
    density = latent_prior.density if prior == "density" else None
    targeted = conditioned_windows(codec, windows) if steer and density is not None and density.n_conds else []
    conditioning = ConditionedDraws(codec, density, targeted) if targeted else None
    steered = [w for w in windows if w.name in codec.prop_names and codec.model.prop_head is not None] if steer else []
    steered = [] if conditioning is not None else steered
    table_names = tuple(dict.fromkeys(names + rdkit_names))
    steering = SteeredPrior(codec, latent_prior, steered, prior) if steered else None
    gen, rng = torch.Generator().manual_seed(seed), np.random.default_rng(seed)
    kept: list[pd.DataFrame] = []
    seen: set[str] = set()  # distinct hits kept (unique=True)
    decoded: set[str] = set()  # every valid molecule decoded so far, for the steering's repeat damping
    found = drawn = hits = rounds = n_valid = 0
    while found < n and drawn < budget and rounds < _MAX_ROUNDS:
        rate = max(hits / drawn, 0.02) if drawn else (0.3 if steered else 0.1)
        m = int(min(budget - drawn, max(64, math.ceil((n - found) / rate * 1.2))))
        if steering is not None and not drawn:  # a first, smaller round measures how decoding regresses
            m = min(m, max(_FIRST_ROUND, n // 4))
        c = None
        if conditioning is not None:
            z, c = conditioning.draw(m, gen, rng)
        elif steering is not None:
            z, z_pred = steering.draw(m, gen, rng)
        else:
            z, c = latent_prior.draw_with_conds(m, gen, prior)
        ids = codec.decode_ids(z, method, temperature, inference.sub_seed(seed, 2_000_003, rounds), beam_width,
                               batch_size, max_len, c, top_p)
        part = codec.table(ids, table_names, n_jobs)
        drawn, rounds = drawn + m, rounds + 1
        ok = part["valid"].to_numpy() & in_windows(part, windows, rdkit_names)
        if head_only and ok.any():
            _check_with_head(codec, part, ok, head_only)
        valid = part["valid"].to_numpy()
        if steering is not None or conditioning is not None:
            canon = part["canonical"]
            repeated = valid & (canon.duplicated().to_numpy() | canon.isin(decoded).to_numpy())
            decoded.update(canon[valid])
            if conditioning is not None:
                conditioning.observe(repeated)
            else:  # how far the decoded molecules landed from what the head predicted
                steering.observe(z_pred, {k: part[k].to_numpy() for k in rdkit_names}, valid, repeated)
        hits, n_valid = hits + int(ok.sum()), n_valid + int(valid.sum())
        part = keep_hits(part, ok, unique, seen, n - found)
        kept.append(part)
        found += len(part)
    df = pd.concat(kept, ignore_index=True) if kept else codec.table(np.zeros((0, 1), dtype=np.int64), table_names, 1)
    if found < n:
        warnings.warn(f"only {found} of {n} molecules met {describe(windows)} in {drawn} decodes "
                      f"({hits / max(drawn, 1):.2%} per decode, {rounds} rounds); widen the condition or raise "
                      "the budget", RuntimeWarning, stacklevel=3)
    df.attrs.update(where=describe(windows), n_drawn=drawn, n_valid=n_valid, hits=hits,
                    hit_rate=hits / max(drawn, 1), rounds=rounds, steered=[w.name for w in steered],
                    calibration=steering.summary() if steering is not None else {},
                    conditioned=[w.name for w in targeted],
                    conditioning=conditioning.summary() if conditioning is not None else {},
                    seconds=time.perf_counter() - t0)
    return df


def in_windows(part: pd.DataFrame, windows: Sequence[Window], names: Sequence[str]) -> np.ndarray:
    """Rows (len(part),) bool whose RDKit value lies inside every window on a property among `names` (the
    table's columns); windows on other properties are not checked here."""
    ok = np.ones(len(part), dtype=bool)
    for w in windows:
        if w.name in names:
            ok &= w.contains(part[w.name].to_numpy())
    return ok


def keep_hits(part: pd.DataFrame, ok: np.ndarray, unique: bool, seen: set[str], limit: int) -> pd.DataFrame:
    """The rows of one round's molecule table that are hits (`ok`), distinct from each other and from the
    canonical SMILES in `seen` when `unique` (`seen` is updated), at most `limit` of them."""
    part = part[ok]
    if unique:
        part = part[~part["canonical"].duplicated().to_numpy() & ~part["canonical"].isin(seen).to_numpy()]
        seen.update(part["canonical"])
    return part.head(limit)


def _check_with_head(codec: MoleculeCodec, part: pd.DataFrame, ok: np.ndarray, windows: Sequence[Window]) -> None:
    """For properties RDKit does not compute: add the head's prediction for each decoded molecule still `ok`
    (re-encoded from its canonical SMILES; NaN for the others) as a column of `part`, and clear `ok` (in place)
    where it is outside its window."""
    rows = np.flatnonzero(ok)
    enc, mu, _ = codec.encode_checked(part["canonical"].iloc[rows].tolist(), "skip", False, None)
    predicted = codec.head_values(torch.from_numpy(mu), [w.name for w in windows])  # (m, len(windows))
    for j, w in enumerate(windows):
        values = np.full(len(part), np.nan)
        values[rows[enc.rows]] = predicted[:, j]
        part[w.name] = values
        ok &= w.contains(values)
