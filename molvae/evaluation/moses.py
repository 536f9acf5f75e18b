"""MOSES distribution-learning metrics, property Wasserstein distances, GuacaMol KL and FCD scores.

Definitions follow molsets 0.3.1 (`moses/metrics/metrics.py`, `utils.py`) line by line:

* **Valid**: fraction of inputs RDKit parses and sanitizes (empty strings and non-strings count as
  invalid). Everything below uses the valid molecules as canonical SMILES, duplicates kept.
* **Unique@k**: distinct canonical SMILES among the first k valid ones, / k.
* **FCD**: Fréchet ChemNet Distance between valid generated and reference molecules (`fcd_stats`).
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
mean above equals MOSES's duplicate-keeping mean. Reference statistics are cached as ``.npz``.
"""
from __future__ import annotations

import math
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from molvae import chem
from molvae.errors import UsageError
from molvae.evaluation.reference import (KL_DESCRIPTORS, KL_SIZE, PROPERTIES, ReferenceStats, chemnet_moments, collect_records,
                               frechet_distance, hash64, kl_arrays, mol_record, reference_stats, train_keys)
from molvae.evaluation.kernels import kl_divergences, tanimoto_reduce
from molvae.parallel import pmap

__all__ = [
    "evaluate", "format_table", "moses_reference", "reference_stats", "ReferenceStats",
    "internal_diversity", "cos_similarity", "METRIC_ORDER", "MOSES_BASELINES", "KL_DESCRIPTORS",
]


METRIC_ORDER: tuple[str, ...] = (
    "Valid", "Unique@1k", "Unique@10k", "FCD/Test", "FCD/TestSF", "SNN/Test", "SNN/TestSF", "Frag/Test",
    "Frag/TestSF", "Scaf/Test", "Scaf/TestSF", "IntDiv", "IntDiv2", "Filters", "Novelty",
    "logP", "SA", "QED", "weight", "KLScore", "FCDScore",
)
_PUBLISHED = ("Valid", "Unique@1k", "Unique@10k", "FCD/Test", "FCD/TestSF", "SNN/Test", "SNN/TestSF", "Frag/Test",
              "Frag/TestSF", "Scaf/Test", "Scaf/TestSF", "IntDiv", "IntDiv2", "Filters", "Novelty")
# The MOSES README's benchmark table (github.com/molecularsets/moses), mean and std over 3 seeds,
# 30,000 samples each.
MOSES_BASELINES: Mapping[str, Mapping[str, tuple[float, float | None]]] = {
    "Train": dict(zip(_PUBLISHED, [(v, None) for v in (1.0, 1.0, 1.0, .008, .476, .642, .586, 1.0, .999, .991,
                                                       0.0, .857, .851, 1.0, 1.0)])),
    "VAE": dict(zip(_PUBLISHED, [(.977, .001), (1.0, 0.0), (.998, .001), (.099, .013), (.567, .034), (.626, 0.0),
                                 (.578, .001), (.999, 0.0), (.998, 0.0), (.939, .002), (.059, .01), (.856, 0.0),
                                 (.85, 0.0), (.997, 0.0), (.695, .007)])),
    "CharRNN": dict(zip(_PUBLISHED, [(.975, .026), (1.0, 0.0), (.999, 0.0), (.073, .025), (.52, .038), (.601, .021),
                                     (.565, .014), (1.0, 0.0), (.998, 0.0), (.924, .006), (.11, .008), (.856, 0.0),
                                     (.85, 0.0), (.994, .003), (.842, .051)])),
    "JTN-VAE": dict(zip(_PUBLISHED, [(1.0, 0.0), (1.0, 0.0), (.9996, .0003), (.3954, .0234), (.9382, .0531),
                                     (.5477, .0076), (.5194, .007), (.9965, .0003), (.9947, .0002), (.8964, .0039),
                                     (.1009, .0105), (.8551, .0034), (.8493, .0035), (.976, .0016), (.9143, .0058)])),
}

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


def moses_reference(cache_dir: str | Path | None = None) -> dict[str, list[str]]:
    """MOSES ``train``, ``test`` and ``test_scaffolds`` SMILES lists, fetched once into the cache
    (see `molvae.data.datasets.fetch_moses`; `cache_dir` overrides ``$MOLVAE_DATA/moses``)."""
    import pandas as pd

    from molvae.data.datasets import fetch_moses

    return {split: pd.read_csv(path)["SMILES"].tolist() for split, path in fetch_moses(cache_dir).items()}


def _smiles_list(source: Any, what: str) -> list[str]:
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"{what}: {source!r} is neither 'moses' nor an existing file")
        from molvae.data.read import read_table

        df, col = read_table(path)
        return df[col].tolist()
    return list(source)


