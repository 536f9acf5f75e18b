"""Check the shipped MOSES reference statistics against a fresh recomputation.

For each MOSES test set, `reference_stats` is run twice without the metrics cache: once through the
shipped statistics (which must be found for this content) and once computing everything. Every field
is compared (`shipped.compare_stats`: exact for keys, counts and fingerprints; floats to rtol 1e-6),
plus the FCD between the two ChemNet Gaussians. Prints a table, writes JSON, exits 1 on a difference.

On the whole sets this recomputes ChemNet over 352,299 molecules (about 45 minutes on 2 cores).
``--limit N`` checks the first N molecules of each set instead, with shipped files built for them
through the shipping code path (`shipped.write_shipped`) in a temporary directory.

    python -m molvae.bench.reference_stats_check [--limit N] [--json PATH] [--n-jobs N] [--device cpu]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

__all__ = ["write_shipped_stats", "main"]


def write_shipped_stats(split: str, smiles: list[str], path: Path, n_jobs: int | None, device: str = "cpu",
                        cache: bool = True) -> tuple[Any, Path]:
    """Compute the statistics of MOSES set `split` for `smiles` (never from shipped files) and write them to
    `path` as the package's shipped files are written; returns (the statistics, the file)."""
    from rdkit import __version__ as rdkit_version

    from molvae.evaluation import shipped
    from molvae.evaluation.reference import reference_stats

    stats = reference_stats(smiles, **shipped.SPLIT_OPTIONS[split], n_jobs=n_jobs, device=device, cache=cache,
                            use_shipped=False)
    return stats, shipped.write_shipped(path, stats.to_arrays(), smiles, rdkit_version)


def _shipped_for_subsets(subsets: dict[str, list[str]], n_jobs: int | None, device: str) -> Path:
    """Shipped files for `subsets` in a temporary directory, written as the package's were."""
    from molvae.evaluation import shipped

    directory = Path(tempfile.mkdtemp(prefix="molvae_shipped_"))
    for split, smiles in subsets.items():
        write_shipped_stats(split, smiles, directory / shipped.SHIPPED_FILES[split], n_jobs, device, cache=False)
    return directory


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the check as the command line `argv` says; print the tables, write --json; returns the report (its
    "passed"). As a command it exits 1 on a difference."""
    from molvae.data.datasets import dataset_path
    from molvae.data.read import read_table
    from molvae.evaluation import shipped

    parser = argparse.ArgumentParser(prog="python -m molvae.bench.reference_stats_check",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="check the first N molecules of each set")
    parser.add_argument("--json", type=Path, default=Path("reference_stats_check.json"))
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    subsets = {}
    for split in shipped.SHIPPED_FILES:
        df, col = read_table(dataset_path("moses", split))
        subsets[split] = df[col].tolist()[:args.limit]
    saved = shipped.SHIPPED_DIR
    if args.limit is not None:
        shipped.SHIPPED_DIR = _shipped_for_subsets(subsets, args.n_jobs, args.device)
    try:
        report = _compare(subsets, args.limit, args.n_jobs, args.device)
    finally:
        shipped.SHIPPED_DIR = saved
    report["seconds"] = round(time.perf_counter() - t0, 1)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'PASS' if report['passed'] else 'FAIL'} in {report['seconds']} s; wrote {args.json}")
    return report


def _compare(subsets: dict[str, list[str]], limit: int | None, n_jobs: int | None, device: str) -> dict[str, Any]:
    """Shipped against recomputed statistics of each set; prints one table per set."""
    from molvae.evaluation import shipped
    from molvae.evaluation.reference import reference_stats

    report: dict[str, Any] = {"limit": limit, "shipped_dir": str(shipped.SHIPPED_DIR), "splits": {}}
    ok = True
    for split, smiles in subsets.items():
        options = dict(**shipped.SPLIT_OPTIONS[split], n_jobs=n_jobs, device=device, cache=False)
        got = reference_stats(smiles, **options)
        if not got.source.startswith("shipped"):
            print(f"{split}: no shipped statistics match these {len(smiles)} SMILES ({got.source})")
            ok = False
            continue
        want = reference_stats(smiles, **options, use_shipped=False)
        rows = shipped.compare_stats(got, want)
        ok &= all(r["ok"] for r in rows)
        report["splits"][split] = {"n_smiles": len(smiles), "source": got.source, "rows": rows}
        print(f"\n{split}: {len(smiles)} SMILES, shipped {got.source} vs recomputed")
        print(f"  {'field':<20} {'shape':<14} {'equal':<6} {'max_abs':>10} {'max_rel':>10}  ok")
        for r in rows:
            num = [f"{r[k]:.3g}" if k in r else "" for k in ("max_abs", "max_rel")]
            print(f"  {r['field']:<20} {str(r['shape']):<14} {str(r['equal']):<6} {num[0]:>10} {num[1]:>10}  {r['ok']}")
    report["passed"] = ok
    return report


if __name__ == "__main__":
    sys.exit(0 if main()["passed"] else 1)
