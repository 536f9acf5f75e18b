"""MOSES distribution-learning metrics, property Wasserstein distances, GuacaMol KL and FCD scores.

Definitions follow molsets 0.3.1 (`moses/metrics/metrics.py`, `utils.py`) line by line:

* **Valid**: fraction of inputs RDKit parses and sanitizes (empty strings and non-strings count as
  invalid). Everything below uses the valid molecules as canonical SMILES, duplicates kept.
* **Unique@k**: distinct canonical SMILES among the first k valid ones, / k.
* **FCD**: Fréchet ChemNet Distance between valid generated and reference molecules (`reference.chemnet_moments`).
* **SNN**: mean over generated molecules of the highest Tanimoto similarity to any reference
  molecule; Morgan radius 2, 1024 bits (0/0 counts as 1, as MOSES does).
* **Frag** / **Scaf**: cosine similarity of BRICS-fragment / Bemis-Murcko-scaffold count vectors
  (scaffolds with fewer than 2 rings are dropped, as MOSES's ``min_rings=2``).
* **IntDiv** = 1 - mean over all ordered pairs (self pairs included) of Tanimoto similarity;
  **IntDiv2** = 1 - mean_i sqrt(mean_j T_ij^2).
* **Filters**: fraction passing `chem.passes_moses_filters` (MCF, PAINS, atoms, charge, rings).
* **Novelty**: fraction of distinct valid canonical SMILES absent from the training set (training
  SMILES are matched as given and canonicalized, so a non-canonical training file works too).
* **logP, SA, QED, weight**: 1-D Wasserstein distances to the test set (MOSES's property rows).
* **KLScore** (GuacaMol): mean of exp(-KL) over the physchem descriptors `KL_DESCRIPTORS` (first
  four by Gaussian KDE, the others by 10-bin histograms) and the nearest-neighbour internal
  similarity (ECFP4, 4096 bits), on up to 10,000 distinct stereo-free generated molecules against a
  fixed 10,000-molecule random subset of the test set.
* **FCDScore** (GuacaMol) = exp(-0.2 * FCD/Test).

Generated molecules are processed once per distinct string and weighted by multiplicity, so every
mean above equals MOSES's duplicate-keeping mean. Reference statistics are cached as ``.npz``
(`reference.reference_stats`); for the MOSES test sets their set-level part ships with molvae.

`evaluate` reads the sets, describes the generated one once (`_generated_set`), then fills a `_Report`
group by group: validity and uniqueness, each reference set (FCD, SNN, Frag, Scaf), internal
diversity and filters, novelty, and the test-set distributions (properties, GuacaMol scores).
"""
from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from molvae import chem
from molvae.data.datasets import DATASETS, dataset_path, is_dataset_name
from molvae.errors import UsageError
from molvae.evaluation.fcd import chemnet_moments, frechet_distance
from molvae.evaluation.kernels import kl_divergences, tanimoto_reduce
from molvae.evaluation.reference import (KL_DESCRIPTORS, KL_SIZE, PROPERTIES, ReferenceStats, collect_records,
                                         kl_arrays, mol_record, reference_stats, train_keys)
# MOSES_BASELINES and format_table live in evaluation.table; scripts still import them from here.
from molvae.evaluation.table import METRIC_ORDER, MOSES_BASELINES, format_table  # noqa: F401
from molvae.files import smiles_hash
from molvae.parallel import pmap

__all__ = [
    "evaluate", "format_table", "moses_reference", "reference_stats", "ReferenceStats",
    "internal_diversity", "cos_similarity", "METRIC_ORDER", "MOSES_BASELINES", "KL_DESCRIPTORS",
]

# --------------------------------------------------------------------------- metric helpers


def cos_similarity(ref: Mapping[str, float], gen: Mapping[str, float]) -> float | None:
    """MOSES `cos_similarity` of two count dictionaries (missing keys are 0); None if either is empty."""
    if not ref or not gen:
        return None
    dot = sum(v * ref[k] for k, v in gen.items() if k in ref)
    norm = math.sqrt(sum(v * v for v in ref.values())) * math.sqrt(sum(v * v for v in gen.values()))
    return dot / norm if norm > 0 else None


