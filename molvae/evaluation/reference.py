"""Statistics of molecule sets that `molvae.evaluation.moses` compares, and their on-disk cache.

Per molecule (`mol_record`): canonical SMILES, Morgan bits, BRICS fragments, Bemis-Murcko scaffold,
MOSES filters, properties; per set (`reference_stats`): those aggregated with multiplicities, plus
ChemNet activation moments for the Fréchet ChemNet Distance (`molvae.evaluation.fcd`) and GuacaMol
KL inputs.

Cached statistics are plain ``.npz`` files (never pickles) under ``$MOLVAE_DATA/metrics`` (or
``~/.cache/molvae/metrics``), named by a sha256 of their inputs (`molvae.files.content_key`). For the
MOSES test sets the set-level part ships with molvae (`molvae.evaluation.shipped`); only the
per-molecule arrays (`molecule_arrays`: fingerprints, properties) are then computed, once.
"""
from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from molvae import chem
from molvae.evaluation import shipped
from molvae.evaluation.fcd import chemnet_moments, frechet_distance  # noqa: F401  (scripts import them here)
from molvae.evaluation.kernels import tanimoto_reduce
from molvae.files import content_key, hash_smiles, load_npz, save_npz
from molvae.parallel import pmap

__all__ = [
    "metrics_cache_dir", "KL_DESCRIPTORS", "KL_SIZE", "PROPERTIES", "mol_record", "collect_records", "kl_arrays",
    "ReferenceStats", "molecule_arrays", "reference_stats", "train_keys",
]

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


def _packed_morgan(mol: Any) -> bytes:
    """Morgan radius 2, 1024 bits, packed (128 bytes): MOSES's fingerprint for SNN and IntDiv."""
    fp = np.zeros(1024, dtype=np.uint8)
    fp[list(chem.fingerprint(mol, 2, 1024).GetOnBits())] = 1
    return np.packbits(fp).tobytes()


def _property_values(mol: Any) -> tuple[float, ...]:
    p = chem.mol_properties(mol, [name for _, name in PROPERTIES])
    return tuple(p[name] for _, name in PROPERTIES)


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
        try:
            frags = tuple(Chem.MolToSmiles(AllChem.FragmentOnBRICSBonds(mol)).split("."))
        except (ValueError, RuntimeError):
            frags = ()
        return (Chem.MolToSmiles(mol), Chem.MolToSmiles(mol, isomericSmiles=False), _packed_morgan(mol),
                frags, _scaffold(mol), chem.passes_moses_filters(mol) if filters else None,
                _property_values(mol) if props else None)


def _molecule_record(smiles: str, props: bool) -> tuple[bytes, tuple[float, ...] | None] | None:
    """The per-molecule part of `mol_record` (fingerprint, properties), computed the same way."""
    mol = chem.to_mol(smiles)
    if mol is None:
        return None
    with chem.rdkit_quiet():
        return _packed_morgan(mol), _property_values(mol) if props else None


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


_NOT_STORED = ("n_valid", "n_invalid", "source")


