"""Tokenized data sets as compact integer arrays, train/validation splits and length-bucketed batches."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from molvae.errors import UsageError

if TYPE_CHECKING:
    from molvae.data.tokens import Vocabulary

__all__ = ["EncodedData", "encode", "label_stats", "split_indices", "batches", "data_hash"]


@dataclass
class EncodedData:
    """A tokenized data set as compact arrays (no Python lists of tensors).

    ids: (N, L) int16, BOS ... EOS then PAD; lengths: (N,) int32 including BOS and EOS;
    props: (N, P) float32, standardized with `prop_stats` {name: (mean, std)}; NaN where a molecule has no
    label for that property (sparse assay data: the property loss and metrics skip those cells).
    conds: (N, C) float32, the conditioning vector c of a conditional model (RDKit properties standardized
    with `cond_stats`, always finite); (N, 0) for an unconditional one (None is taken as that).
    """

    ids: np.ndarray
    lengths: np.ndarray
    props: np.ndarray
    prop_names: tuple[str, ...] = ()
    prop_stats: dict[str, tuple[float, float]] = field(default_factory=dict)
    conds: np.ndarray | None = None
    cond_stats: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.conds is None:
            self.conds = np.zeros((len(self.lengths), 0), dtype=np.float32)

    @property
    def cond_names(self) -> tuple[str, ...]:
        return tuple(self.cond_stats)

    def __len__(self) -> int:
        return len(self.lengths)

    def n_labels(self) -> np.ndarray:
        """Labelled molecules per property, (P,) int64."""
        return np.isfinite(self.props).sum(0).astype(np.int64)

    def subset(self, idx: np.ndarray) -> "EncodedData":
        idx = np.asarray(idx)
        width = int(self.lengths[idx].max()) if len(idx) else 0
        return EncodedData(self.ids[idx, :width], self.lengths[idx], self.props[idx], self.prop_names, self.prop_stats,
                           self.conds[idx], self.cond_stats)


def encode(
    df: pd.DataFrame,
    vocab: "Vocabulary",
    prop_names: Sequence[str] = (),
    prop_stats: dict[str, tuple[float, float]] | None = None,
    conditions: pd.DataFrame | None = None,
    cond_stats: dict[str, tuple[float, float]] | None = None,
) -> EncodedData:
    """Turn `df.tokens` and property columns into an `EncodedData`; stats come from `df` when not given
    (mean and population std over the labelled rows; NaN cells stay NaN).

    `conditions`: the raw conditioning properties (one row per row of `df`, one column per condition, in
    the property's units), standardized with `cond_stats` (from `conditions` itself when not given; a
    training run passes the training split's). A cell RDKit could not compute becomes 0, the mean:
    c must be finite, and the mean says the least about the molecule."""
    if "tokens" not in df:
        raise ValueError("encode() needs a 'tokens' column: call load_molecules with a tokenizer")
    seqs = [vocab.encode(t) for t in df["tokens"]]
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int32, count=len(seqs))
    ids = np.full((len(seqs), int(lengths.max()) if len(seqs) else 0), vocab.pad_id, dtype=np.int16)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    stats = dict(prop_stats or {})
    props = np.zeros((len(df), len(prop_names)), dtype=np.float32)
    for j, name in enumerate(prop_names):
        col = df[name].to_numpy(dtype=np.float64)
        if name not in stats:
            stats[name] = label_stats(col)
        mean, std = stats[name]
        props[:, j] = (col - mean) / std
    conds, cstats = None, {}
    if conditions is not None and len(conditions.columns):
        given = dict(cond_stats or {})
        cstats = {n: given.get(n) or label_stats(conditions[n].to_numpy()) for n in conditions.columns}
        raw = conditions.to_numpy(dtype=np.float64)
        mean, std = (np.array([cstats[n][i] for n in conditions.columns]) for i in (0, 1))
        conds = np.nan_to_num((raw - mean) / std, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    return EncodedData(ids, lengths, props, tuple(prop_names), {n: stats[n] for n in prop_names}, conds, cstats)


def label_stats(values: np.ndarray) -> tuple[float, float]:
    """(mean, std) of the finite entries of `values` (population std; 1.0 when it is ~0 or undefined, and
    mean 0.0 when nothing is labelled), the standardization of one property head output."""
    labelled = np.asarray(values, dtype=np.float64)
    labelled = labelled[np.isfinite(labelled)]
    if not len(labelled):
        return 0.0, 1.0
    std = float(labelled.std())
    return float(labelled.mean()), std if std > 1e-8 else 1.0


def split_indices(n: int, val_fraction: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train/validation split of range(n); validation has at least one item when n >= 2."""
    if not 0.0 <= val_fraction < 1.0:
        raise UsageError(f"val_fraction must be in [0, 1), got {val_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n >= 2:
        n_val = max(1, n_val)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def batches(
    lengths: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0, epoch: int = 0, drop_last: bool = False
) -> list[np.ndarray]:
    """Length-bucketed batches of indices into `lengths`.

    Sorting by length within shuffled chunks of 50 batches keeps padding small while still mixing
    molecules across epochs; the result depends only on (seed, epoch).
    """
    n = len(lengths)
    if batch_size <= 0:
        raise UsageError(f"batch size must be positive, got {batch_size}")
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n) if shuffle else np.arange(n)
    chunk = batch_size * 50
    out: list[np.ndarray] = []
    for start in range(0, n, chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        out.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    if drop_last and out and len(out[-1]) < batch_size:
        out.pop()
    if shuffle:
        out = [out[i] for i in rng.permutation(len(out))]
    return out


def data_hash(smiles: Sequence[str]) -> str:
    """sha256 over the sorted SMILES (one per line): identifies a training set independent of row order."""
    h = hashlib.sha256()
    for s in sorted(smiles):
        h.update(s.encode())
        h.update(b"\n")
    return h.hexdigest()
