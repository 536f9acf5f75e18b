"""The MOSES metric order, the published MOSES benchmark rows, and a plain-text table of `evaluate`
results beside them."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from molvae.errors import UsageError

__all__ = ["METRIC_ORDER", "MOSES_BASELINES", "format_table"]

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
