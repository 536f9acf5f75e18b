"""`MoleculeCodec`: a trained VAE with its tokenizer and vocabulary on one device and precision, and the
batched steps between molecules and latents that `MolVAE` and the modules beside it share: checked SMILES ->
posterior (`encode_checked`), latents -> token ids (`decode_ids`) -> molecule table (`table`), latents ->
property-head values (`head_values`).

A conditional model (docs/conditional.md) decodes from a latent z and a conditioning vector c (standardized
properties, `cond_names`). The codec owns the three ways of choosing c: a target in the properties' units
(`standardize`), a molecule's own RDKit values (`rdkit_conditions`) and, when the caller gives none, the
property head's prediction at z (`head_conditions`), so that every caller that decodes bare latents
(interpolation, neighbours, optimization) keeps working.

`MolVAE` holds one and adds the notebook methods; `molvae.generation.conditions`, `molvae.analysis` and
`molvae.generation.density_fit` take one, so that none of them needs the class that calls them.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from molvae import arguments, chem, runtime
from molvae.data.tokens import Tokenizer, Vocabulary
from molvae.errors import CheckpointError, UsageError
from molvae.generation.inputs import EncodedInputs, encode_batched, encode_inputs
from molvae.generation.molecule_table import ids_to_tokens, molecule_table, property_names, to_smiles
from molvae.model import inference

__all__ = ["MoleculeCodec"]


class MoleculeCodec:
    """A trained VAE (`molvae.model.vae.VAE`) with its tokenizer and vocabulary, on `device` in `precision`.

    prop_stats: {property name: (mean, std)} that standardized the property head's targets; train_hashes:
    64-bit hashes of the training set's canonical SMILES (for the `novel` column), or None; n_jobs:
    processes for RDKit work (None: all cores, used only for long lists); cond_stats: {condition name: (mean,
    std)} of a conditional model, in the order of c's columns (empty for an unconditional one). Arguments of
    the public methods are trusted: `MolVAE` checks them at the boundary, except where a method says it checks.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Tokenizer, vocab: Vocabulary,
                 prop_stats: Mapping[str, tuple[float, float]] | None = None, train_hashes: Any = None,
                 device: str | torch.device = "auto", precision: str = "auto", n_jobs: int | None = None,
                 cond_stats: Mapping[str, tuple[float, float]] | None = None):
        if model.cfg.vocab_size != len(vocab):
            raise CheckpointError(f"model vocabulary size {model.cfg.vocab_size} != vocabulary {len(vocab)}")
        self.cond_stats = dict(cond_stats or {})
        if len(self.cond_stats) != model.cfg.n_cond:
            raise CheckpointError(f"{len(self.cond_stats)} condition statistics for a model that reads "
                                  f"{model.cfg.n_cond} conditions")
        if model.cfg.cond_encoder:
            # Generation encodes molecules in many places (density, domain, optimization) that know no c;
            # until the conditional encoder measures better than the decoder-only model, it stays a training
            # experiment rather than threading c through all of them.
            raise CheckpointError("this model's encoder reads the conditions (cond_encoder): such models can be "
                                  "trained and validated, but generation supports decoder-only conditioning; "
                                  "train with cond_encoder false to sample from it")
        missing = [n for n in self.cond_stats if n not in (prop_stats or {})]
        if missing:
            raise CheckpointError(f"conditions {', '.join(missing)} are not predicted by the property head, which "
                                  "decoding without a target needs")
        self.device = runtime.resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer, self.vocab = tokenizer, vocab
        self.prop_stats = dict(prop_stats or {})
        self.prop_names = tuple(self.prop_stats)
        self.train_hashes = train_hashes
        self.precision = inference.resolve_precision(arguments.choice(precision, "precision", inference.PRECISIONS),
                                                    self.device)
        self.n_jobs = n_jobs

    @property
    def cond_names(self) -> tuple[str, ...]:
        """The conditioning properties, in the order of c's columns (empty: an unconditional model)."""
        return tuple(self.cond_stats)

    @property
    def is_conditional(self) -> bool:
        return bool(self.cond_stats)

    @property
    def latent_dim(self) -> int:
        return int(self.model.cfg.latent_dim)

    @property
    def max_len(self) -> int:
        """Longest decoded sequence in tokens, BOS and EOS included."""
        return int(self.model.cfg.max_len)

    def jobs(self, n_jobs: int | None) -> int | None:
        """Processes for RDKit work: `n_jobs`, or the codec's default when None."""
        return self.n_jobs if n_jobs is None else n_jobs

    def batch_size(self, batch_size: int | None) -> int:
        """Latents per model call: `batch_size` (checked), or 1024 on CPU and 8192 on a GPU when None."""
        if batch_size is None:
            return 1024 if self.device.type == "cpu" else 8192
        return arguments.positive_int(batch_size, "batch_size")

    def is_known(self) -> Callable[[Sequence[str]], np.ndarray] | None:
        """Training-set lookup for the `novel` column (canonical SMILES -> bool (n,)), or None when the
        training set is unknown."""
        if self.train_hashes is None:
            return None
        from molvae.files import smiles_hash

        known = np.sort(np.asarray(self.train_hashes, dtype=np.uint64))

        def lookup(canonical: Sequence[str]) -> np.ndarray:
            h = np.fromiter((smiles_hash(s) for s in canonical), dtype=np.uint64, count=len(canonical))
            pos = np.minimum(np.searchsorted(known, h), max(len(known) - 1, 0))
            return (known[pos] == h) if len(known) else np.zeros(len(h), dtype=bool)
        return lookup

    # ------------------------------------------------------------------ latents -> molecules
    def as_latents(self, z: Any) -> torch.Tensor:
        """Latents as a float32 CPU tensor (n, Z); a single vector (Z,) becomes (1, Z). Checks the shape and
        that every value is finite (UsageError)."""
        try:
            arr = torch.as_tensor(np.asarray(z.detach().cpu() if isinstance(z, torch.Tensor) else z,
                                             dtype=np.float32))
        except (TypeError, ValueError) as exc:
            raise UsageError(f"z must be a numeric array of shape (n, {self.latent_dim}): {exc}") from exc
        if arr.ndim == 1:
            arr = arr.unsqueeze(0)
        if arr.ndim != 2 or arr.size(1) != self.latent_dim:
            raise UsageError(
                f"z has shape {tuple(arr.shape)}, but this model's latent vectors have {self.latent_dim} "
                f"dimensions: pass an array of shape (n, {self.latent_dim})"
            )
        if not bool(torch.isfinite(arr).all()):
            raise UsageError("z contains NaN or infinite values")
        return arr

    def decode_ids(self, z: torch.Tensor, method: str, temperature: float, seed: int, beam_width: int,
                   batch_size: int | None, max_len: int | None = None, c: torch.Tensor | None = None,
                   top_p: float = 1.0) -> np.ndarray:
        """Decode CPU latents (n, Z) -> ids (n, L) int64 (see `inference.decode`). Checks the decoding
        arguments (method, temperature, beam_width, max_len, top_p), once for every public method that decodes.
        c (n, C): standardized conditions of a conditional model; None takes the head's prediction at z
        (`head_conditions`); ignored for an unconditional model."""
        arguments.choice(method, "method", inference.METHODS)
        temperature = arguments.temperature(temperature)
        if method == "beam":
            beam_width = arguments.positive_int(beam_width, "beam_width")
        if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer))
                                    or max_len < 2):
            raise UsageError(f"max_len must be an integer of at least 2 (BOS and EOS), got {max_len!r}")
        top_p = arguments.number(top_p, "top_p", 0.0, 1.0, lo_open=True)
        if not self.is_conditional:
            c = None  # a density's stored conditions mean nothing to a decoder that reads none
        elif c is None:
            c = self.head_conditions(z)
        return inference.decode(self.model, z, method, temperature, seed, beam_width, self.batch_size(batch_size),
                                max_len, self.precision, banned=(self.vocab.unk_id,), c=c, top_p=top_p)

    def table(self, ids: np.ndarray, properties: Sequence[str] | str | None, n_jobs: int | None) -> pd.DataFrame:
        """The molecule table (`molvae.generation.molecule_table`) of decoded ids (n, L), with the RDKit
        `properties` and, when the training set is known, `novel`."""
        return molecule_table(ids_to_tokens(ids, self.vocab), self.tokenizer, property_names(properties),
                              self.jobs(n_jobs), self.is_known())

    def strings(self, ids: np.ndarray) -> list[str]:
        """The SMILES of decoded ids (n, L), as decoded (not validated)."""
        return [to_smiles(toks, self.tokenizer) for toks in ids_to_tokens(ids, self.vocab)]

    # ------------------------------------------------------------------ molecules -> latents
    def encode_checked(self, items: list[Any], on_invalid: str, strict: bool,
                       batch_size: int | None) -> tuple[EncodedInputs, np.ndarray, np.ndarray]:
        """The checked inputs (rows, the SMILES encoded, stereo/standardization flags; see
        `molvae.generation.inputs.encode_inputs`) and their posterior means and log-variances (m, Z) float32."""
        enc = encode_inputs(items, self.tokenizer, self.vocab, on_invalid, bool(strict), self.max_len)
        mu, logvar = encode_batched(self.model, enc.ids, self.batch_size(batch_size), self.precision)
        return enc, mu, logvar

    def head_values(self, z: torch.Tensor, names: Sequence[str]) -> np.ndarray:
        """Property-head predictions (n, len(names)) float64 in the properties' units for latents z (n, Z) on
        CPU; `names` are among `prop_names`."""
        idx = [self.prop_names.index(n) for n in names]
        with torch.no_grad():
            out = self.model.predict_props(z.to(self.device)).float().cpu().numpy()[:, idx].astype(np.float64)
        mean = np.asarray([self.prop_stats[n][0] for n in names], dtype=np.float64)
        std = np.asarray([self.prop_stats[n][1] for n in names], dtype=np.float64)
        return out * std + mean

    # ------------------------------------------------------------------ conditions
    def standardize(self, values: np.ndarray) -> torch.Tensor:
        """Conditions in the properties' units (n, C) -> c (n, C) float32, (value - mean) / std per column in
        `cond_names` order; a missing value (NaN) becomes 0, the training mean."""
        mean, std = self._cond_moments()
        c = (np.asarray(values, dtype=np.float64) - mean) / std
        return torch.from_numpy(np.nan_to_num(c, nan=0.0).astype(np.float32))

    def unstandardize(self, c: torch.Tensor | np.ndarray) -> np.ndarray:
        """c (n, C) -> the conditions in the properties' units (n, C) float64."""
        mean, std = self._cond_moments()
        arr = c.detach().cpu().numpy() if isinstance(c, torch.Tensor) else np.asarray(c)
        return arr.astype(np.float64) * std + mean

    def rdkit_conditions(self, smiles: Sequence[str], n_jobs: int | None = None) -> torch.Tensor:
        """c (n, C) of molecules from their own RDKit properties (what the model was trained with)."""
        values = chem.properties(list(smiles), self.cond_names, self.jobs(n_jobs) or 1).to_numpy()
        return self.standardize(values)

    def head_conditions(self, z: torch.Tensor) -> torch.Tensor:
        """c (n, C) the property head predicts for latents z (n, Z) on CPU: the conditions a latent "means"
        (the head predicts every condition: `__init__` checks it)."""
        return self.standardize(self.head_values(z, self.cond_names))

    def head_conditions_differentiable(self, z: torch.Tensor) -> torch.Tensor:
        """`head_conditions` as a differentiable function of z (n, Z) on the model's device, for teacher-forced
        likelihoods whose gradient flows into z: the head's standardized output mapped linearly to c."""
        idx = [self.prop_names.index(n) for n in self.cond_names]
        p_mean = torch.tensor([self.prop_stats[n][0] for n in self.cond_names], device=z.device)
        p_std = torch.tensor([self.prop_stats[n][1] for n in self.cond_names], device=z.device)
        mean, std = (torch.from_numpy(a).float().to(z.device) for a in self._cond_moments())
        pred = self.model.predict_props(z).float()[:, idx]
        return (pred * p_std + p_mean - mean) / std

    def _cond_moments(self) -> tuple[np.ndarray, np.ndarray]:
        mean = np.asarray([m for m, _ in self.cond_stats.values()], dtype=np.float64)
        std = np.asarray([s for _, s in self.cond_stats.values()], dtype=np.float64)
        return mean, std
