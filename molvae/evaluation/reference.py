"""Statistics of molecule sets that `molvae.evaluation.moses` compares, and their on-disk cache.

Per molecule (`mol_record`): canonical SMILES, Morgan bits, BRICS fragments, Bemis-Murcko scaffold,
MOSES filters, properties; per set (`reference_stats`): those aggregated with multiplicities, plus
ChemNet activation moments for the Fréchet ChemNet Distance and GuacaMol KL inputs.

ChemNet (weights and network) comes from the `fcd` package (1.2.x; the weights ship in its wheel).
The SMILES featurization is ours: it reproduces `fcd_torch` (what MOSES 0.3.1 uses) token for
token, because the two packages differ and ChemNet's last LSTM state depends on it:

* `fcd_torch` reads a symbol as two characters when the second one is ``r``, ``i`` or ``l``
  (``Br``, ``Cl``, ``Si``); anything outside ChemNet's 35-symbol vocabulary becomes ``X``;
* it stops at the first ``.`` (only the first fragment of a multi-fragment SMILES is read) and
  truncates to 349 symbols, then writes the ``.`` end token;
* it pads every molecule to 350 positions and scales the one-hot rows by 1/35.

The caller canonicalizes first (`fcd_torch` does it inside; `fcd` does not).

Cached statistics are plain ``.npz`` files (never pickles) under ``$MOLVAE_DATA/metrics`` (or
``~/.cache/molvae/metrics``), named by a sha256 of their inputs (`molvae.files.content_key`).
"""
from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from molvae import chem
from molvae.evaluation.kernels import tanimoto_reduce
from molvae.files import content_key, hash_smiles, load_npz, save_npz
from molvae.parallel import pmap

__all__ = [
    "CHEMNET_VOCAB", "CHEMNET_PAD_LEN", "chemnet_token_ids", "chemnet_moments", "frechet_distance",
    "metrics_cache_dir", "KL_DESCRIPTORS", "KL_SIZE", "PROPERTIES", "mol_record", "collect_records", "kl_arrays",
    "ReferenceStats", "reference_stats", "train_keys",
]

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


# --------------------------------------------------------------------------- cache


def metrics_cache_dir() -> Path:
    """``$MOLVAE_DATA/metrics``, else ``~/.cache/molvae/metrics`` (not created here)."""
    from molvae.data.datasets import cache_dir

    return cache_dir() / "metrics"


# --------------------------------------------------------------------------- set statistics

KL_DESCRIPTORS: tuple[str, ...] = ("BertzCT", "MolLogP", "MolWt", "TPSA", "NumHAcceptors", "NumHDonors",
                                   "NumRotatableBonds", "NumAliphaticRings", "NumAromaticRings")
PROPERTIES = (("logP", "logp"), ("SA", "sa"), ("QED", "qed"), ("weight", "mw"))  # MOSES name, chem name
KL_SIZE, KL_SEED = 10_000, 42
_STATS_TAG = "molvae-metrics-ref-v1"


def _scaffold(mol: Any) -> str | None:
    """MOSES `compute_scaffold(min_rings=2)`: Bemis-Murcko scaffold SMILES, None below 2 rings."""
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    try:
        scaffold = MurckoScaffold.GetScaffoldForMol(mol)
    except (ValueError, RuntimeError):
        return None
    smiles = Chem.MolToSmiles(scaffold)
    return None if smiles == "" or scaffold.GetRingInfo().NumRings() < 2 else smiles