def internal_diversity(fps: np.ndarray, weights: np.ndarray | None = None, p: int = 1, device: str = "cpu") -> float:
    """MOSES IntDiv_p of packed bit fingerprints (n, n_bytes), rows weighted by multiplicity:
    ``1 - mean_i (mean_j T_ij^p)^(1/p)`` over all ordered pairs, self pairs included."""
    w = np.ones(len(fps)) if weights is None else np.asarray(weights, dtype=np.float64)
    per_mol = tanimoto_reduce(fps, fps, agg="mean", p=p, stock_weights=w, device=device) ** (1.0 / p)
    return float(1.0 - np.average(per_mol, weights=w))


def moses_reference() -> dict[str, list[str]]:
    """MOSES ``train``, ``test`` and ``test_scaffolds`` SMILES lists, fetched once into the cache."""
    return {split: _smiles_list("moses", split, split) for split in DATASETS["moses"]}


def _smiles_list(source: Any, what: str, split: str | None = None) -> list[str]:
    """SMILES of a list, a file, or (when `split` is given) that split of a named data set."""
    if not isinstance(source, (str, Path)):
        return list(source)
    from molvae.data.read import read_table

    if split is not None and is_dataset_name(source):
        path = dataset_path(source, split)
    elif Path(source).is_file():
        path = Path(source)
    else:
        names = " or ".join(repr(n) for n in DATASETS) if split is not None else "a list"
        raise UsageError(f"{what}: {source!r} is neither {names} nor an existing file")
    df, col = read_table(path)
    return df[col].tolist()


def _label(k: int) -> str:
    return f"Unique@{k // 1000}k" if k >= 1000 and k % 1000 == 0 else f"Unique@{k}"


# --------------------------------------------------------------------------- one evaluation


class _Skip(Exception):
    """A metric that cannot be computed; the message is the reason reported in ``skipped``."""


def _need(condition: bool, reason: str) -> None:
    if not condition:
        raise _Skip(reason)


