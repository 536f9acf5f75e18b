"""The applicability domain of a model: one `anomaly` score from the raw scores of
`molvae.analysis.scores`, and the threshold above which a molecule is out of the domain; `score_table` is
`MolVAE.score`.

How the score is made: each raw score is oriented so that higher means less like the training data
(NLL per token, KL, minus the log-density, minus the nearest-neighbour similarity), turned into a robust
z-score with the median and the scaled interquartile range of held-out training molecules, and the
z-scores are averaged. The threshold is the `quantile` (0.99) of that average over the same held-out
molecules, so about 1% of molecules like the training data are flagged.

Stored in the checkpoint directory as JSON: `domain.json` (the statistics, the threshold, how they were
made) and `domain_reference.json` (the training molecules the nearest-neighbour similarity compares
with). Their fingerprints are computed on first use and cached as a plain .npz under the molvae cache.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from molvae import arguments
from molvae.errors import CheckpointError, DataError
from molvae.analysis.scores import FP_BITS, fingerprint_matrix, score_terms

if TYPE_CHECKING:
    from molvae.generation.codec import MoleculeCodec
    from molvae.generation.prior import LatentPrior

__all__ = ["Domain", "ANOMALY_TERMS", "DOMAIN_FILE", "REFERENCE_FILE", "calibrate_domain", "apply_domain",
           "score_table"]

DOMAIN_FILE = "domain.json"
REFERENCE_FILE = "domain_reference.json"
FORMAT = "molvae-domain"
# name -> (raw column, sign): badness = sign * raw (per token for the NLL)
ANOMALY_TERMS: dict[str, tuple[str, float]] = {
    "nll_per_token": ("nll", 1.0), "kl": ("kl", 1.0), "log_density": ("log_density", -1.0),
    "nn_similarity": ("nn_similarity", -1.0),
}
_IQR_TO_STD = 1.349  # the interquartile range of a normal distribution in standard deviations


def _badness(terms: pd.DataFrame, name: str) -> np.ndarray:
    column, sign = ANOMALY_TERMS[name]
    raw = terms[column].to_numpy(dtype=np.float64)
    if name == "nll_per_token":
        raw = raw / np.maximum(terms["n_tokens"].to_numpy(), 1)
    return sign * raw


@dataclass(frozen=True)
class Domain:
    """A calibrated applicability domain. center/scale: per anomaly term (`ANOMALY_TERMS`), the median and
    robust standard deviation of its badness over held-out training molecules; threshold: the `quantile`
    of their anomaly; reference: training SMILES for the nearest-neighbour similarity; info: provenance."""

    center: Mapping[str, float]
    scale: Mapping[str, float]
    threshold: float
    quantile: float
    reference: tuple[str, ...]
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(self.center)

    def anomaly(self, terms: pd.DataFrame) -> np.ndarray:
        """Anomaly (n,) float64 of raw score rows: the mean robust z-score of the badness terms; +inf where
        a term is missing (the model cannot spell the molecule, or RDKit cannot parse it)."""
        z = np.stack([(_badness(terms, t) - self.center[t]) / self.scale[t] for t in self.terms], axis=1)
        out = z.mean(1)
        return np.where(np.isnan(out), np.inf, out)

    def reference_fingerprints(self, cache: bool = True) -> torch.Tensor:
        """The reference molecules' fingerprints, unpacked (m, FP_BITS) float32 0/1, cached as .npz."""
        from molvae.data.datasets import cache_dir
        from molvae.files import content_key, load_npz, save_npz

        path = cache_dir() / "domain" / f"{content_key(self.reference, f'morgan2-{FP_BITS}')}.npz"
        stored = load_npz(path) if cache else None
        if stored is None or stored.get("fps", np.zeros((0, 0))).shape[0] != len(self.reference):
            fps, ok = fingerprint_matrix(list(self.reference))
            fps = fps[ok]
            if cache:
                save_npz(path, {"fps": fps})
        else:
            fps = stored["fps"]
        return torch.from_numpy(np.unpackbits(fps, axis=1).astype(np.float32))

    @cached_property
    def reference_matrix(self) -> torch.Tensor:
        """`reference_fingerprints()`, computed (or read from the cache) once per Domain object."""
        return self.reference_fingerprints()

    # ------------------------------------------------------------------ storage
    def save(self, directory: str | Path) -> None:
        """Write `domain.json` and `domain_reference.json` into a checkpoint directory, atomically."""
        from molvae.files import atomic_write_text, json_text

        directory = Path(directory)
        doc = {"format": FORMAT, "format_version": 1, "threshold": self.threshold, "quantile": self.quantile,
               "center": dict(self.center), "scale": dict(self.scale), "n_reference": len(self.reference),
               "fingerprint": f"morgan r=2 {FP_BITS} bits", **dict(self.info)}
        atomic_write_text(directory / REFERENCE_FILE, json.dumps({"smiles": list(self.reference)}) + "\n")
        atomic_write_text(directory / DOMAIN_FILE, json_text(doc))

    @classmethod
    def load(cls, directory: str | Path) -> Domain | None:
        """The domain stored in a checkpoint directory, or None when it has none."""
        path, ref_path = Path(directory) / DOMAIN_FILE, Path(directory) / REFERENCE_FILE
        if not path.is_file():
            return None
        try:
            doc = json.loads(path.read_text())
            reference = tuple(json.loads(ref_path.read_text())["smiles"]) if ref_path.is_file() else ()
            if doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format')!r}")
            center = {k: float(v) for k, v in doc["center"].items()}
            scale = {k: float(v) for k, v in doc["scale"].items()}
            if set(center) != set(scale) or not set(center) <= set(ANOMALY_TERMS):
                raise ValueError(f"unknown terms {sorted(set(center) | set(scale))}")
            known = {"format", "format_version", "threshold", "quantile", "center", "scale", "n_reference",
                     "fingerprint"}
            return cls(center, scale, float(doc["threshold"]), float(doc["quantile"]), reference,
                       {k: v for k, v in doc.items() if k not in known})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{path}: unreadable applicability domain ({exc}); recalibrate it with "
                                  "`molvae domain`") from exc


