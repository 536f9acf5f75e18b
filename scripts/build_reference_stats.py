#!/usr/bin/env python
"""Write the shipped MOSES reference statistics (`molvae.evaluation.shipped`) into molvae/resources/.

For each MOSES test set the full statistics come from `reference_stats` with the options
`moses.evaluate` uses (so from the metrics cache when an evaluation has already computed them, which
is how the shipped files were built; otherwise they are computed here, about 45 minutes on 2 cores),
never from shipped files. The set-level part is then packed and written; a round trip through
`shipped.lookup` is checked before the script reports the sizes.

    python scripts/build_reference_stats.py [--out DIR] [--n-jobs N]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    from rdkit import __version__ as rdkit_version

    from molvae.data.datasets import dataset_path
    from molvae.data.read import read_table
    from molvae.evaluation import shipped
    from molvae.evaluation.reference import reference_stats

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=shipped.SHIPPED_DIR)
    parser.add_argument("--n-jobs", type=int, default=None)
    args = parser.parse_args()
    for split, name in shipped.SHIPPED_FILES.items():
        df, col = read_table(dataset_path("moses", split))
        smiles = df[col].tolist()
        stats = reference_stats(smiles, **shipped.SPLIT_OPTIONS[split], n_jobs=args.n_jobs, use_shipped=False)
        path = shipped.write_shipped(args.out / name, stats.to_arrays(), smiles, rdkit_version)
        shipped.SHIPPED_DIR = args.out
        fields, _ = shipped.lookup(smiles, kl=shipped.SPLIT_OPTIONS[split]["kl"])
        for key, value in fields.items():
            want = stats.to_arrays()[key]
            same = value.tolist() == want.tolist() if want.dtype.kind == "U" else np.array_equal(value, want)
            assert same and value.dtype.kind == want.dtype.kind, f"{split}: {key} does not survive the round trip"
        print(f"{split}: {len(smiles)} SMILES ({stats.source}), {path} {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