class _Report:
    """What one `evaluate` call finds: metric values, the reason for each skipped metric, details, and
    the seconds each stage took."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.skipped: dict[str, str] = {}
        self.details: dict[str, Any] = {}
        self.seconds: dict[str, float] = {}
        self._clock = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = round(now - self._clock, 2)
        self._clock = now

    def metric(self, name: str, fn: Callable[..., float | None], *args: Any) -> None:
        """Store ``fn(*args)`` under `name`, or why it could not be computed: never NaN, never a crash."""
        try:
            value = fn(*args)
        except _Skip as exc:
            self.skipped[name] = str(exc)
            return
        except (ValueError, ArithmeticError, np.linalg.LinAlgError, RuntimeError) as exc:
            self.skipped[name] = f"could not be computed: {type(exc).__name__}: {exc}"
            return
        if value is None or not math.isfinite(value):
            self.skipped[name] = "could not be computed (no finite value)"
        else:
            self.values[name] = float(value)


@dataclass(frozen=True)
class _Generated:
    """The generated set after RDKit. `valid`: canonical SMILES of the valid inputs in order, duplicates
    kept; `used`: those canonicalized again, as MOSES does (Unique, Novelty); `records` / `weights` /
    `arrays`: one `mol_record` per distinct valid molecule with its multiplicity, and the stacked
    arrays of `collect_records`; `stereo_free`: distinct stereo-free SMILES in order (GuacaMol KL)."""

    n_input: int
    n_empty: int
    valid: list[str]
    used: list[str]
    records: list[tuple]
    weights: np.ndarray
    arrays: dict[str, np.ndarray]
    stereo_free: list[str]

    @property
    def none_valid(self) -> str:
        return "no valid generated molecules" if self.n_input else "no molecules given"


def _generated_set(smiles: list[Any], n_jobs: int | None) -> _Generated:
    canon = chem.canonical_many(smiles, n_jobs)
    valid = [c for c in canon if c is not None]
    counts = Counter(valid)
    records = pmap(partial(mol_record, filters=True, props=True), list(counts), n_jobs)
    rec_of = {c: r for c, r in zip(counts, records) if r is not None}
    distinct = list(rec_of)
    weights = np.array([counts[c] for c in distinct], dtype=np.float64)
    recs = [rec_of[c] for c in distinct]
    return _Generated(
        n_input=len(smiles), n_empty=sum(1 for s in smiles if not isinstance(s, str) or not s.strip()),
        valid=valid, used=[rec_of[c][0] for c in valid if c in rec_of], records=recs, weights=weights,
        arrays=collect_records(recs, weights, props=True),
        stereo_free=list(dict.fromkeys(rec_of[c][1] for c in valid if c in rec_of)))


# --------------------------------------------------------------------------- validity, uniqueness


def _valid(gen: _Generated) -> float:
    _need(gen.n_input > 0, "no molecules given")
    return len(gen.valid) / gen.n_input


def _unique(gen: _Generated, k: int) -> float:
    _need(len(gen.used) >= k, f"needs {k} valid molecules, got {len(gen.used)}")
    return len(set(gen.used[:k])) / k


def _validity_metrics(report: _Report, gen: _Generated, ks: Sequence[int]) -> None:
    report.metric("Valid", _valid, gen)
    for k in ks:
        report.metric(_label(k), _unique, gen, k)


# --------------------------------------------------------------------------- against a reference set

_NO_VALID = "no valid generated molecules"


def _fcd(gen: _Generated, gen_fcd: tuple | None, ref: ReferenceStats, suffix: str) -> float:
    _need(gen_fcd is not None, f"needs at least 2 valid molecules, got {len(gen.used)}")
    _need(ref.fcd_mu.size > 0, f"the {suffix} reference set has fewer than 2 valid molecules")
    return frechet_distance(gen_fcd[0], gen_fcd[1], ref.fcd_mu, ref.fcd_sigma)


def _snn(gen: _Generated, ref: ReferenceStats, suffix: str, device: str) -> float:
    _need(len(gen.used) > 0, _NO_VALID)
    _need(len(ref.fps) > 0, f"no valid molecules in the {suffix} reference set")
    return np.average(tanimoto_reduce(gen.arrays["fps"], ref.fps, agg="max", device=device), weights=gen.weights)


def _frag(gen: _Generated, ref: ReferenceStats) -> float | None:
    _need(len(gen.used) > 0, _NO_VALID)
    return cos_similarity(ref.frag(), dict(zip(gen.arrays["frag_keys"].tolist(), gen.arrays["frag_counts"].tolist())))


def _scaf(gen: _Generated, ref: ReferenceStats, suffix: str) -> float | None:
    _need(len(gen.used) > 0, _NO_VALID)
    _need(len(gen.arrays["scaf_keys"]) > 0, "no generated molecule has a Bemis-Murcko scaffold with >= 2 rings")
    _need(len(ref.scaf_keys) > 0, f"no {suffix} reference molecule has a scaffold with >= 2 rings")
    return cos_similarity(ref.scaf(), dict(zip(gen.arrays["scaf_keys"].tolist(), gen.arrays["scaf_counts"].tolist())))


def _reference_metrics(report: _Report, suffix: str, ref: ReferenceStats, gen: _Generated, gen_fcd: tuple | None,
                       device: str) -> None:
    """FCD, SNN, Frag and Scaf of the generated set against reference statistics `ref`."""
    report.metric(f"FCD/{suffix}", _fcd, gen, gen_fcd, ref, suffix)
    report.metric(f"SNN/{suffix}", _snn, gen, ref, suffix, device)
    report.metric(f"Frag/{suffix}", _frag, gen, ref)
    report.metric(f"Scaf/{suffix}", _scaf, gen, ref, suffix)


# --------------------------------------------------------------------------- the generated set alone


def _intdiv(gen: _Generated, p: int, device: str) -> float:
    _need(len(gen.used) > 0, gen.none_valid)
    return internal_diversity(gen.arrays["fps"], gen.weights, p=p, device=device)


def _filters(gen: _Generated) -> float:
    _need(len(gen.used) > 0, gen.none_valid)
    return np.average([r[5] for r in gen.records], weights=gen.weights)


def _diversity_metrics(report: _Report, gen: _Generated, device: str) -> None:
    report.metric("IntDiv", _intdiv, gen, 1, device)
    report.metric("IntDiv2", _intdiv, gen, 2, device)
    report.metric("Filters", _filters, gen)


def _novelty(report: _Report, gen: _Generated, train: list[str] | None, n_jobs: int | None,
             cache: bool) -> int | None:
    """Novelty against `train`; returns the number of novel distinct molecules (None when skipped)."""
    if not train:
        report.skipped["Novelty"] = "no training set given"
        return None
    if not gen.used:
        report.skipped["Novelty"] = gen.none_valid
        return None
    keys = train_keys(train, n_jobs, cache)
    distinct = sorted(set(gen.used))
    hashes = np.fromiter((smiles_hash(s) for s in distinct), dtype=np.uint64, count=len(distinct))
    n_novel = int((~np.isin(hashes, keys)).sum())
    report.values["Novelty"] = n_novel / len(distinct)
    report.details["n_train"] = len(train)
    return n_novel


# --------------------------------------------------------------------------- test-set distributions


def _wasserstein(gen: _Generated, test: ReferenceStats, col: int) -> float:
    from scipy.stats import wasserstein_distance

    _need(len(gen.used) > 0, gen.none_valid)
    gv, rv = gen.arrays["props"][:, col], test.props[:, col]
    gm, rm = np.isfinite(gv), np.isfinite(rv)
    _need(gm.any() and rm.any(), "no finite property values")
    return wasserstein_distance(rv[rm], gv[gm], test.weights[rm], gen.weights[gm])


def _kl_score(gen: _Generated, test: ReferenceStats, requested: bool, details: dict[str, Any],
              n_jobs: int | None, device: str) -> float:
    _need(requested, "not requested (kl_score=False)")
    _need(len(test.kl_desc) >= 2, "the Test reference set has fewer than 2 distinct molecules")
    stereo_free = gen.stereo_free[:KL_SIZE]
    _need(len(stereo_free) >= 2, f"needs at least 2 distinct valid molecules, got {len(stereo_free)}")
    desc, maxsim = kl_arrays(stereo_free, n_jobs, device)
    divs = kl_divergences(KL_DESCRIPTORS, test.kl_desc, test.kl_maxsim, desc, maxsim)
    details["kl_divergences"] = {k: round(v, 6) for k, v in divs.items()}
    details["kl_n_generated"], details["kl_n_reference"] = len(desc), len(test.kl_desc)
    return float(np.mean([math.exp(-v) for v in divs.values()]))


def _distribution_metrics(report: _Report, gen: _Generated, test: ReferenceStats, kl_score: bool,
                          n_jobs: int | None, device: str) -> None:
    """MOSES's property rows (logP, SA, QED, weight) and the GuacaMol KLScore and FCDScore."""
    for col, (name, _) in enumerate(PROPERTIES):
        report.metric(name, _wasserstein, gen, test, col)
    report.metric("KLScore", _kl_score, gen, test, kl_score, report.details, n_jobs, device)
    if "FCD/Test" in report.values:
        report.values["FCDScore"] = math.exp(-0.2 * report.values["FCD/Test"])
    else:
        report.skipped["FCDScore"] = "needs FCD/Test"


