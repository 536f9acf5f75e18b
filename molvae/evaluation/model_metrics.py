"""Metrics of a trained model (protocol: docs/benchmarks.md): reconstruction accuracy, property-head accuracy and the
MOSES distribution metrics of samples over several seeds.

- Reconstruction: the first `recon_n` molecules of the test set, encoded to the posterior mean and
  greedily decoded; exact canonical-SMILES match. Molecules the model cannot encode (tokens outside its
  vocabulary) count as failures, and their number is reported.
- Property head: MAE and R^2 per property on the first `prop_n` test molecules, in original units, against
  RDKit values (or the file's column for the user's own properties).
- Distribution: `n_samples` prior samples per seed, scored by `moses.evaluate`; mean and std over seeds.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    from molvae.generation.api import MolVAE

__all__ = ["mae_r2", "reconstruction_accuracy", "property_accuracy", "evaluate_model", "summarize_seeds"]


def mae_r2(pred: np.ndarray, target: np.ndarray) -> tuple[float, float, int]:
    """(MAE, R^2, labelled count) of one property over the cells where `target` (n,) is finite.

    In the units of its inputs; R^2 = 1 - SS_res / SS_tot is the same in any affine rescaling of both, so it
    may be computed on standardized values. NaN where nothing is labelled (MAE) or fewer than two labels
    differ (R^2).
    """
    ok = np.isfinite(target)
    y, p = np.asarray(target, dtype=np.float64)[ok], np.asarray(pred, dtype=np.float64)[ok]
    if not len(y):
        return float("nan"), float("nan"), 0
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - p) ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    return float(np.abs(y - p).mean()), r2, int(len(y))


def reconstruction_accuracy(model: "MolVAE", smiles: Sequence[str]) -> dict[str, Any]:
    """Fraction of `smiles` whose greedy decoding of the posterior mean is the same canonical molecule."""
    df = model.reconstruct(list(smiles), on_invalid="skip", properties=())
    n = len(smiles)
    exact = int(df["exact"].sum())
    return {"recon_acc": exact / n if n else 0.0, "recon_n": n, "recon_not_encodable": n - len(df),
            "recon_valid": float(df["valid"].mean()) if len(df) else 0.0}


def property_accuracy(model: "MolVAE", smiles: Sequence[str]) -> dict[str, Any]:
    """MAE and R^2 of the property head per RDKit-computable property, on `smiles` (original units)."""
    pred = model.predict(list(smiles), on_invalid="skip", rdkit=True)
    out: dict[str, Any] = {"prop_n": len(pred)}
    for name in model.prop_names:
        if f"{name}_rdkit" not in pred:
            continue
        mae, r2, _ = mae_r2(pred[name].to_numpy(float), pred[f"{name}_rdkit"].to_numpy(float))
        out[f"mae_{name}"], out[f"r2_{name}"] = mae, r2
    return out


def summarize_seeds(runs: Sequence[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """{metric: (mean, sample std)} over per-seed result dicts, for the float metrics present in all."""
    keys = [k for k, v in runs[0].items() if isinstance(v, float) and all(isinstance(r.get(k), float) for r in runs)]
    return {k: (float(np.mean([r[k] for r in runs])),
                float(np.std([r[k] for r in runs], ddof=1)) if len(runs) > 1 else 0.0) for k in keys}


def evaluate_model(
    model: "MolVAE",
    test: Sequence[str],
    n_samples: int = 30_000,
    seeds: Sequence[int] = (0, 1, 2),
    recon_n: int = 1000,
    prop_n: int = 5000,
    reference: Any = "moses",
    n_jobs: int | None = None,
    **evaluate_kwargs: Any,
) -> dict[str, Any]:
    """All model metrics. `test`: the test SMILES whose first `recon_n` / `prop_n` molecules are used.

    Returns {"reconstruction": {...}, "property_head": {...}, "samples": [per-seed metrics],
    "summary": {metric: (mean, std)}, "seconds": {...}}.
    """
    from molvae.evaluation.moses import evaluate

    seconds: dict[str, float] = {}
    t = time.perf_counter()
    recon = reconstruction_accuracy(model, test[:recon_n]) if recon_n else {}
    seconds["reconstruction"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    props = property_accuracy(model, test[:prop_n]) if prop_n else {}
    seconds["property_head"] = round(time.perf_counter() - t, 1)
    runs = []
    for seed in seeds:
        t = time.perf_counter()
        df = model.sample(n_samples, seed=seed, properties=())
        seconds[f"sample_seed{seed}"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        runs.append(evaluate(df["smiles"].tolist(), reference=reference, n_jobs=n_jobs, **evaluate_kwargs))
        seconds[f"metrics_seed{seed}"] = round(time.perf_counter() - t, 1)
    return {"reconstruction": recon, "property_head": props, "samples": runs,
            "summary": summarize_seeds(runs) if runs else {}, "seconds": seconds}
