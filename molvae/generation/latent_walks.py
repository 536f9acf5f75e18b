"""Walks through the latent space around given molecules, the tables behind `MolVAE.interpolate` (points
on the line or great circle between two molecules' latents) and `MolVAE.neighbors` (random points around
one molecule's latent). `vae` is the `MolVAE` that calls them (not imported here: it imports this module);
decoding goes through its `decode_table`, so a conditional model decodes each point with the conditions its
property head predicts there."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from molvae import chem
from molvae.model import inference

__all__ = ["interpolation_table", "neighbors_table"]


def interpolation_table(vae: Any, a: str, b: str, za: np.ndarray, zb: np.ndarray, steps: int, kind: str,
                        method: str, properties: Sequence[str] | None, seed: int | None) -> pd.DataFrame:
    """`steps` points from latent za (Z,) of molecule `a` to zb of `b` ("linear" or "slerp"), decoded, with
    `step`, `t`, `sim_a` and `sim_b` (Tanimoto to the endpoints); arguments checked by `MolVAE.interpolate`."""
    t = np.linspace(0.0, 1.0, steps)
    z = inference.slerp(za, zb, t) if kind == "slerp" else za[None] + t[:, None] * (zb - za)[None]
    df = vae.decode_table(z, method=method, seed=seed, properties=properties)
    df.insert(0, "step", np.arange(steps))
    df.insert(1, "t", t)
    df["sim_a"] = chem.bulk_tanimoto(a, df["smiles"].tolist())
    df["sim_b"] = chem.bulk_tanimoto(b, df["smiles"].tolist())
    return df


def neighbors_table(vae: Any, smiles: str, mu: np.ndarray, n: int, radius: float, seed: int, method: str,
                    properties: Sequence[str] | None, unique: bool) -> pd.DataFrame:
    """`n` points mu + radius eps (eps ~ N(0, I), seeded) around latent mu (Z,) of `smiles`, decoded, with
    `distance` and `similarity`, most similar first; unique drops invalid rows, repeats and the query.
    Arguments checked by `MolVAE.neighbors`."""
    eps = torch.randn(n, mu.shape[0], generator=torch.Generator().manual_seed(seed)).numpy()
    z = mu[None] + radius * eps
    df = vae.decode_table(z, method=method, seed=seed, properties=properties)
    df["distance"] = np.linalg.norm(z - mu[None], axis=1)
    df["similarity"] = chem.bulk_tanimoto(smiles, df["smiles"].tolist())
    if unique:
        query = chem.canonical(smiles)
        df = df[df["valid"] & ~df["canonical"].duplicated() & (df["canonical"] != query)]
    df = df.sort_values("similarity", ascending=False, kind="stable").reset_index(drop=True)
    df.attrs["seed"] = seed
    return df