# --------------------------------------------------------------------------- evaluate


def _load_sets(generated: Any, reference: Any, test_scaffolds: Any, train: Any) -> tuple[list, list, list | None,
                                                                                          list | None]:
    """The four SMILES lists; a data set name as `reference` also supplies the other two when not given."""
    if isinstance(generated, str) and not Path(generated).is_file():
        raise UsageError("generated must be a list of SMILES or a file; got a single string that is not a file")
    gen = _smiles_list(generated, "generated")
    if is_dataset_name(reference):
        if test_scaffolds is None and "test_scaffolds" in DATASETS[str(reference).lower()]:
            test_scaffolds = reference
        train = reference if train is None else train
    test = _smiles_list(reference, "reference", "test")
    scaf = None if test_scaffolds is None else _smiles_list(test_scaffolds, "test_scaffolds", "test_scaffolds")
    return gen, test, scaf, None if train is None else _smiles_list(train, "train", "train")


def _against_reference(report: _Report, suffix: str, smiles: list[str], gen: _Generated, gen_fcd: tuple | None, *,
                       props: bool, kl: bool, n_jobs: int | None, device: str, batch_size: int,
                       cache: bool) -> ReferenceStats:
    """The statistics of one reference set (`suffix` "Test" or "TestSF") and the metrics against it."""
    stats = reference_stats(smiles, props=props, kl=kl, n_jobs=n_jobs, device=device, batch_size=batch_size,
                            cache=cache)
    report.details.update({f"n_reference_{suffix}": stats.n_valid, f"reference_{suffix}": stats.source})
    report.lap(f"reference {suffix}")
    _reference_metrics(report, suffix, stats, gen, gen_fcd, device)
    report.lap(f"metrics {suffix}")
    return stats


