"""From decoded token sequences to the molecule table every generation method returns.

One pass per molecule: detokenize (SELFIES -> SMILES), parse once with RDKit, take the
canonical SMILES and the requested properties. For long lists the pass runs in worker
processes (`parallel.pmap`); the functions it maps are module-level for that reason.

Table columns, in order: `smiles` (str, the decoded molecule as SMILES; "" if nothing
was decoded), `valid` (bool: RDKit parses and sanitizes it, at least one atom),
`canonical` (str, RDKit canonical SMILES; missing for invalid rows), one float64 column
per requested property (NaN for invalid rows), and `novel` (bool: valid and not in the
model's training set) when the training set is known.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import pandas as pd

from molvae import chem
from molvae.errors import TokenizationError
from molvae.parallel import pmap
from molvae.data.tokens import Tokenizer, Vocabulary

__all__ = ["property_names", "ids_to_tokens", "to_smiles", "analyze", "molecule_table", "novelty_mask"]


def property_names(properties: Sequence[str] | str | None) -> tuple[str, ...]:
    """Normalized RDKit property names (UsageError for unknown ones); None -> ()."""
    if properties is None:
        return ()
    if isinstance(properties, str):
        properties = (properties,)
    names = tuple(dict.fromkeys(chem.property_name(p) for p in properties))
    return names


def ids_to_tokens(ids: np.ndarray, vocab: Vocabulary) -> list[tuple[str, ...]]:
    """Token tuples for generated id rows (B, L): up to the first EOS, PAD/BOS skipped."""
    i2t = vocab.id_to_token
    eos, pad, bos = vocab.eos_id, vocab.pad_id, vocab.bos_id
    out = []
    for row in ids.tolist():
        toks = []
        for i in row:
            if i == eos:
                break
            if i != pad and i != bos:
                toks.append(i2t[i])
        out.append(tuple(toks))
    return out


def to_smiles(tokens: Sequence[str], tokenizer: Tokenizer) -> str:
    """The SMILES string of a decoded token sequence ("" when a SELFIES sequence cannot be
    decoded: then there is no molecule)."""
    try:
        return tokenizer.detokenize(tokens)
    except TokenizationError:
        return ""


def _row(item: tuple[str, ...] | str, tokenizer: Tokenizer | None,
         names: tuple[str, ...]) -> tuple[str, str | None, list[float]]:
    """(smiles, canonical or None, property values) for tokens (or a SMILES if no tokenizer)."""
    smiles = item if tokenizer is None else to_smiles(item, tokenizer)
    mol = chem.to_mol(smiles) if smiles else None
    if mol is None:
        return smiles, None, [float("nan")] * len(names)
    from rdkit import Chem

    values = chem.mol_properties(mol, names) if names else {}
    return smiles, Chem.MolToSmiles(mol), [values[n] for n in names]


def analyze(items: Sequence[tuple[str, ...]] | Sequence[str], tokenizer: Tokenizer | None,
            names: tuple[str, ...] = (), n_jobs: int | None = 1) -> pd.DataFrame:
    """The molecule table (smiles, valid, canonical, properties) for token sequences
    (or for SMILES strings when `tokenizer` is None); index 0..n-1."""
    with chem.rdkit_quiet():
        rows = pmap(partial(_row, tokenizer=tokenizer, names=names), list(items), n_jobs)
    canon = [r[1] for r in rows]
    df = pd.DataFrame({
        "smiles": pd.Series([r[0] for r in rows], dtype=object),
        "valid": np.fromiter((c is not None for c in canon), dtype=bool, count=len(canon)),
        "canonical": pd.Series(canon, dtype=object),
    })
    if names:
        values = np.asarray([r[2] for r in rows], dtype=np.float64).reshape(len(rows), len(names))
        for j, name in enumerate(names):
            df[name] = values[:, j]
    return df


def novelty_mask(canonical: Sequence[str | None], is_known: Callable[[Sequence[str]], np.ndarray]) -> np.ndarray:
    """bool (n,): True where the canonical SMILES is present and `is_known` says it is not
    in the training set. `is_known` maps a list of canonical SMILES to a bool array."""
    present = np.fromiter((isinstance(c, str) for c in canonical), dtype=bool, count=len(canonical))
    out = np.zeros(len(canonical), dtype=bool)
    idx = np.flatnonzero(present)
    if len(idx):
        out[idx] = ~np.asarray(is_known([canonical[i] for i in idx]), dtype=bool)
    return out


def molecule_table(items: Sequence[tuple[str, ...]] | Sequence[str], tokenizer: Tokenizer | None,
                   names: tuple[str, ...] = (), n_jobs: int | None = 1,
                   is_known: Callable[[Sequence[str]], np.ndarray] | None = None) -> pd.DataFrame:
    """`analyze` plus the `novel` column when `is_known` (the training-set lookup) is given."""
    df = analyze(items, tokenizer, names, n_jobs)
    if is_known is not None:
        df["novel"] = novelty_mask(df["canonical"].tolist(), is_known)
    return df