def apply_domain(terms: pd.DataFrame, domain: Domain | None) -> pd.DataFrame:
    """Add `anomaly` and `in_domain` to raw score rows (in place; returns them). Without a domain both
    are missing (NaN / None). A row with a `reason` is never in the domain."""
    if domain is None:
        terms["anomaly"] = np.nan
        terms["in_domain"] = pd.Series([None] * len(terms), dtype=object)
        return terms
    anomaly = domain.anomaly(terms)
    terms["anomaly"] = anomaly
    terms["in_domain"] = (anomaly <= domain.threshold) & (terms["reason"].to_numpy() == "")
    return terms


def calibrate_domain(codec: MoleculeCodec, prior: LatentPrior, smiles: Sequence[str], n_reference: int = 15_000,
                     n_calibration: int = 5_000, quantile: float = 0.99, seed: int = 0, source: str | None = None,
                     progress: Callable[[int], None] | None = None) -> Domain:
    """Calibrate the applicability domain of a model (`codec` and its latent `prior`) on its training
    molecules `smiles`: a seeded random
    `n_reference` of them become the nearest-neighbour reference, and `n_calibration` others, scored
    against it, give the term statistics and the threshold (their `quantile` of the anomaly). Molecules
    the model cannot spell are left out of the calibration set. Raises DataError when fewer than 100
    remain; `progress(k)` is called after each chunk of k calibration molecules."""
    n_reference = arguments.positive_int(n_reference, "n_reference")
    n_calibration = arguments.positive_int(n_calibration, "n_calibration")
    quantile = arguments.number(quantile, "quantile", 0.5, 1.0, lo_open=True)
    items = [s for s in dict.fromkeys(smiles) if isinstance(s, str) and s]
    order = np.random.default_rng(seed).permutation(len(items))
    n_ref = min(n_reference, max(len(items) - 100, 0))
    reference = tuple(items[i] for i in order[:n_ref])
    held = [items[i] for i in order[n_ref:n_ref + n_calibration]]
    ref_fps, ok = fingerprint_matrix(list(reference))
    reference = tuple(s for s, good in zip(reference, ok) if good)
    ref = torch.from_numpy(np.unpackbits(ref_fps[ok], axis=1).astype(np.float32))
    parts = []
    for start in range(0, len(held), 2048):
        parts.append(score_terms(codec, prior, held[start:start + 2048], ref))
        if progress is not None:
            progress(len(held[start:start + 2048]))
    terms = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if len(terms):
        terms = terms[(terms["reason"] == "") & terms["nn_similarity"].notna()]
    if len(terms) < 100 or len(reference) < 1:
        raise DataError(f"only {len(terms)} of {len(held)} calibration molecules (and {len(reference)} reference "
                        "molecules) can be scored; an applicability domain needs at least 100 of each kind: "
                        "give more training molecules")
    center, scale = {}, {}
    for name in ANOMALY_TERMS:
        bad = _badness(terms, name)
        q25, q50, q75 = np.percentile(bad, [25, 50, 75])
        center[name], scale[name] = float(q50), float(max((q75 - q25) / _IQR_TO_STD, 1e-6))
    draft = Domain(center, scale, math.inf, quantile, reference)
    anomaly = draft.anomaly(terms)
    threshold = float(np.quantile(anomaly, quantile))
    info = {"n_calibration": int(len(terms)), "seed": int(seed), "source": source,
            "model_density": prior.kind,
            "calibration_anomaly": {f"p{int(round(q * 100))}": float(np.quantile(anomaly, q))
                                    for q in (0.5, 0.9, 0.95, 0.99)}}
    return Domain(center, scale, threshold, quantile, reference, info)


def score_table(codec: MoleculeCodec, prior: LatentPrior, domain: Domain | None, smiles: Sequence[Any],
                batch_size: int | None = None, chunk_size: int = 4096) -> pd.DataFrame:
    """`MolVAE.score`: the raw scores (`score_terms`) with `anomaly` and `in_domain` under `domain`, one row per
    input, in chunks of `chunk_size` molecules (memory bounded by the chunk); see `MolVAE.score` for the columns."""
    items = list(smiles)
    size, chunk_size = codec.batch_size(batch_size), arguments.positive_int(chunk_size, "chunk_size")
    reference = domain.reference_matrix if domain is not None else None
    parts = [apply_domain(score_terms(codec, prior, items[i:i + chunk_size], reference, size), domain)
             for i in range(0, len(items), chunk_size)]
    if not parts:
        parts = [apply_domain(score_terms(codec, prior, [], reference, size), domain)]
    df = pd.concat(parts, ignore_index=True)
    df.insert(0, "row", np.arange(len(df), dtype=np.int64))
    first = ["row", "smiles", "in_domain", "anomaly", "nll", "kl", "log_density", "nn_similarity"]
    return df[first + [c for c in df.columns if c not in first]]
