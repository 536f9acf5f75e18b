"""Build molvae/resources/moses_train_properties.npz: RDKit properties (by default logP, QED, SA, MW and TPSA:
the head's targets and the conditions a conditional model reads) of the MOSES training split as molvae reads it
(canonical SMILES, file order), so that full-MOSES training on a new machine skips computing them.

    python scripts/build_moses_properties.py [--n-jobs 2] [--names logp qed sa mw tpsa] [--out PATH]

Reads the split through the same validation as `molvae train --data moses` (with the SMILES tokenizer and
max_len 120, which keep every molecule), computing the properties (or reading the local property cache),
then writes the float16 table (`molvae.data.moses_properties`) and checks that it is found again.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from rdkit import __version__ as rdkit_version

from molvae.data import validation
from molvae.data.moses_properties import SHIPPED_PATH, shipped_properties, write_table
from molvae.data.tokens import Tokenizer

NAMES = ("logp", "qed", "sa", "mw", "tpsa")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--data", default="moses")
    parser.add_argument("--out", type=Path, default=SHIPPED_PATH)
    parser.add_argument("--names", nargs="+", default=list(NAMES), help="RDKit property names (chem.PROPERTY_NAMES)")
    args = parser.parse_args(argv)
    names = tuple(args.names)
    t0 = time.perf_counter()
    df, _ = validation.load_molecules(args.data, properties=names, tokenizer=Tokenizer("smiles"), max_len=120,
                                      rejected_path=None, n_jobs=args.n_jobs)
    smiles = df["smiles"].tolist()
    path = write_table(args.out, smiles, {n: df[n].to_numpy() for n in names}, rdkit_version)
    found = shipped_properties(smiles, names, path)
    worst = {n: float(np.max(np.abs(found[n] - df[n].to_numpy()))) for n in names}
    print(f"{len(smiles):,} molecules -> {path} ({path.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t0:.0f} s); "
          "largest float16 error: " + ", ".join(f"{n} {v:.4f}" for n, v in worst.items()))


if __name__ == "__main__":
    main()
