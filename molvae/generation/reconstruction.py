"""Reconstruction: each molecule encoded to its posterior mean and decoded again (`MolVAE.reconstruct`),
the measure of how much of a molecule its latent keeps. A conditional model decodes with the molecule's
own conditions, computed by RDKit, as it was trained (docs/conditional.md)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

if TYPE_CHECKING:
    from molvae.generation.codec import MoleculeCodec

__all__ = ["reconstruct_table"]


def reconstruct_table(codec: MoleculeCodec, items: list[Any], method: str, on_invalid: str,
                      properties: Sequence[str] | None, seed: int, beam_width: int, batch_size: int | None,
                      n_jobs: int | None, strict: bool) -> pd.DataFrame:
    """One row per encoded input: `row`, `input`, `output`, the molecule table of the output, `exact`,
    `stereo_removed`, `standardized` (see `MolVAE.reconstruct`); arguments checked there or by the codec."""
    enc, z, _ = codec.encode_checked(items, on_invalid, strict, batch_size)
    c = codec.rdkit_conditions(enc.smiles, n_jobs) if codec.is_conditional else None
    ids = codec.decode_ids(torch.from_numpy(z), method, 1.0, seed, beam_width, batch_size, c=c)
    df = codec.table(ids, properties, n_jobs)
    df.insert(0, "row", enc.rows)
    df.insert(1, "input", pd.Series([items[i] for i in enc.rows], dtype=object))
    df.insert(2, "output", df["smiles"])
    at = df.columns.get_loc("canonical") + 1
    df.insert(at, "exact", np.asarray([c is not None and c == t for c, t in zip(df["canonical"], enc.smiles)],
                                      dtype=bool))
    df.insert(at + 1, "stereo_removed", enc.stereo_removed)
    df.insert(at + 2, "standardized", enc.standardized)
    return df