def _label(k: int) -> str:
    return f"Unique@{k // 1000}k" if k >= 1000 and k % 1000 == 0 else f"Unique@{k}"


# --------------------------------------------------------------------------- evaluate


class _Skip(Exception):
    """A metric that cannot be computed; the message is the reason reported in ``skipped``."""


def _run(name: str, fn: Any, out: dict[str, float], skipped: dict[str, str]) -> None:
    """Store ``fn()`` under `name`, or the reason it could not be computed: never NaN, never a crash."""
    try:
        value = fn()
    except _Skip as exc:
        skipped[name] = str(exc)
        return
    except (ValueError, ArithmeticError, np.linalg.LinAlgError, RuntimeError) as exc:
        skipped[name] = f"could not be computed: {type(exc).__name__}: {exc}"
        return
    if value is None or not math.isfinite(value):
        skipped[name] = "could not be computed (no finite value)"
    else:
        out[name] = float(value)


def _need(condition: bool, reason: str) -> None:
    if not condition:
        raise _Skip(reason)


def _reference_metrics(suffix: str, ref: ReferenceStats, g: Mapping[str, np.ndarray], weights: np.ndarray,
                       gen_fcd: tuple | None, device: str) -> tuple[Any, ...]:
    """Thunks computing FCD, SNN, Frag, Scaf of generated statistics `g` against `ref`."""
    n_used = int(weights.sum())
    none_valid = "no valid generated molecules"

    def fcd() -> float:
        _need(gen_fcd is not None, f"needs at least 2 valid molecules, got {n_used}")
        _need(ref.fcd_mu.size > 0, f"the {suffix} reference set has fewer than 2 valid molecules")
        return frechet_distance(gen_fcd[0], gen_fcd[1], ref.fcd_mu, ref.fcd_sigma)

    def snn() -> float:
        _need(n_used > 0, none_valid)
        _need(len(ref.fps) > 0, f"no valid molecules in the {suffix} reference set")
        return np.average(tanimoto_reduce(g["fps"], ref.fps, agg="max", device=device), weights=weights)

    def frag() -> float | None:
        _need(n_used > 0, none_valid)
        return cos_similarity(ref.frag(), dict(zip(g["frag_keys"].tolist(), g["frag_counts"].tolist())))

    def scaffold() -> float | None:
        _need(n_used > 0, none_valid)
        _need(len(g["scaf_keys"]) > 0, "no generated molecule has a Bemis-Murcko scaffold with >= 2 rings")
        _need(len(ref.scaf_keys) > 0, f"no {suffix} reference molecule has a scaffold with >= 2 rings")
        return cos_similarity(ref.scaf(), dict(zip(g["scaf_keys"].tolist(), g["scaf_counts"].tolist())))

    return fcd, snn, frag, scaffold


