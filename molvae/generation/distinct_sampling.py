"""`MolVAE.sample(n, unique_valid=True)`: rounds of prior draws until `n` distinct valid molecules are found
or the budget of 20 n draws is spent (then fewer rows and a warning, never an endless loop)."""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import pandas as pd
import torch

from molvae import chem
from molvae.model import inference

if TYPE_CHECKING:
    from molvae.generation.codec import MoleculeCodec
    from molvae.generation.prior import LatentPrior

__all__ = ["sample_distinct"]


def sample_distinct(codec: MoleculeCodec, latent_prior: LatentPrior, n: int, gen: torch.Generator, method: str,
                    temperature: float, seed: int, beam_width: int, batch_size: int | None, names: tuple[str, ...],
                    max_len: int | None, n_jobs: int | None, prior: str, top_p: float = 1.0) -> tuple[pd.DataFrame, int]:
    """Up to `n` distinct valid molecules (the molecule table with the RDKit properties `names`) and the number
    of latents drawn; latents come from `latent_prior` (`prior`: "density" or "standard") through `gen`,
    decoded by `codec` with the arguments `MolVAE.sample` checked."""
    kept: list[pd.DataFrame] = []
    seen: set[str] = set()
    found, drawn, budget, round_ = 0, 0, 20 * n, 0
    while found < n and drawn < budget:
        # Ask for what is missing plus a margin for invalid and repeated draws.
        m = min(budget - drawn, max(64, int((n - found) * 1.3)))
        z, c = latent_prior.draw_with_conds(m, gen, prior)
        ids = codec.decode_ids(z, method, temperature, inference.sub_seed(seed, 1_000_003, round_), beam_width,
                               batch_size, max_len, c, top_p)
        part = codec.table(ids, (), n_jobs)
        drawn, round_ = drawn + m, round_ + 1
        fresh = part["valid"].to_numpy() & ~part["canonical"].duplicated().to_numpy()
        fresh &= ~part["canonical"].isin(seen).to_numpy()
        part = part[fresh].head(n - found)
        seen.update(part["canonical"])
        kept.append(part)
        found += len(part)
    df = pd.concat(kept, ignore_index=True)
    if found < n:  # stacklevel: this function <- MolVAE.sample <- the caller
        warnings.warn(f"only {found} distinct valid molecules in {drawn} draws (asked for {n})",
                      RuntimeWarning, stacklevel=3)
    if names:  # properties only for the molecules kept, computed once at the end
        values = chem.properties(df["canonical"].tolist(), names, n_jobs=codec.jobs(n_jobs))
        cols = [c for c in df.columns if c != "novel"]
        df = pd.concat([df[cols], values, df[["novel"]] if "novel" in df else None], axis=1)
    return df, drawn
