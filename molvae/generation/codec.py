"""`MoleculeCodec`: a trained VAE with its tokenizer and vocabulary on one device and precision, and the
batched steps between molecules and latents that `MolVAE` and the modules beside it share: checked SMILES ->
posterior (`encode_checked`), latents -> token ids (`decode_ids`) -> molecule table (`table`), latents ->
property-head values (`head_values`).

`MolVAE` holds one and adds the notebook methods; `molvae.generation.conditions`, `molvae.analysis` and
`molvae.generation.density_fit` take one, so that none of them needs the class that calls them.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from molvae import arguments, runtime
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
    processes for RDKit work (None: all cores, used only for long lists). Arguments of the public methods
    are trusted: `MolVAE` checks them at the boundary, except where a method says it checks.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Tokenizer, vocab: Vocabulary,
                 prop_stats: Mapping[str, tuple[float, float]] | None = None, train_hashes: Any = None,
                 device: str | torch.device = "auto", precision: str = "auto", n_jobs: int | None = None):
        if model.cfg.vocab_size != len(vocab):
            raise CheckpointError(f"model vocabulary size {model.cfg.vocab_size} != vocabulary {len(vocab)}")
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
                   batch_size: int | None, max_len: int | None = None) -> np.ndarray:
        """Decode CPU latents (n, Z) -> ids (n, L) int64 (see `inference.decode`). Checks the decoding
        arguments (method, temperature, beam_width, max_len), once for every public method that decodes."""
        arguments.choice(method, "method", inference.METHODS)
        temperature = arguments.temperature(temperature)
        if method == "beam":
            beam_width = arguments.positive_int(beam_width, "beam_width")
        if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer))
                                    or max_len < 2):
            raise UsageError(f"max_len must be an integer of at least 2 (BOS and EOS), got {max_len!r}")
        return inference.decode(self.model, z, method, temperature, seed, beam_width, self.batch_size(batch_size),
                                max_len, self.precision, banned=(self.vocab.unk_id,))

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
