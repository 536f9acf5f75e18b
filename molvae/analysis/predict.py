"""Property-head predictions for `MolVAE.predict` and `molvae predict`, optionally with the applicability
domain of each molecule, so that a prediction for a molecule unlike the training data is marked as such.

The head reads the posterior mean of each molecule; its outputs are standardized targets, turned back into
the training data's units with the property statistics stored with the model
(`MoleculeCodec.head_values`). The domain columns are those of `MolVAE.score`
(`molvae.analysis.domain.score_table`), passed in as a function: nothing here scores molecules itself.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from molvae import chem
from molvae.errors import UsageError

if TYPE_CHECKING:
    from molvae.generation.codec import MoleculeCodec

__all__ = ["PREDICT_ON_INVALID", "predict_table"]

# "keep": one row per input; a molecule the model cannot encode gets NaN predictions and a `reason`.
PREDICT_ON_INVALID = ("error", "skip", "keep")


def predict_table(codec: MoleculeCodec, items: Sequence[Any], on_invalid: str = "error", rdkit: bool = False,
                  batch_size: int | None = None, strict: bool = False,
                  score: Callable[[list[Any]], pd.DataFrame] | None = None) -> pd.DataFrame:
    """The property head's predictions for `items` (SMILES), one row per encoded input (every input with
    on_invalid="keep"); see `MolVAE.predict` for the columns. score: the `MolVAE.score` table of a list of
    molecules (one row per input); given, the domain columns are added from it. Raises UsageError for a
    model without a property head or an unknown `on_invalid`, DataError for bad rows with on_invalid="error"."""
    if codec.model.prop_head is None or not codec.prop_names:
        raise UsageError("this model was trained without properties; it has no property head to predict with")
    if on_invalid not in PREDICT_ON_INVALID:
        raise UsageError(f"on_invalid must be one of {', '.join(PREDICT_ON_INVALID)}; got {on_invalid!r}")
    items = list(items)
    keep = on_invalid == "keep"
    with warnings.catch_warnings():
        if keep:  # every row is returned: reasons and the stereo/standardized flags are columns, not warnings
            warnings.simplefilter("ignore", RuntimeWarning)
        enc, z, _ = codec.encode_checked(items, "skip" if keep else on_invalid, strict, batch_size)
    pred = codec.head_values(torch.from_numpy(z), codec.prop_names)  # (m, P), the properties' units
    rows = np.arange(len(items), dtype=np.int64) if keep else enc.rows
    at = np.searchsorted(rows, enc.rows)  # where each encoded input sits among the returned rows
    inputs = [items[i] for i in rows]
    df = pd.DataFrame({"row": rows, "smiles": pd.Series(inputs, dtype=object)})
    for name in ("stereo_removed", "standardized"):
        df[name] = np.zeros(len(rows), dtype=bool)
        df.loc[at, name] = getattr(enc, name)
    for j, name in enumerate(codec.prop_names):
        df[name] = np.nan
        df.loc[at, name] = pred[:, j]
    if rdkit:
        known = [n for n in codec.prop_names if n in chem.PROPERTY_NAMES]
        if known:
            values = chem.properties(inputs, known)
            for name in known:
                df[f"{name}_rdkit"] = values[name].to_numpy()
    reason = np.full(len(rows), "", dtype=object)
    if keep and len(enc.rejected):
        reason[np.searchsorted(rows, enc.rejected["row"].to_numpy())] = enc.rejected["reason"].to_numpy()
    if score is not None:
        reason = _add_domain(df, score(inputs), reason)
    if keep or score is not None:
        df["reason"] = reason
    return df


def _add_domain(df: pd.DataFrame, scores: pd.DataFrame, reason: np.ndarray) -> np.ndarray:
    """Insert `in_domain` and `anomaly` (from the `MolVAE.score` table `scores`, one row per row of `df`) after
    `smiles`; returns the reasons, the prediction's own first, else the score's (e.g. longer than the model's
    maximum length). A row without a prediction is never in the domain. Without a calibrated domain the score's
    `in_domain` is empty (None), and so is the column here."""
    own = reason != ""
    in_domain = scores["in_domain"].to_numpy()
    if in_domain.dtype == bool:  # a calibrated domain gave flags
        in_domain = in_domain & ~own
    df.insert(2, "in_domain", in_domain)
    df.insert(3, "anomaly", scores["anomaly"].to_numpy())
    return np.where(own, reason, scores["reason"].to_numpy(dtype=object))
