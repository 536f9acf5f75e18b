"""Checking and tokenizing user molecules before they reach the encoder.

Every input row is checked up front (parse, tokenize, vocabulary), so a bad molecule is
reported by row, value and reason, and never stops a batch half way through.

Molecules as chemists write them: most drugs have stereocentres, and a model trained on MOSES has no
stereo tokens. A molecule the vocabulary can spell once its stereochemistry is removed, or once it is
standardized (largest fragment, neutralized: `chem.standardize`), is encoded in that form and flagged
(`stereo_removed`, `standardized`), with one summary warning; `strict=True` refuses such molecules instead.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from molvae import chem
from molvae.errors import DataError, TokenizationError, UsageError
from molvae.data.tokens import Tokenizer, Vocabulary

__all__ = ["EncodedInputs", "Spelling", "check_molecule", "spell_molecule", "length_reason", "encode_inputs",
           "encode_batched", "pad_sequences", "padded_batches", "ON_INVALID"]

ON_INVALID = ("error", "skip")
_SHOWN = 5  # rows named in an error or warning message


@dataclass(frozen=True)
class EncodedInputs:
    """ids: one id list (BOS..EOS) per accepted row; rows: their input indices (m,) int64;
    rejected: DataFrame (row, smiles, reason) of the others. For the accepted rows: smiles, the canonical
    SMILES actually encoded; stereo_removed and standardized (m,) bool, how it differs from the input."""

    ids: list[list[int]]
    rows: np.ndarray
    rejected: pd.DataFrame
    smiles: list[str] = field(default_factory=list)
    stereo_removed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    standardized: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def flags(self) -> pd.DataFrame:
        """`stereo_removed` and `standardized` columns, one row per accepted input (to join a result table)."""
        return pd.DataFrame({"stereo_removed": self.stereo_removed, "standardized": self.standardized})


@dataclass(frozen=True)
class Spelling:
    """How one input reaches the model: ids (BOS..EOS) and the canonical SMILES encoded, or None and the
    reason it cannot; whether stereochemistry was removed and whether it was standardized to get there."""

    ids: list[int] | None
    smiles: str | None
    reason: str | None = None
    stereo_removed: bool = False
    standardized: bool = False


def _spell(smiles: str, tokenizer: Tokenizer, vocab: Vocabulary) -> tuple[list[int] | None, str | None]:
    try:
        tokens = tokenizer.tokenize(smiles)
    except TokenizationError as exc:
        return None, f"cannot be tokenized ({exc})"
    unknown = vocab.unknown_tokens(tokens)
    if unknown:
        listed = ", ".join(repr(t) for t in unknown)
        noun, verb = ("token", "is") if len(unknown) == 1 else ("tokens", "are")
        return None, f"{noun} {listed} {verb} not in the model's vocabulary"
    return vocab.encode(tokens), None


def _relaxed_forms(mol: Any, smiles: str) -> Iterator[tuple[str, bool, bool]]:
    """(canonical SMILES, stereo_removed, standardized) forms of `mol` (parsed from `smiles`) to try after
    its own, mildest first; lazily, since most molecules need only the first."""
    from rdkit import Chem

    flat = Chem.Mol(mol)
    Chem.RemoveStereochemistry(flat)
    yield Chem.MolToSmiles(flat), True, False
    for remove_stereo in (False, True):
        std = chem.standardize(smiles, remove_stereo=remove_stereo)
        if std is not None:
            yield std, remove_stereo, True


def spell_molecule(smiles: Any, tokenizer: Tokenizer, vocab: Vocabulary, strict: bool = False) -> Spelling:
    """How the model can encode `smiles`, if it can.

    The SMILES is canonicalized as the training data were (SMILES models), or encoded to SELFIES
    from its canonical form (SELFIES models). When the vocabulary cannot spell it, and `strict` is
    False, the molecule is tried with its stereochemistry removed, then standardized (largest
    fragment, neutralized), then both; the first form the vocabulary spells is used and flagged.
    Reasons name the RDKit error or the tokens outside the vocabulary.
    """
    mol, reason = chem.parse(smiles)
    if mol is None:
        return Spelling(None, None, f"not a valid SMILES ({reason})")
    from rdkit import Chem

    canon = Chem.MolToSmiles(mol)
    ids, reason = _spell(canon, tokenizer, vocab)
    if ids is not None:
        return Spelling(ids, canon)
    tried = {canon}
    for form, stereo_removed, standardized in _relaxed_forms(mol, str(smiles).strip()):
        if form in tried:
            continue
        tried.add(form)
        form_ids, _ = _spell(form, tokenizer, vocab)
        if form_ids is None:
            continue
        if strict:
            how = _how(stereo_removed, standardized)
            return Spelling(None, None, f"{reason} (without strict it would be encoded {how})")
        return Spelling(form_ids, form, None, stereo_removed, standardized)
    return Spelling(None, None, reason)


def _how(stereo_removed: bool, standardized: bool) -> str:
    parts = (["with its stereochemistry removed"] if stereo_removed else []) + (
        ["standardized (largest fragment, neutralized)"] if standardized else [])
    return " and ".join(parts)


def check_molecule(smiles: Any, tokenizer: Tokenizer, vocab: Vocabulary) -> tuple[list[int] | None, str | None]:
    """(ids, None) for a molecule the model can encode exactly as written, else (None, reason)."""
    spelled = spell_molecule(smiles, tokenizer, vocab, strict=True)
    return spelled.ids, spelled.reason


def length_reason(n_ids: int, max_len: int) -> str | None:
    """Why a molecule of `n_ids` ids (BOS..EOS) is too long for a model whose decoder writes at most `max_len`
    (BOS and EOS included), or None when it fits: the one length rule of every command (`score` scores such a
    molecule and gives this reason; encode, reconstruct and the others refuse it as a bad row)."""
    return f"longer than the model's {max_len} tokens ({n_ids} with BOS and EOS)" if n_ids > max_len else None


def _shown(smiles: Any) -> str:
    text = str(smiles)
    return repr(text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)")


def _describe(rejected: pd.DataFrame) -> str:
    shown = "; ".join(f"row {r.row} {_shown(r.smiles)}: {r.reason}" for r in rejected.head(_SHOWN).itertuples())
    more = f"; and {len(rejected) - _SHOWN} more" if len(rejected) > _SHOWN else ""
    return shown + more


def encode_inputs(items: Sequence[Any], tokenizer: Tokenizer, vocab: Vocabulary,
                  on_invalid: str = "error", strict: bool = False, max_len: int | None = None) -> EncodedInputs:
    """Check and tokenize every input (rows are 0-based input indices).

    max_len: the model's longest sequence (BOS and EOS included); a longer molecule is a bad row
    (`length_reason`). None: no length check (the caller scores long molecules, or they are training data).

    on_invalid="error": DataError naming the bad rows, values and reasons (up to five);
    "skip": leave them out with a RuntimeWarning that names them. Molecules encoded with their
    stereochemistry removed or standardized (see `spell_molecule`) are named in one RuntimeWarning;
    `strict=True` counts them as bad rows instead.
    """
    if on_invalid not in ON_INVALID:
        raise UsageError(f"on_invalid must be 'error' or 'skip', got {on_invalid!r}")
    ids: list[list[int]] = []
    rows: list[int] = []
    used: list[str] = []
    flags: list[tuple[bool, bool]] = []
    bad: list[tuple[int, Any, str]] = []
    for i, smi in enumerate(items):
        spelled = spell_molecule(smi, tokenizer, vocab, strict)
        too_long = length_reason(len(spelled.ids), max_len) if spelled.ids is not None and max_len else None
        if spelled.ids is None or too_long:
            bad.append((i, smi, too_long or spelled.reason or "unknown problem"))
        else:
            ids.append(spelled.ids)
            rows.append(i)
            used.append(spelled.smiles or "")
            flags.append((spelled.stereo_removed, spelled.standardized))
    rejected = pd.DataFrame(bad, columns=["row", "smiles", "reason"])
    if bad:
        what = f"{len(bad)} of {len(items)} molecules"
        if on_invalid == "error":
            raise DataError(f"{what} cannot be encoded: {_describe(rejected)}. "
                            "Pass on_invalid='skip' (CLI: --on-invalid skip) to leave such rows out.")
        warnings.warn(f"skipped {what} that cannot be encoded: {_describe(rejected)}", RuntimeWarning, stacklevel=3)
    flag_array = np.asarray(flags, dtype=bool).reshape(len(flags), 2)
    enc = EncodedInputs(ids, np.asarray(rows, dtype=np.int64), rejected, used, flag_array[:, 0].copy(),
                        flag_array[:, 1].copy())
    _warn_relaxed(enc, items)
    return enc


def _warn_relaxed(enc: EncodedInputs, items: Sequence[Any]) -> None:
    """One RuntimeWarning naming the rows encoded in another form than written (none: no warning)."""
    changed = enc.stereo_removed | enc.standardized
    if not changed.any():
        return
    parts = []
    for mask, how in ((enc.stereo_removed, "with stereochemistry removed (the model has no stereo tokens)"),
                      (enc.standardized, "standardized (largest fragment, neutralized)")):
        if mask.any():
            parts.append(f"{int(mask.sum())} {how}")
    shown = "; ".join(f"row {enc.rows[k]} {str(items[enc.rows[k]])!r} as {enc.smiles[k]!r}"
                      for k in np.flatnonzero(changed)[:_SHOWN])
    more = f"; and {int(changed.sum()) - _SHOWN} more" if changed.sum() > _SHOWN else ""
    warnings.warn(f"{int(changed.sum())} of {len(items)} molecules encoded in another form than written: "
                  f"{', '.join(parts)}: {shown}{more}. Pass strict=True (CLI: --strict) to refuse them.",
                  RuntimeWarning, stacklevel=4)


def pad_sequences(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    """(ids (B, T) long, lengths (B,) long) on the CPU for id sequences (BOS..EOS), PAD after each one;
    T is the longest length."""
    import torch

    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    ids = torch.full((len(seqs), int(lengths.max())), pad_id, dtype=torch.long)
    for r, seq in enumerate(seqs):
        ids[r, :len(seq)] = torch.tensor(seq)
    return ids, lengths


def padded_batches(seqs: list[list[int]], batch_size: int, pad_id: int) -> Iterator[tuple[np.ndarray, Any, Any]]:
    """(idx, ids (B, T) long, lengths (B,) long) for `seqs` (BOS..EOS id lists) in batches of at most
    `batch_size`, on the CPU: sequences of similar length share a batch (less padding); `idx` are their
    positions in `seqs`."""
    order = np.argsort([len(s) for s in seqs], kind="stable")
    for start in range(0, len(seqs), batch_size):
        idx = order[start:start + batch_size]
        yield (idx, *pad_sequences([seqs[i] for i in idx], pad_id))


def encode_batched(model: Any, seqs: list[list[int]], batch_size: int = 1024,
                   precision: str = "fp32") -> tuple[np.ndarray, np.ndarray]:
    """Posterior mu and logvar, each (n, Z) float32, for id sequences (BOS..EOS) on the
    model's device (`padded_batches`)."""
    import torch

    from molvae.model.inference import autocast

    device = next(model.parameters()).device
    mu = np.zeros((len(seqs), model.cfg.latent_dim), dtype=np.float32)
    logvar = np.zeros_like(mu)
    for idx, ids, lengths in padded_batches(seqs, batch_size, model.cfg.pad_id):
        with torch.no_grad(), autocast(device, precision):
            m, lv = model.encode(ids.to(device), lengths.to(device))
        mu[idx], logvar[idx] = m.float().cpu().numpy(), lv.float().cpu().numpy()
    return mu, logvar