@dataclass(frozen=True)
class ReferenceStats:
    """What a metric needs from a molecule set, one row per distinct parseable input string.

    fps (m, 128) uint8 packed Morgan bits; weights (m,) multiplicities; frag/scaf keys and counts
    (with multiplicity); props (m, 4) logP, SA, QED, weight or (0, 4); fcd_mu (512,), fcd_sigma
    (512, 512) or empty when fewer than 2 molecules; kl_desc (k, 9), kl_maxsim (k,) for GuacaMol KL
    (k = 0 when not computed); n_valid, n_invalid counts of inputs; source: where the set-level part
    came from ("computed", "cache", or "shipped (RDKit <version>)").
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
    source: str = "computed"

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in _NOT_STORED}
        return {**out, "counts": np.array([self.n_valid, self.n_invalid], dtype=np.int64)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], source: str = "cache") -> ReferenceStats:
        fields = {k: arrays[k] for k in cls.__dataclass_fields__ if k not in _NOT_STORED}
        return cls(**fields, n_valid=int(arrays["counts"][0]), n_invalid=int(arrays["counts"][1]), source=source)

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


_PROGRESS_MIN, _PROGRESS_CHUNK = 20_000, 20_000


def _progress_map(fn: Callable[[str], Any], items: Sequence[str], n_jobs: int | None, label: str) -> list[Any]:
    """`pmap(fn, items)`, in chunks under a progress bar on stderr when the list is long (a first
    evaluation against MOSES works through 352,299 molecules; it should not look hung)."""
    if len(items) < _PROGRESS_MIN:
        return pmap(fn, items, n_jobs)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    out: list[Any] = []
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=len(items))
        for start in range(0, len(items), _PROGRESS_CHUNK):
            out.extend(pmap(fn, items[start:start + _PROGRESS_CHUNK], n_jobs))
            bar.advance(task, min(_PROGRESS_CHUNK, len(items) - start))
    return out


def molecule_arrays(smiles: Sequence[str], props: bool, n_jobs: int | None = None,
                    cache: bool = True) -> dict[str, np.ndarray]:
    """The per-molecule fields of `ReferenceStats` (fps, weights, props) and ``counts`` (valid, invalid
    inputs), as `reference_stats` computes them; cached as ``.npz`` (the part that does not ship)."""
    smiles = list(smiles)
    path = metrics_cache_dir() / f"mols-{content_key(smiles, f'{_STATS_TAG}:molecules:props={props}')}.npz"
    if cache and (arrays := load_npz(path)) is not None:
        return arrays
    counts = Counter(s for s in smiles if isinstance(s, str))
    distinct = list(counts)
    records = _progress_map(partial(_molecule_record, props=props), distinct, n_jobs, "reference fingerprints")
    ok = [i for i, r in enumerate(records) if r is not None]
    weights = np.array([counts[distinct[i]] for i in ok], dtype=np.float64)
    fps = np.frombuffer(b"".join(records[i][0] for i in ok), dtype=np.uint8).reshape(len(ok), 128)
    prop = np.array([records[i][1] for i in ok], dtype=np.float64).reshape(-1, 4) if props else np.zeros((0, 4))
    n_valid = int(weights.sum())
    arrays = {"fps": fps, "weights": weights, "props": prop,
              "counts": np.array([n_valid, len(smiles) - n_valid], dtype=np.int64)}
    if cache:
        save_npz(path, arrays)
    return arrays


def _kl_inputs(smiles: list[Any], n_jobs: int | None, device: str) -> tuple[np.ndarray, np.ndarray]:
    """GuacaMol KL inputs of a reference set: a fixed random subset of `KL_SIZE` rows, stereo-free."""
    if not smiles:
        return np.zeros((0, len(KL_DESCRIPTORS))), np.zeros(0)
    rng = np.random.default_rng(KL_SEED)
    pick = np.sort(rng.choice(len(smiles), size=min(KL_SIZE, len(smiles)), replace=False))
    subset = dict.fromkeys(c for c in chem.canonical_many([smiles[i] for i in pick], n_jobs, isomeric=False) if c)
    return kl_arrays(list(subset), n_jobs, device)


def _computed_stats(smiles: list[Any], props: bool, kl: bool, n_jobs: int | None, device: str,
                    batch_size: int) -> ReferenceStats:
    counts = Counter(s for s in smiles if isinstance(s, str))
    distinct = list(counts)
    records = _progress_map(partial(mol_record, filters=False, props=props), distinct, n_jobs, "reference RDKit")
    ok = [i for i, r in enumerate(records) if r is not None]
    recs = [records[i] for i in ok]
    weights = np.array([counts[distinct[i]] for i in ok], dtype=np.float64)
    fields = collect_records(recs, weights, props)
    mu, sigma = np.zeros(0), np.zeros((0, 0))
    if weights.sum() >= 2:
        mu, sigma, _ = chemnet_moments([r[0] for r in recs], weights, batch_size=batch_size, device=device)
    kl_desc, kl_maxsim = _kl_inputs(smiles, n_jobs, device) if kl else (np.zeros((0, len(KL_DESCRIPTORS))),
                                                                          np.zeros(0))
    n_valid = int(weights.sum())
    return ReferenceStats(**fields, fcd_mu=mu, fcd_sigma=sigma, kl_desc=kl_desc, kl_maxsim=kl_maxsim,
                          n_valid=n_valid, n_invalid=len(smiles) - n_valid)


def _with_shipped(smiles: list[Any], props: bool, kl: bool, n_jobs: int | None, cache: bool) -> ReferenceStats | None:
    """The shipped set-level statistics of `smiles` joined with its per-molecule arrays, or None when
    nothing ships for this content, or when this RDKit parses a different number of the molecules
    (then the shipped statistics describe another set, and everything is recomputed)."""
    found = shipped.lookup(smiles, kl)
    if found is None:
        return None
    fields, rdkit_version = found
    arrays = molecule_arrays(smiles, props, n_jobs, cache)
    if not np.array_equal(arrays["counts"], fields["counts"]):
        warnings.warn(f"this RDKit parses {int(arrays['counts'][0])} of the reference molecules, the shipped "
                      f"statistics (RDKit {rdkit_version}) {int(fields['counts'][0])}; recomputing them",
                      RuntimeWarning, stacklevel=3)
        return None
    return ReferenceStats.from_arrays({**fields, **arrays}, source=f"shipped (RDKit {rdkit_version})")


def reference_stats(smiles: Sequence[str], *, props: bool = True, kl: bool = True, n_jobs: int | None = None,
                    device: str = "cpu", batch_size: int = 512, cache: bool = True,
                    use_shipped: bool = True) -> ReferenceStats:
    """Statistics of a reference set (MOSES test or scaffold test), computed as MOSES does on the
    SMILES as given (FCD on their canonical forms); cached as ``.npz`` keyed by the SMILES, the
    options and the RDKit version. Invalid reference SMILES are counted and left out.

    When the SMILES are exactly a set whose statistics ship (the MOSES test sets, matched by content)
    and `use_shipped`, only the per-molecule arrays are computed (`molecule_arrays`)."""
    smiles = [s for s in smiles]
    path = metrics_cache_dir() / f"ref-{content_key(smiles, f'{_STATS_TAG}:props={props}:kl={kl}')}.npz"
    if cache and (arrays := load_npz(path)) is not None:
        return ReferenceStats.from_arrays(arrays)
    if use_shipped and (stats := _with_shipped(smiles, props, kl, n_jobs, cache)) is not None:
        return stats
    stats = _computed_stats(smiles, props, kl, n_jobs, device, batch_size)
    if cache:
        save_npz(path, stats.to_arrays())
    return stats


def train_keys(train: Sequence[str], n_jobs: int | None, cache: bool) -> np.ndarray:
    """Sorted 64-bit hashes of the training SMILES as given and canonicalized (cached when large)."""
    train = [s for s in train if isinstance(s, str)]
    path = metrics_cache_dir() / f"train-{content_key(train, 'molvae-train-keys-v1')}.npz"
    if cache and len(train) >= 20_000 and (arrays := load_npz(path)) is not None:
        return arrays["keys"]
    canon = _progress_map(chem.canonical, train, n_jobs, "training set (novelty)")
    keys = hash_smiles([*train, *(c for c in canon if c)])
    if cache and len(train) >= 20_000:
        save_npz(path, {"keys": keys})
    return keys
