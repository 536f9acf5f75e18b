"""Property-head predictions for `MolVAE.predict` and `molvae predict`, optionally with the applicability
domain of each molecule, so that a prediction for a molecule unlike the training data is marked as such.

The head reads the posterior mean of each molecule; its outputs are standardized targets, turned back into
the training data's units with the property statistics stored with the model. The domain columns are those
of `MolVAE.score` (`molvae.generation.domain`), computed by it: nothing here scores molecules itself.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from molvae import chem
from molvae.errors import UsageError

if TYPE_CHECKING:
    from molvae.generation.api import MolVAE

__all__ = ["PREDICT_ON_INVALID", "head_values", "predict_table"]

# "keep": one row per input; a molecule the model cannot encode gets NaN predictions and a `reason`.
PREDICT_ON_INVALID = ("error", "skip", "keep")


def head_values(vae: MolVAE, z: torch.Tensor, names: Sequence[str]) -> np.ndarray:
    """Head predictions (n, len(names)) float64 in the properties' units for latents z (n, Z) on CPU."""
    idx = [vae.prop_names.index(n) for n in names]
    with torch.no_grad():
        out = vae.model.predict_props(z.to(vae.device)).float().cpu().numpy()[:, idx].astype(np.float64)
    mean = np.asarray([vae.prop_stats[n][0] for n in names], dtype=np.float64)
    std = np.asarray([vae.prop_stats[n][1] for n in names], dtype=np.float64)
    return out * std + mean


def predict_table(vae: MolVAE, items: Sequence[Any], on_invalid: str = "error", rdkit: bool = False,
                  batch_size: int | None = None, strict: bool = False, domain: bool = False) -> pd.DataFrame:
    """The property head's predictions for `items` (SMILES), one row per encoded input (every input with
    on_invalid="keep"); see `MolVAE.predict` for the columns. Raises UsageError for a model without a
    property head or an unknown `on_invalid`, DataError for bad rows with on_invalid="error"."""
    if vae.model.prop_head is None or not vae.prop_names:
        raise UsageError("this model was trained without properties; it has no property head to predict with")
    if on_invalid not in PREDICT_ON_INVALID:
        raise UsageError(f"on_invalid must be one of {', '.join(PREDICT_ON_INVALID)}; got {on_invalid!r}")
    items = list(items)
    keep = on_invalid == "keep"
    with warnings.catch_warnings():
        if keep:  # every row is returned: reasons and the stereo/standardized flags are columns, not warnings
            warnings.simplefilter("ignore", RuntimeWarning)
        enc, z, _ = vae._encode_checked(items, "skip" if keep else on_invalid, strict, batch_size)
    pred = head_values(vae, torch.from_numpy(z), vae.prop_names)  # (m, P), the properties' units
    rows = np.arange(len(items), dtype=np.int64) if keep else enc.rows
    at = np.searchsorted(rows, enc.rows)  # where each encoded input sits among the returned rows
    inputs = [items[i] for i in rows]
    df = pd.DataFrame({"row": rows, "smiles": pd.Series(inputs, dtype=object)})
    for name in ("stereo_removed", "standardized"):
        df[name] = np.zeros(len(rows), dtype=bool)
        df.loc[at, name] = getattr(enc, name)
    for j, name in enumerate(vae.prop_names):
        df[name] = np.nan
        df.loc[at, name] = pred[:, j]
    if rdkit:
        known = [n for n in vae.prop_names if n in chem.PROPERTY_NAMES]
        if known:
            values = chem.properties(inputs, known)
            for name in known:
                df[f"{name}_rdkit"] = values[name].to_numpy()
    reason = np.full(len(rows), "", dtype=object)
    if keep and len(enc.rejected):
        reason[np.searchsorted(rows, enc.rejected["row"].to_numpy())] = enc.rejected["reason"].to_numpy()
    if domain:
        reason = _add_domain(vae, df, inputs, reason, batch_size)
    if keep or domain:
        df["reason"] = reason
    return df


def _add_domain(vae: MolVAE, df: pd.DataFrame, inputs: list[Any], reason: np.ndarray,
                batch_size: int | None) -> np.ndarray:
    """Insert `in_domain` and `anomaly` (from `MolVAE.score`) after `smiles`; returns the reasons, the
    prediction's own first, else the score's (e.g. longer than the model's maximum length). A row without a
    prediction is never in the domain. Without a calibrated domain both columns are empty, with a warning."""
    if vae.domain is None:
        warnings.warn(f"model {vae.name} has no calibrated domain: anomaly and in_domain are left empty "
                      "(calibrate it with MolVAE.calibrate_domain or `molvae domain`)", RuntimeWarning, stacklevel=4)
    scores = vae.score(inputs, batch_size=batch_size)
    own = reason != ""
    in_domain = scores["in_domain"].to_numpy()
    if vae.domain is not None:
        in_domain = in_domain.astype(bool) & ~own
    df.insert(2, "in_domain", in_domain)
    df.insert(3, "anomaly", scores["anomaly"].to_numpy())
    return np.where(own, reason, scores["reason"].to_numpy(dtype=object))