def evaluate(generated: Sequence[str] | str | Path, reference: str | Path | Sequence[str] = "moses",
             test_scaffolds: str | Path | Sequence[str] | None = None,
             train: str | Path | Sequence[str] | None = None, *, n_jobs: int | None = None,
             ks: Sequence[int] = (1000, 10000), device: str = "cpu", batch_size: int = 512,
             kl_score: bool = True, cache: bool = True) -> dict[str, Any]:
    """MOSES metrics of `generated` SMILES (a list, or a file readable by `molvae.data.read.read_table`).

    `reference`: ``"moses"`` (MOSES test set; `test_scaffolds` and `train` then default to MOSES's
    scaffold test and training sets) or a test set (file or SMILES list). Without a scaffold test
    set the ``/TestSF`` metrics, without `train` Novelty, are skipped. `n_jobs` processes for RDKit
    work (None: all cores); `device` runs ChemNet and the similarity matmuls (``"cpu"``, ``"cuda"``).

    Returns a dict: the metrics of `METRIC_ORDER` that could be computed (floats), the counts
    ``n_input``, ``n_empty``, ``n_invalid``, ``n_valid``, ``n_unique``, ``n_novel``, ``skipped``
    (metric -> reason) and ``details`` (reference sizes, KL divergences, seconds per stage).
    """
    clock, seconds = time.perf_counter(), {}

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 2)
        clock = now

    if isinstance(generated, str) and not Path(generated).is_file():
        raise UsageError("generated must be a list of SMILES or a file; got a single string that is not a file")
    gen = _smiles_list(generated, "generated")
    if isinstance(reference, str) and reference.lower() == "moses":
        moses = moses_reference()
        test = moses["test"]
        test_scaffolds = moses["test_scaffolds"] if test_scaffolds is None else test_scaffolds
        train = moses["train"] if train is None else train
    else:
        test = _smiles_list(reference, "reference")
    scaf = None if test_scaffolds is None else _smiles_list(test_scaffolds, "test_scaffolds")
    train_list = None if train is None else _smiles_list(train, "train")
    lap("load")

    out: dict[str, float] = {}
    skipped: dict[str, str] = {}
    canon = chem.canonical_many(gen, n_jobs)
    valid1 = [c for c in canon if c is not None]
    counts1 = Counter(valid1)
    records = pmap(partial(mol_record, filters=True, props=True), list(counts1), n_jobs)
    rec_of = {c: r for c, r in zip(counts1, records) if r is not None}
    valid2 = [rec_of[c][0] for c in valid1 if c in rec_of]  # MOSES re-canonicalizes the canonical SMILES
    distinct = list(rec_of)
    recs = [rec_of[c] for c in distinct]
    weights = np.array([counts1[c] for c in distinct], dtype=np.float64)
    g = collect_records(recs, weights, props=True)
    n_input, n_valid, n_used = len(gen), len(valid1), len(valid2)
    lap("generated: RDKit")
    none_valid = "no valid generated molecules" if n_input else "no molecules given"

    def valid() -> float:
        _need(n_input > 0, "no molecules given")
        return n_valid / n_input

    _run("Valid", valid, out, skipped)
    for k in ks:
        def unique(k: int = k) -> float:
            _need(n_used >= k, f"needs {k} valid molecules, got {n_used}")
            return len(set(valid2[:k])) / k

        _run(_label(k), unique, out, skipped)

    gen_fcd: tuple | None = None
    if n_used >= 2:
        gen_fcd = chemnet_moments([r[0] for r in recs], weights, batch_size=batch_size, device=device)
    lap("generated: ChemNet")

    details: dict[str, Any] = {}
    test_stats: ReferenceStats | None = None
    for suffix, ref_smiles in (("Test", test), ("TestSF", scaf)):
        names = [f"{m}/{suffix}" for m in ("FCD", "SNN", "Frag", "Scaf")]
        if ref_smiles is None:
            skipped.update({n: "no scaffold test set given" for n in names})
            continue
        is_test = suffix == "Test"
        ref = reference_stats(ref_smiles, props=is_test, kl=is_test and kl_score, n_jobs=n_jobs, device=device,
                              batch_size=batch_size, cache=cache)
        details[f"n_reference_{suffix}"] = ref.n_valid
        lap(f"reference {suffix}")
        for name, fn in zip(names, _reference_metrics(suffix, ref, g, weights, gen_fcd, device)):
            _run(name, fn, out, skipped)
        if is_test:
            test_stats = ref
        lap(f"metrics {suffix}")

    def intdiv(p: int) -> float:
        _need(n_used > 0, none_valid)
        return internal_diversity(g["fps"], weights, p=p, device=device)

    _run("IntDiv", lambda: intdiv(1), out, skipped)
    _run("IntDiv2", lambda: intdiv(2), out, skipped)

    def filters() -> float:
        _need(n_used > 0, none_valid)
        return np.average([r[5] for r in recs], weights=weights)

    _run("Filters", filters, out, skipped)
    lap("IntDiv, Filters")

    n_novel = None
    if train_list is None or len(train_list) == 0:
        skipped["Novelty"] = "no training set given"
    elif not valid2:
        skipped["Novelty"] = none_valid
    else:
        keys = train_keys(train_list, n_jobs, cache)
        unique2 = sorted(set(valid2))
        hashes = np.fromiter((hash64(s) for s in unique2), dtype=np.uint64, count=len(unique2))
        n_novel = int((~np.isin(hashes, keys)).sum())
        out["Novelty"] = n_novel / len(unique2)
        details["n_train"] = len(train_list)
    lap("Novelty")

    from scipy.stats import wasserstein_distance

    for col, (name, _) in enumerate(PROPERTIES):
        def wasserstein(col: int = col) -> float:
            _need(n_used > 0, none_valid)
            gv, rv = g["props"][:, col], test_stats.props[:, col]
            gm, rm = np.isfinite(gv), np.isfinite(rv)
            _need(gm.any() and rm.any(), "no finite property values")
            return wasserstein_distance(rv[rm], gv[gm], test_stats.weights[rm], weights[gm])

        _run(name, wasserstein, out, skipped)

    def kl() -> float:
        _need(kl_score, "not requested (kl_score=False)")
        _need(len(test_stats.kl_desc) >= 2, "the Test reference set has fewer than 2 distinct molecules")
        stereo_free = list(dict.fromkeys(rec_of[c][1] for c in valid1 if c in rec_of))[:KL_SIZE]
        _need(len(stereo_free) >= 2, f"needs at least 2 distinct valid molecules, got {len(stereo_free)}")
        desc, maxsim = kl_arrays(stereo_free, n_jobs, device)
        divs = kl_divergences(KL_DESCRIPTORS, test_stats.kl_desc, test_stats.kl_maxsim, desc, maxsim)
        details["kl_divergences"] = {k: round(v, 6) for k, v in divs.items()}
        details["kl_n_generated"], details["kl_n_reference"] = len(desc), len(test_stats.kl_desc)
        return float(np.mean([math.exp(-v) for v in divs.values()]))

    _run("KLScore", kl, out, skipped)
    if "FCD/Test" in out:
        out["FCDScore"] = math.exp(-0.2 * out["FCD/Test"])
    else:
        skipped["FCDScore"] = "needs FCD/Test"
    lap("properties, KL")
    details["seconds"] = seconds
    order = [*METRIC_ORDER[:1], *[_label(k) for k in ks], *METRIC_ORDER[3:]]
    result: dict[str, Any] = {name: out[name] for name in order if name in out}
    result.update(n_input=n_input, n_empty=sum(1 for s in gen if not isinstance(s, str) or not s.strip()),
                  n_invalid=n_input - n_valid, n_valid=n_valid, n_unique=len(set(valid2)), n_novel=n_novel)
    result["skipped"] = {name: skipped[name] for name in order if name in skipped}
    result["details"] = details
    return result


