"""Checking and tokenizing user molecules before they reach the encoder.

Every input row is checked up front (parse, tokenize, vocabulary), so a bad molecule is
reported by row, value and reason, and never stops a batch half way through.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from molvae import chem
from molvae.errors import DataError, TokenizationError, UsageError
from molvae.data.tokens import Tokenizer, Vocabulary

__all__ = ["EncodedInputs", "check_molecule", "encode_inputs", "encode_batched", "ON_INVALID"]

ON_INVALID = ("error", "skip")
_SHOWN = 5  # rows named in an error or warning message


@dataclass(frozen=True)
class EncodedInputs:
    """ids: one id list (BOS..EOS) per accepted row; rows: their input indices (m,) int64;
    rejected: DataFrame (row, smiles, reason) of the others."""

    ids: list[list[int]]
    rows: np.ndarray
    rejected: pd.DataFrame


def check_molecule(smiles: Any, tokenizer: Tokenizer, vocab: Vocabulary) -> tuple[list[int] | None, str | None]:
    """(ids, None) for a molecule the model can encode, else (None, reason).

    The SMILES is canonicalized as the training data were (SMILES models), or encoded
    to SELFIES from its canonical form (SELFIES models). Reasons name the RDKit error or
    the tokens outside the vocabulary.
    """
    mol, reason = chem.parse(smiles)
    if mol is None:
        return None, f"not a valid SMILES ({reason})"
    from rdkit import Chem

    canon = Chem.MolToSmiles(mol)
    try:
        tokens = tokenizer.tokenize(canon)
    except TokenizationError as exc:
        return None, f"cannot be tokenized ({exc})"
    unknown = vocab.unknown_tokens(tokens)
    if unknown:
        listed = ", ".join(repr(t) for t in unknown)
        noun = "token" if len(unknown) == 1 else "tokens"
        verb = "is" if len(unknown) == 1 else "are"
        return None, f"{noun} {listed} {verb} not in the model's vocabulary"
    return vocab.encode(tokens), None


def _describe(rejected: pd.DataFrame) -> str:
    shown = "; ".join(f"row {r.row} {str(r.smiles)!r}: {r.reason}" for r in rejected.head(_SHOWN).itertuples())
    more = f"; and {len(rejected) - _SHOWN} more" if len(rejected) > _SHOWN else ""
    return shown + more


def encode_inputs(items: Sequence[Any], tokenizer: Tokenizer, vocab: Vocabulary,
                  on_invalid: str = "error") -> EncodedInputs:
    """Check and tokenize every input (rows are 0-based input indices).

    on_invalid="error": DataError naming the bad rows, values and reasons (up to five);
    "skip": leave them out with a RuntimeWarning that names them.
    """
    if on_invalid not in ON_INVALID:
        raise UsageError(f"on_invalid must be 'error' or 'skip', got {on_invalid!r}")
    ids: list[list[int]] = []
    rows: list[int] = []
    bad: list[tuple[int, Any, str]] = []
    for i, smi in enumerate(items):
        seq, reason = check_molecule(smi, tokenizer, vocab)
        if seq is None:
            bad.append((i, smi, reason or "unknown problem"))
        else:
            ids.append(seq)
            rows.append(i)
    rejected = pd.DataFrame(bad, columns=["row", "smiles", "reason"])
    if bad:
        what = f"{len(bad)} of {len(items)} molecules"
        if on_invalid == "error":
            raise DataError(f"{what} cannot be encoded: {_describe(rejected)}. "
                            "Pass on_invalid='skip' (CLI: --on-invalid skip) to leave such rows out.")
        warnings.warn(f"skipped {what} that cannot be encoded: {_describe(rejected)}", RuntimeWarning, stacklevel=3)
    return EncodedInputs(ids, np.asarray(rows, dtype=np.int64), rejected)


def encode_batched(model: Any, seqs: list[list[int]], batch_size: int = 1024,
                   precision: str = "fp32") -> tuple[np.ndarray, np.ndarray]:
    """Posterior mu and logvar, each (n, Z) float32, for id sequences (BOS..EOS) on the
    model's device; sequences of similar length share a batch (less padding)."""
    import torch

    from molvae.model.inference import autocast

    device = next(model.parameters()).device
    pad = model.cfg.pad_id
    n, latent = len(seqs), model.cfg.latent_dim
    mu = np.zeros((n, latent), dtype=np.float32)
    logvar = np.zeros_like(mu)
    order = np.argsort([len(s) for s in seqs], kind="stable")
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        lengths = torch.tensor([len(seqs[i]) for i in idx], dtype=torch.long)
        ids = torch.full((len(idx), int(lengths.max())), pad, dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, :len(seqs[i])] = torch.tensor(seqs[i])
        with torch.no_grad(), autocast(device, precision):
            m, lv = model.encode(ids.to(device), lengths.to(device))
        mu[idx], logvar[idx] = m.float().cpu().numpy(), lv.float().cpu().numpy()
    return mu, logvar
