"""Per-molecule scores of how well a model knows a molecule: the ELBO pieces, the latent log-density and
the nearest-neighbour similarity to training molecules (`score_terms`). `molvae.analysis.domain`
combines them into one anomaly score and an in-domain flag.

Every function works on one chunk of molecules at a time; `MolVAE.score` and `molvae score` feed chunks,
so memory is bounded by the chunk size, not by the number of molecules.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from molvae import chem
from molvae.generation.inputs import encode_inputs, length_reason, padded_batches
from molvae.model.inference import autocast
from molvae.model.losses import kl_divergence

if TYPE_CHECKING:
    from molvae.generation.codec import MoleculeCodec
    from molvae.generation.prior import LatentPrior

__all__ = ["TERMS", "FP_RADIUS", "FP_BITS", "elbo_terms", "fingerprint_matrix", "nearest_similarity",
           "score_terms"]

TERMS = ("nll", "kl", "log_density", "nn_similarity")  # the raw scores, in table order
FP_RADIUS, FP_BITS = 2, 1024  # Morgan fingerprints as MOSES's SNN uses them
_NN_QUERIES = 1024  # query fingerprints per similarity block: bounds the (queries, references) matrix


@torch.no_grad()
def elbo_terms(model: Any, seqs: list[list[int]], batch_size: int = 1024,
               precision: str = "fp32", conds: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior means mu (n, Z) float32, the exact teacher-forced negative log-likelihood of each sequence
    given its posterior mean (n,) float64, nats summed over its tokens after BOS (EOS included), and the
    KL of its posterior to N(0, I) (n,) float64, nats. Sequences (BOS..EOS ids) of similar length share a
    batch (`padded_batches`). conds (n, C): a conditional model's standardized conditions of each molecule
    (its own: the likelihood p(x | z, c) it was trained on)."""
    device = next(model.parameters()).device
    pad = model.cfg.pad_id
    n = len(seqs)
    mu = np.zeros((n, model.cfg.latent_dim), dtype=np.float32)
    nll, kl = np.zeros(n), np.zeros(n)
    for idx, ids, lengths in padded_batches(seqs, batch_size, pad):
        ids = ids.to(device)
        with autocast(device, precision):
            m, lv = model.encode(ids, lengths.to(device))
            c = conds[torch.as_tensor(idx)].to(device) if conds is not None else None
            logits = model.decode_logits(ids[:, :-1], m, None, c).float()
        target = ids[:, 1:]
        ce = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=pad, reduction="none")  # (B, T-1)
        mu[idx] = m.float().cpu().numpy()
        nll[idx] = ce.sum(1).double().cpu().numpy()
        kl[idx] = kl_divergence(m.float(), lv.float()).sum(1).double().cpu().numpy()
    return mu, nll, kl


def fingerprint_matrix(smiles: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Packed Morgan bits (n, FP_BITS / 8) uint8 of each SMILES and a bool mask (n,) of those RDKit parses
    (rows of unparsable ones are zero)."""
    from rdkit import DataStructs

    bits = np.zeros((len(smiles), FP_BITS), dtype=np.uint8)
    ok = np.zeros(len(smiles), dtype=bool)
    with chem.rdkit_quiet():
        for i, smi in enumerate(smiles):
            fp = chem.fingerprint(smi, FP_RADIUS, FP_BITS) if isinstance(smi, str) and smi else None
            if fp is not None:
                DataStructs.ConvertToNumpyArray(fp, bits[i])  # writes 0/1 in place
                ok[i] = True
    return np.packbits(bits, axis=1), ok


def nearest_similarity(queries: np.ndarray, reference: torch.Tensor) -> np.ndarray:
    """Highest Tanimoto similarity (n,) float64 of each packed fingerprint in `queries` (n, B) to the
    `reference` fingerprints, given unpacked as a float32 0/1 tensor (m, FP_BITS). A matmul counts the
    common bits of every (query, reference) pair at once; the block size bounds its memory."""
    out = np.zeros(len(queries))
    ref_count = reference.sum(1)  # (m,)
    for start in range(0, len(queries), _NN_QUERIES):
        q = torch.from_numpy(np.unpackbits(queries[start:start + _NN_QUERIES], axis=1).astype(np.float32))
        common = q @ reference.T  # (b, m): counts up to FP_BITS, exact in float32
        union = q.sum(1, keepdim=True) + ref_count[None, :] - common
        sim = torch.where(union > 0, common / union.clamp_min(1.0), torch.zeros_like(common))
        out[start:start + len(q)] = sim.max(1).values.double().numpy()
    return out


def score_terms(codec: MoleculeCodec, prior: LatentPrior, smiles: Sequence[Any], reference: torch.Tensor | None,
                batch_size: int = 1024) -> pd.DataFrame:
    """The raw scores of one chunk of molecules, one row per input in order: `smiles` (as given),
    `reason` ("" for a molecule the model can spell, else why not), `n_tokens` (tokens after BOS), `nll`
    and `kl` (nats), `log_density` (nats, of the posterior mean under the model's latent prior `prior`) and
    `nn_similarity` (highest Tanimoto to `reference`, unpacked training fingerprints; NaN without one).
    Scores the model cannot compute for a row are NaN; the similarity needs only RDKit. A molecule the
    vocabulary spells only without its stereochemistry or standardized (`encode_inputs`) is scored in
    that form, flagged in `stereo_removed` / `standardized`."""
    items = list(smiles)
    with warnings.catch_warnings():  # unspellable rows are reported in `reason`, not warned about
        warnings.simplefilter("ignore", RuntimeWarning)
        enc = encode_inputs(items, codec.tokenizer, codec.vocab, "skip")
    n = len(items)
    table = pd.DataFrame({"smiles": pd.Series(items, dtype=object), "reason": ""})
    table.loc[enc.rejected["row"].to_numpy(), "reason"] = enc.rejected["reason"].to_numpy()
    # The form the model encodes (stereochemistry removed, largest fragment...) is also what is compared.
    scored = [s if isinstance(s, str) else "" for s in items]
    for row, form in zip(enc.rows, enc.smiles):
        scored[row] = form
    n_tokens = np.zeros(n, dtype=np.int64)
    values = {name: np.full(n, np.nan) for name in TERMS}
    if enc.ids:
        conds = codec.rdkit_conditions(enc.smiles) if codec.is_conditional else None
        mu, nll, kl = elbo_terms(codec.model, enc.ids, batch_size, codec.precision, conds)
        n_tokens[enc.rows] = [len(s) - 1 for s in enc.ids]
        values["nll"][enc.rows], values["kl"][enc.rows] = nll, kl
        values["log_density"][enc.rows] = prior.log_density(torch.from_numpy(mu))
        # Spelled but longer than anything the decoder may generate: scored, yet outside the domain.
        for row in enc.rows[n_tokens[enc.rows] + 1 > codec.max_len]:
            table.loc[row, "reason"] = length_reason(int(n_tokens[row]) + 1, codec.max_len)
    if reference is not None:
        fps, ok = fingerprint_matrix(scored)
        sim = nearest_similarity(fps, reference)
        values["nn_similarity"] = np.where(ok, sim, np.nan)
    table["n_tokens"] = n_tokens
    for name in TERMS:
        table[name] = values[name]
    for flag in ("stereo_removed", "standardized"):
        table[flag] = np.zeros(n, dtype=bool)
        table.loc[enc.rows, flag] = getattr(enc, flag)
    return table