def mol_record(smiles: str, filters: bool, props: bool) -> tuple | None:
    """Everything the MOSES metrics need from one molecule, or None if it does not parse:
    (canonical, stereo-free canonical, packed 1024-bit Morgan r=2, BRICS fragments, scaffold,
    passes filters | None, (logP, SA, QED, weight) | None)."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = chem.to_mol(smiles)
    if mol is None:
        return None
    with chem.rdkit_quiet():
        fp = np.zeros(1024, dtype=np.uint8)
        fp[list(chem.fingerprint(mol, 2, 1024).GetOnBits())] = 1
        try:
            frags = tuple(Chem.MolToSmiles(AllChem.FragmentOnBRICSBonds(mol)).split("."))
        except (ValueError, RuntimeError):
            frags = ()
        values = None
        if props:
            p = chem.mol_properties(mol, [name for _, name in PROPERTIES])
            values = tuple(p[name] for _, name in PROPERTIES)
        return (Chem.MolToSmiles(mol), Chem.MolToSmiles(mol, isomericSmiles=False), np.packbits(fp).tobytes(),
                frags, _scaffold(mol), chem.passes_moses_filters(mol) if filters else None, values)


def _kl_record(smiles: str) -> tuple[tuple[float, ...], bytes] | None:
    """GuacaMol physchem descriptors (`KL_DESCRIPTORS`, non-finite -> 0) and packed ECFP4 4096 bits."""
    from rdkit.Chem import Descriptors

    mol = chem.to_mol(smiles)
    if mol is None:
        return None
    values = []
    for name in KL_DESCRIPTORS:
        try:
            v = float(getattr(Descriptors, name)(mol))
        except (ValueError, RuntimeError):
            v = math.nan
        values.append(v if math.isfinite(v) else 0.0)
    fp = np.zeros(4096, dtype=np.uint8)
    fp[list(chem.fingerprint(mol, 2, 4096).GetOnBits())] = 1
    return tuple(values), np.packbits(fp).tobytes()


@dataclass(frozen=True)
class ReferenceStats:
    """What a metric needs from a molecule set, one row per distinct parseable input string.

    fps (m, 128) uint8 packed Morgan bits; weights (m,) multiplicities; frag/scaf keys and counts
    (with multiplicity); props (m, 4) logP, SA, QED, weight or (0, 4); fcd_mu (512,), fcd_sigma
    (512, 512) or empty when fewer than 2 molecules; kl_desc (k, 9), kl_maxsim (k,) for GuacaMol KL
    (k = 0 when not computed); n_valid, n_invalid counts of inputs.
    """

    fps: np.ndarray
    weights: np.ndarray
    frag_keys: np.ndarray
    frag_counts: np.ndarray
    scaf_keys: np.ndarray
    scaf_counts: np.ndarray
    props: np.ndarray
    fcd_mu: np.ndarray
    fcd_sigma: np.ndarray
    kl_desc: np.ndarray
    kl_maxsim: np.ndarray
    n_valid: int
    n_invalid: int

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("n_valid", "n_invalid")}
        return {**out, "counts": np.array([self.n_valid, self.n_invalid], dtype=np.int64)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> ReferenceStats:
        fields = {k: arrays[k] for k in cls.__dataclass_fields__ if k not in ("n_valid", "n_invalid")}
        return cls(**fields, n_valid=int(arrays["counts"][0]), n_invalid=int(arrays["counts"][1]))

    def frag(self) -> dict[str, float]:
        return dict(zip(self.frag_keys.tolist(), self.frag_counts.tolist()))

    def scaf(self) -> dict[str, float]:
        return dict(zip(self.scaf_keys.tolist(), self.scaf_counts.tolist()))


def _counts_arrays(counter: Counter) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(counter)
    return np.array(keys, dtype=str), np.array([counter[k] for k in keys], dtype=np.float64)


def collect_records(records: Sequence[tuple], weights: np.ndarray, props: bool) -> dict[str, np.ndarray]:
    """Stack per-molecule records (all non-None) into the array fields of `ReferenceStats`."""
    frags: Counter = Counter()
    scafs: Counter = Counter()
    for rec, w in zip(records, weights.tolist()):
        for f in rec[3]:
            frags[f] += w
        if rec[4] is not None:
            scafs[rec[4]] += w
    fk, fc = _counts_arrays(frags)
    sk, sc = _counts_arrays(scafs)
    fps = np.frombuffer(b"".join(r[2] for r in records), dtype=np.uint8).reshape(len(records), 128)
    prop = np.array([r[6] for r in records], dtype=np.float64).reshape(-1, 4) if props else np.zeros((0, 4))
    return dict(fps=fps, weights=weights.astype(np.float64), frag_keys=fk, frag_counts=fc, scaf_keys=sk,
                scaf_counts=sc, props=prop)


def kl_arrays(smiles: Sequence[str], n_jobs: int | None, device: str) -> tuple[np.ndarray, np.ndarray]:
    """GuacaMol KL inputs of distinct stereo-free SMILES: descriptors (k, 9), max internal similarity (k,)."""
    recs = [r for r in pmap(_kl_record, list(smiles), n_jobs) if r is not None]
    if not recs:
        return np.zeros((0, len(KL_DESCRIPTORS))), np.zeros(0)
    desc = np.array([r[0] for r in recs], dtype=np.float64)
    fps = np.frombuffer(b"".join(r[1] for r in recs), dtype=np.uint8).reshape(len(recs), 512)
    return desc, tanimoto_reduce(fps, fps, agg="max", exclude_self=True, device=device)


def reference_stats(smiles: Sequence[str], *, props: bool = True, kl: bool = True, n_jobs: int | None = None,
                    device: str = "cpu", batch_size: int = 512, cache: bool = True) -> ReferenceStats:
    """Statistics of a reference set (MOSES test or scaffold test), computed as MOSES does on the
    SMILES as given (FCD on their canonical forms); cached as ``.npz`` keyed by the SMILES, the
    options and the RDKit version. Invalid reference SMILES are counted and left out."""
    smiles = [s for s in smiles]
    path = metrics_cache_dir() / f"ref-{content_key(smiles, f'{_STATS_TAG}:props={props}:kl={kl}')}.npz"
    if cache and (arrays := load_npz(path)) is not None:
        return ReferenceStats.from_arrays(arrays)
    counts = Counter(s for s in smiles if isinstance(s, str))
    distinct = list(counts)
    records = pmap(partial(mol_record, filters=False, props=props), distinct, n_jobs)
    ok = [i for i, r in enumerate(records) if r is not None]
    recs = [records[i] for i in ok]
    weights = np.array([counts[distinct[i]] for i in ok], dtype=np.float64)
    fields = collect_records(recs, weights, props)
    mu, sigma = np.zeros(0), np.zeros((0, 0))
    if weights.sum() >= 2:
        mu, sigma, _ = chemnet_moments([r[0] for r in recs], weights, batch_size=batch_size, device=device)
    kl_desc, kl_maxsim = np.zeros((0, len(KL_DESCRIPTORS))), np.zeros(0)
    if kl and smiles:
        rng = np.random.default_rng(KL_SEED)
        pick = np.sort(rng.choice(len(smiles), size=min(KL_SIZE, len(smiles)), replace=False))
        subset = dict.fromkeys(c for c in chem.canonical_many([smiles[i] for i in pick], n_jobs, isomeric=False)
                               if c)
        kl_desc, kl_maxsim = kl_arrays(list(subset), n_jobs, device)
    n_valid = int(weights.sum())
    stats = ReferenceStats(**fields, fcd_mu=mu, fcd_sigma=sigma, kl_desc=kl_desc, kl_maxsim=kl_maxsim,
                           n_valid=n_valid, n_invalid=len(smiles) - n_valid)
    if cache:
        save_npz(path, stats.to_arrays())
    return stats


def train_keys(train: Sequence[str], n_jobs: int | None, cache: bool) -> np.ndarray:
    """Sorted 64-bit hashes of the training SMILES as given and canonicalized (cached when large)."""
    train = [s for s in train if isinstance(s, str)]
    path = metrics_cache_dir() / f"train-{content_key(train, 'molvae-train-keys-v1')}.npz"
    if cache and len(train) >= 20_000 and (arrays := load_npz(path)) is not None:
        return arrays["keys"]
    canon = chem.canonical_many(train, n_jobs)
    keys = hash_smiles([*train, *(c for c in canon if c)])
    if cache and len(train) >= 20_000:
        save_npz(path, {"keys": keys})
    return keys