def evaluate(generated: Sequence[str] | str | Path, reference: str | Path | Sequence[str] = "moses",
             test_scaffolds: str | Path | Sequence[str] | None = None,
             train: str | Path | Sequence[str] | None = None, *, n_jobs: int | None = None,
             ks: Sequence[int] = (1000, 10000), device: str = "cpu", batch_size: int = 512,
             kl_score: bool = True, cache: bool = True) -> dict[str, Any]:
    """MOSES metrics of `generated` SMILES (a list, or a file readable by `molvae.data.read.read_table`).

    `reference`: ``"moses"`` (MOSES test set; `test_scaffolds` and `train` then default to MOSES's
    scaffold test and training sets), ``"embedded"`` (the shipped 2,000 test molecules; `train`
    defaults to the shipped 20,000 training molecules) or a test set (file or SMILES list). Without a
    scaffold test set the ``/TestSF`` metrics, without `train` Novelty, are skipped. `n_jobs` processes
    for RDKit work (None: all cores); `device` runs ChemNet and the similarity matmuls (``"cpu"``, ``"cuda"``).

    Returns a dict: the metrics of `METRIC_ORDER` that could be computed (floats), the counts
    ``n_input``, ``n_empty``, ``n_invalid``, ``n_valid``, ``n_unique``, ``n_novel``, ``skipped``
    (metric -> reason) and ``details`` (reference sizes, KL divergences, seconds per stage).
    """
    report = _Report()
    gen_smiles, test, scaf, train_list = _load_sets(generated, reference, test_scaffolds, train)
    report.lap("load")
    gen = _generated_set(gen_smiles, n_jobs)
    report.lap("generated: RDKit")
    _validity_metrics(report, gen, ks)
    gen_fcd = None
    if len(gen.used) >= 2:
        gen_fcd = chemnet_moments([r[0] for r in gen.records], gen.weights, batch_size=batch_size, device=device)
    report.lap("generated: ChemNet")

    options = dict(n_jobs=n_jobs, device=device, batch_size=batch_size, cache=cache)
    test_stats = _against_reference(report, "Test", test, gen, gen_fcd, props=True, kl=kl_score, **options)
    if scaf is None:
        report.skipped.update({f"{m}/TestSF": "no scaffold test set given" for m in ("FCD", "SNN", "Frag", "Scaf")})
    else:
        _against_reference(report, "TestSF", scaf, gen, gen_fcd, props=False, kl=False, **options)

    _diversity_metrics(report, gen, device)
    report.lap("IntDiv, Filters")
    n_novel = _novelty(report, gen, train_list, n_jobs, cache)
    report.lap("Novelty")
    _distribution_metrics(report, gen, test_stats, kl_score, n_jobs, device)
    report.lap("properties, KL")
    report.details["seconds"] = report.seconds

    order = [*METRIC_ORDER[:1], *[_label(k) for k in ks], *METRIC_ORDER[3:]]
    result: dict[str, Any] = {name: report.values[name] for name in order if name in report.values}
    result.update(n_input=gen.n_input, n_empty=gen.n_empty, n_invalid=gen.n_input - len(gen.valid),
                  n_valid=len(gen.valid), n_unique=len(set(gen.used)), n_novel=n_novel)
    result["skipped"] = {name: report.skipped[name] for name in order if name in report.skipped}
    result["details"] = report.details
    return result