# --------------------------------------------------------------------------- table

_LOWER_IS_BETTER = ("FCD/Test", "FCD/TestSF", "logP", "SA", "QED", "weight")


def _cell(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f}±{np.std(values, ddof=1):.3f}"


def format_table(results: Mapping[str, Any] | Sequence[Mapping[str, Any]],
                 baselines: bool | Sequence[str] = True) -> str:
    """Plain-text table of `evaluate` results beside published MOSES rows.

    `results`: one result dict, a list of them (shown as mean±std, sample std, e.g. three seeds),
    or a mapping column name -> result dict or list. `baselines`: True for the MOSES VAE,
    CharRNN and JTN-VAE rows, False for none, or names from `MOSES_BASELINES` (``"Train"``, ``"VAE"``,
    ``"CharRNN"``). Metrics that were skipped show ``n/a`` with the reason below the table.
    """
    if isinstance(results, Mapping) and ("skipped" in results or "n_input" in results):
        runs: dict[str, list[Mapping[str, Any]]] = {"molvae": [results]}
    elif isinstance(results, Mapping):
        runs = {name: list(r) if isinstance(r, Sequence) else [r] for name, r in results.items()}
    else:
        runs = {"molvae": list(results)}
    names = (("VAE", "CharRNN", "JTN-VAE") if baselines is True else ()) if isinstance(baselines, bool) else tuple(baselines)
    unknown = [n for n in names if n not in MOSES_BASELINES]
    if unknown:
        raise UsageError(f"unknown baseline(s) {unknown}; choose from {sorted(MOSES_BASELINES)}")
    seen = [k for rs in runs.values() for r in rs for k in [*r, *r.get("skipped", {})] if isinstance(r.get(k), float)
            or k in r.get("skipped", {})]
    metrics = [m for m in METRIC_ORDER if m in seen or (names and m in _PUBLISHED)]
    extra = [m for m in dict.fromkeys(seen) if m not in metrics]  # Unique@k for other k go after Valid
    metrics[1:1] = [m for m in extra if m.startswith("Unique@")]
    metrics += [m for m in extra if not m.startswith("Unique@")]
    header = ["metric", *runs, *[f"MOSES {n}" for n in names]]
    rows = []
    for m in metrics:
        label = f"{m} (lower better)" if m in _LOWER_IS_BETTER else m
        cells = [_cell([float(r[m]) for r in rs if isinstance(r.get(m), float)]) for rs in runs.values()]
        for n in names:
            mean, std = MOSES_BASELINES[n].get(m, (None, None))
            cells.append("" if mean is None else f"{mean:.3f}" + ("" if std is None else f"±{std:.3f}"))
        rows.append([label, *cells])
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for name, rs in runs.items():
        r = rs[0]
        if "n_input" in r:
            novel = "" if r.get("n_novel") is None else f", {r['n_novel']} novel"
            lines.append(f"{name}: {r['n_input']} input, {r['n_valid']} valid ({r.get('n_empty', 0)} empty), "
                         f"{r['n_unique']} unique{novel}" + (f" (first of {len(rs)} runs)" if len(rs) > 1 else ""))
        for metric, reason in r.get("skipped", {}).items():
            lines.append(f"  {metric}: skipped, {reason}")
    return "\n".join(lines)
