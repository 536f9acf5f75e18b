"""Write the shipped MOSES reference statistics (`molvae.evaluation.shipped`) into molvae/resources/.

For each MOSES test set the full statistics come from `reference_stats` with the options
`moses.evaluate` uses (so from the metrics cache when an evaluation has already computed them, which
is how the shipped files were built; otherwise they are computed here, about 45 minutes on 2 cores),
never from shipped files. The set-level part is then packed and written; a round trip through
`shipped.lookup` is checked before the script reports the sizes.

    python scripts/build_reference_stats.py [--out DIR] [--n-jobs N] [--limit N]

A maintenance tool, not a benchmark (`python -m molvae.bench.reference_stats_check` checks the shipped files);
`--limit N` builds files for the first N molecules of each set (the tests, into a temporary --out).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import numpy as np


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    """Build the files as the command line `argv` says; returns {split: file written}."""
    from molvae.data.datasets import dataset_path
    from molvae.data.read import read_table
    from molvae.evaluation import shipped

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=shipped.SHIPPED_DIR)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="the first N molecules of each set only")
    args = parser.parse_args(argv)
    saved, written = shipped.SHIPPED_DIR, {}
    try:
        for split, name in shipped.SHIPPED_FILES.items():
            df, col = read_table(dataset_path("moses", split))
            written[split] = _build(split, df[col].tolist()[: args.limit], args.out / name, args.n_jobs)
    finally:
        shipped.SHIPPED_DIR = saved
    return written


def _build(split: str, smiles: list[str], path: Path, n_jobs: int | None) -> Path:
    """Write the shipped statistics of `smiles` to `path` and check that they survive `shipped.lookup`."""
    from molvae.bench.reference_stats_check import write_shipped_stats
    from molvae.evaluation import shipped

    stats, path = write_shipped_stats(split, smiles, path, n_jobs)
    shipped.SHIPPED_DIR = path.parent
    fields, _ = shipped.lookup(smiles, kl=shipped.SPLIT_OPTIONS[split]["kl"])
    for key, value in fields.items():
        want = stats.to_arrays()[key]
        same = value.tolist() == want.tolist() if want.dtype.kind == "U" else np.array_equal(value, want)
        assert same and value.dtype.kind == want.dtype.kind, f"{split}: {key} does not survive the round trip"
    print(f"{split}: {len(smiles)} SMILES ({stats.source}), {path} {path.stat().st_size / 1e6:.2f} MB")
    return path


if __name__ == "__main__":
    main()
