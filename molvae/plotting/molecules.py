"""Pictures of molecules: grids with legends (RDKit Draw) and DataFrames that show
structures in notebooks.

Latent maps and training curves (matplotlib) belong here too.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from molvae.errors import UsageError

__all__ = ["grid", "show", "legend_text"]


def legend_text(column: str, value: Any) -> str:
    """Legend for one molecule: "QED 0.84", "logp 2.31", "novel True", or the text itself."""
    label = {"qed": "QED", "sa": "SA", "logp": "logP", "plogp": "pen. logP", "similarity": "sim"}.get(column, column)
    if isinstance(value, float):
        return f"{label} {'nan' if math.isnan(value) else format(value, '.3g' if abs(value) >= 10 else '.2f')}"
    if column == "smiles":
        return str(value)
    return f"{label} {value}"


def grid(
    df: pd.DataFrame,
    n: int = 24,
    legend: str | None = "qed",
    path: str | os.PathLike[str] | None = None,
    mols_per_row: int = 6,
    size: int = 250,
) -> Any:
    """Draw the first `n` valid molecules of `df` (column `smiles`) in a grid.

    `legend` is a column shown under each molecule (default QED, skipped if the frame has
    no such column; None: no legends). Returns a PIL image, or writes a PNG to `path`
    (atomically) and returns the Path. Each cell is `size` x `size` pixels.
    """
    from rdkit.Chem import Draw

    from molvae import chem
    from molvae.files import atomic_path

    if n <= 0 or mols_per_row <= 0 or size <= 0:
        raise UsageError(f"grid needs positive n, mols_per_row and size (got {n}, {mols_per_row}, {size})")
    if "smiles" not in df:
        raise UsageError("grid needs a DataFrame with a 'smiles' column")
    if legend is not None and legend not in df:
        if legend != "qed":
            raise UsageError(f"no column {legend!r} to use as legend; columns: {list(df.columns)}")
        legend = None
    mols, legends = [], []
    for _, row in df.iterrows():
        mol = chem.to_mol(row["smiles"])
        if mol is None:
            continue
        mols.append(mol)
        legends.append("" if legend is None else legend_text(legend, row[legend]))
        if len(mols) == n:
            break
    if not mols:
        raise UsageError("no valid molecule to draw")
    image = Draw.MolsToGridImage(mols, molsPerRow=min(mols_per_row, len(mols)), subImgSize=(size, size),
                                 legends=legends, returnPNG=False)
    if path is None:
        return image
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise UsageError(f"grid images are written as PNG; got {target.name!r}")
    with atomic_path(target) as tmp:
        image.save(tmp, format="PNG")
    return target


def show(df: pd.DataFrame, smiles_col: str = "smiles", mol_col: str = "mol") -> pd.DataFrame:
    """A copy of `df` with a column of RDKit molecules that notebooks render as pictures.

    Invalid SMILES give None. Write the original frame to files, not this one
    (`io.write_molecules` drops the picture column anyway).
    """
    from rdkit.Chem import PandasTools

    from molvae import chem

    out = df.copy()
    with chem.rdkit_quiet():
        PandasTools.AddMoleculeColumnToFrame(out, smilesCol=smiles_col, molCol=mol_col)
    return out
