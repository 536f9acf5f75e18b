"""The notebook API: `molvae.load()` returns a `MolVAE`, which samples, encodes, decodes,
reconstructs, interpolates, explores neighbourhoods and predicts properties.

Every method that returns molecules returns a DataFrame with `smiles`, `valid`,
`canonical`, the requested RDKit properties and `novel` (when the training set is known);
see `molvae.generation.table`. Decoding is batched on the model's device (`molvae.model.inference`);
RDKit work runs in `n_jobs` processes for long lists.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from molvae import arguments, chem, runtime
from molvae.model import inference
from molvae.generation.table import ids_to_tokens, molecule_table, property_names, to_smiles
from molvae.generation.inputs import EncodedInputs, encode_batched, encode_inputs
from molvae.errors import CheckpointError, DataError, UsageError
from molvae.data.tokens import Tokenizer, Vocabulary
from molvae.generation.density import LatentPrior
from molvae.model.density import LatentDensity
from molvae.model.checkpoint import DEFAULT_MODEL, load_checkpoint, pretrained_dir, resolve_model

if TYPE_CHECKING:
    from molvae.generation.domain import Domain

__all__ = ["MolVAE", "load", "DEFAULT_MODEL", "pretrained_dir"]

_DEFAULT_PROPERTIES = ("logp", "qed", "sa")


def load(name_or_path: str | Path | None = None, device: str = "auto", precision: str = "auto",
         n_jobs: int | None = None) -> MolVAE:
    """Load a model: None = the shipped default, a name = molvae/pretrained/<name>, or a
    checkpoint directory written by `molvae train`.

    device: "auto" (CUDA if available), "cpu", "cuda", "cuda:N". precision: "auto" (bf16 on
    hardware that runs it natively), "fp32" or "bf16". n_jobs: processes for RDKit work
    (None: all cores, used only for long lists). Raises CheckpointError if not found or
    unreadable.
    """
    path = resolve_model(name_or_path)
    dev = runtime.resolve_device(device)
    from molvae.generation.domain import Domain

    model, meta = load_checkpoint(path, device=dev)
    return MolVAE(
        model, meta.tokenizer, meta.vocab, prop_stats=meta.prop_stats, train_hashes=meta.train_hashes(),
        name=str(name_or_path) if name_or_path is not None else DEFAULT_MODEL, path=path,
        device=dev, precision=precision, n_jobs=n_jobs, density=LatentDensity.load(path), domain=Domain.load(path),
    )


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().generate_state(1)[0])


class MolVAE(LatentPrior):
    """A trained VAE with its tokenizer and vocabulary, ready for generation.

    Construct with `molvae.load`, or directly from an in-memory `VAE` (e.g. after training).
    prop_stats: {property name: (mean, std)} used to standardize the property head targets.
    train_hashes / is_known: the training set, for the `novel` column (optional).
    density: the learned latent density (`LatentDensity`), the default sampling prior; None for N(0, I).
    domain: the calibrated applicability domain (`molvae.generation.domain.Domain`) used by `score`; None
    when the model has none (then `score` gives the raw scores without `anomaly` and `in_domain`).
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Tokenizer, vocab: Vocabulary,
                 prop_stats: Mapping[str, tuple[float, float]] | None = None,
                 train_hashes: Any = None, name: str | None = None, path: Path | None = None,
                 device: str | torch.device = "auto", precision: str = "auto", n_jobs: int | None = None,
                 density: LatentDensity | None = None, domain: Domain | None = None):
        if model.cfg.vocab_size != len(vocab):
            raise CheckpointError(f"model vocabulary size {model.cfg.vocab_size} != vocabulary {len(vocab)}")
        self.device = runtime.resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer, self.vocab = tokenizer, vocab
        self.prop_stats = dict(prop_stats or {})
        self.prop_names = tuple(self.prop_stats)
        self.train_hashes = train_hashes
        self.name, self.path = name, path
        self.precision = inference.resolve_precision(arguments.choice(precision, "precision", inference.PRECISIONS),
                                                    self.device)
        self.n_jobs = n_jobs
        self.density = density
        self.domain = domain
        self._reference: tuple[Any, torch.Tensor] | None = None  # (domain, its unpacked fingerprints)

    # ----------------------------------------------------------------- basics
    @property
    def latent_dim(self) -> int:
        return int(self.model.cfg.latent_dim)

    @property
    def max_len(self) -> int:
        """Longest decoded sequence in tokens, BOS and EOS included."""
        return int(self.model.cfg.max_len)

    def __repr__(self) -> str:
        props = ", ".join(self.prop_names) or "none"
        n = sum(p.numel() for p in self.model.parameters())
        return (f"MolVAE({self.name or 'unnamed'}: {self.tokenizer.representation}, {len(self.vocab)} tokens, "
                f"latent {self.latent_dim}, properties {props}, {n / 1e6:.2f}M parameters, "
                f"{self.device.type}/{self.precision})")

    def _is_known(self) -> Any:
        """Training-set lookup for the `novel` column, or None when the training set is unknown."""
        if self.train_hashes is None:
            return None
        from molvae.files import smiles_hash

        known = np.sort(np.asarray(self.train_hashes, dtype=np.uint64))

        def is_known(canonical: Sequence[str]) -> np.ndarray:
            h = np.fromiter((smiles_hash(s) for s in canonical), dtype=np.uint64, count=len(canonical))
            pos = np.minimum(np.searchsorted(known, h), max(len(known) - 1, 0))
            return (known[pos] == h) if len(known) else np.zeros(len(h), dtype=bool)
        return is_known

    def _jobs(self, n_jobs: int | None) -> int | None:
        return self.n_jobs if n_jobs is None else n_jobs

    def _table(self, ids: np.ndarray, properties: Sequence[str] | str | None, n_jobs: int | None) -> pd.DataFrame:
        return molecule_table(ids_to_tokens(ids, self.vocab), self.tokenizer, property_names(properties),
                              self._jobs(n_jobs), self._is_known())

    def _batch_size(self, batch_size: int | None) -> int:
        """Default 1024 latents at once on CPU, 8192 on a GPU."""
        if batch_size is None:
            return 1024 if self.device.type == "cpu" else 8192
        return arguments.positive_int(batch_size, "batch_size")

    # ------------------------------------------------------------- decoding
    def _decode_ids(self, z: torch.Tensor, method: str, temperature: float, seed: int, beam_width: int,
                    batch_size: int | None, max_len: int | None = None) -> np.ndarray:
        """Decode CPU latents (n, Z) -> ids (n, L) int64 (see `inference.decode`); the decoding
        arguments are checked here, once, for every public method that decodes."""
        arguments.choice(method, "method", inference.METHODS)
        temperature = arguments.temperature(temperature)
        if method == "beam":
            beam_width = arguments.positive_int(beam_width, "beam_width")
        if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer))
                                    or max_len < 2):
            raise UsageError(f"max_len must be an integer of at least 2 (BOS and EOS), got {max_len!r}")
        return inference.decode(self.model, z, method, temperature, seed, beam_width, self._batch_size(batch_size),
                               max_len, self.precision, banned=(self.vocab.unk_id,))

    def _as_latents(self, z: Any) -> torch.Tensor:
        """Latents as a float32 CPU tensor (n, Z); a single vector (Z,) becomes (1, Z)."""
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

    def sample(self, n: int, temperature: float = 1.0, seed: int | None = None, method: str = "multinomial",
               beam_width: int = 5, batch_size: int | None = None,
               properties: Sequence[str] | None = _DEFAULT_PROPERTIES, unique_valid: bool = False,
               max_len: int | None = None, n_jobs: int | None = None, prior: str | None = None,
               where: str | None = None, max_decodes: int | None = None) -> pd.DataFrame:
        """Generate `n` molecules from latents drawn from the prior.

        prior: "density" (the model's learned latent density, the default when it has one),
        "standard" (N(0, I), the default for a model without one). method: "multinomial" (tokens
        drawn from softmax(logits / temperature)), "greedy" (argmax: one molecule per latent) or
        "beam" (the best of `beam_width` beams per latent). seed: makes the result reproducible for
        the same device, batch_size and precision; None picks a fresh seed (stored in
        `df.attrs["seed"]`). unique_valid: keep drawing until n distinct valid molecules are found
        (at most 20 n draws; with fewer, a warning says so and fewer rows are returned). Returns the
        molecule table with `df.attrs` = {seed, method, temperature, prior, n_drawn, seconds}.

        where: a property condition, e.g. "logp>=4,logp<=5,qed>=0.6" (see `molvae.generation.conditions`):
        latents are steered by the property head, every molecule is checked with RDKit, and only molecules
        meeting the condition are returned (distinct ones with unique_valid), at most `max_decodes` decoded
        latents spent (default 20 n + 1000; fewer rows and a warning when the budget runs out).
        `df.attrs` then also holds where, hits, hit_rate (hits per decoded latent), rounds and steered.
        """
        n = arguments.positive_int(n, "n")
        prior = self._prior_name(prior)
        names = property_names(properties)
        seed = _fresh_seed() if seed is None else int(seed)
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(seed)
        if where is not None:
            from molvae.generation.conditions import parse_where, sample_where

            windows = parse_where(where, self.prop_names)
            arguments.choice(method, "method", inference.METHODS)
            arguments.temperature(temperature)
            budget = None if max_decodes is None else arguments.positive_int(max_decodes, "max_decodes")
            df = sample_where(self, int(n), windows, names, seed, temperature, method, beam_width, batch_size,
                              max_len, n_jobs, prior, unique_valid, budget)
            drawn = int(df.attrs["n_drawn"])
        elif not unique_valid:
            z = self.draw_latents(int(n), gen, prior)
            ids = self._decode_ids(z, method, temperature, seed, beam_width, batch_size, max_len)
            df, drawn = self._table(ids, names, n_jobs), int(n)
        else:
            df, drawn = self._sample_unique(int(n), gen, method, temperature, seed, beam_width, batch_size,
                                            names, max_len, n_jobs, prior)
        df.attrs.update(seed=seed, method=method, temperature=float(temperature), prior=prior, n_drawn=drawn,
                        seconds=time.perf_counter() - t0)
        return df

    def _sample_unique(self, n: int, gen: torch.Generator, method: str, temperature: float, seed: int,
                       beam_width: int, batch_size: int | None, names: tuple[str, ...], max_len: int | None,
                       n_jobs: int | None, prior: str) -> tuple[pd.DataFrame, int]:
        kept: list[pd.DataFrame] = []
        seen: set[str] = set()
        found, drawn, budget, round_ = 0, 0, 20 * n, 0
        while found < n and drawn < budget:
            # Ask for what is missing plus a margin for invalid and repeated draws.
            m = min(budget - drawn, max(64, int((n - found) * 1.3)))
            z = self.draw_latents(m, gen, prior)
            ids = self._decode_ids(z, method, temperature, inference.sub_seed(seed, 1_000_003, round_), beam_width,
                                   batch_size, max_len)
            part = self._table(ids, (), n_jobs)
            drawn, round_ = drawn + m, round_ + 1
            fresh = part["valid"].to_numpy() & ~part["canonical"].duplicated().to_numpy()
            fresh &= ~part["canonical"].isin(seen).to_numpy()
            part = part[fresh].head(n - found)
            seen.update(part["canonical"])
            kept.append(part)
            found += len(part)
        df = pd.concat(kept, ignore_index=True)
        if found < n:
            warnings.warn(f"only {found} distinct valid molecules in {drawn} draws (asked for {n})",
                          RuntimeWarning, stacklevel=3)
        if names:
            values = chem.properties(df["canonical"].tolist(), names, n_jobs=self._jobs(n_jobs))
            cols = [c for c in df.columns if c != "novel"]
            df = pd.concat([df[cols], values, df[["novel"]] if "novel" in df else None], axis=1)
        return df, drawn

    def decode(self, z: Any, method: str = "greedy", temperature: float = 1.0, seed: int | None = None,
               beam_width: int = 5, batch_size: int | None = None, max_len: int | None = None) -> list[str]:
        """SMILES strings decoded from latents z, array (n, latent_dim) or one vector.

        Greedy by default (deterministic); "multinomial" and "beam" as in `sample`. Strings
        are returned as decoded (SELFIES converted to SMILES), not validated; see `sample`'s
        table for validity.
        """
        zt = self._as_latents(z)
        seed = _fresh_seed() if seed is None else int(seed)
        ids = self._decode_ids(zt, method, temperature, seed, beam_width, batch_size, max_len)
        return self._strings(ids)

    def _strings(self, ids: np.ndarray) -> list[str]:
        return [to_smiles(toks, self.tokenizer) for toks in ids_to_tokens(ids, self.vocab)]

    def decode_table(self, z: Any, method: str = "greedy", temperature: float = 1.0, seed: int | None = None,
                     beam_width: int = 5, batch_size: int | None = None,
                     properties: Sequence[str] | None = _DEFAULT_PROPERTIES, n_jobs: int | None = None) -> pd.DataFrame:
        """Like `decode`, but returns the molecule table (smiles, valid, canonical, properties, novel)."""
        zt = self._as_latents(z)
        seed = _fresh_seed() if seed is None else int(seed)
        ids = self._decode_ids(zt, method, temperature, seed, beam_width, batch_size)
        return self._table(ids, properties, n_jobs)

    # ------------------------------------------------------------- encoding
    def encode(self, smiles: str | Sequence[str], sample: bool = False, on_invalid: str = "error",
               seed: int | None = None, batch_size: int | None = None, return_rows: bool = False,
               strict: bool = False) -> Any:
        """Latent vectors (n, latent_dim) float32 for molecules given as SMILES.

        Posterior means, or with `sample=True` draws from the posterior (seeded by `seed`).
        Each SMILES is parsed, canonicalized and tokenized first; a row that does not parse
        or holds tokens outside the model's vocabulary raises DataError naming the row, the
        value and the reason (on_invalid="error", before any model work) or is skipped with
        a warning (on_invalid="skip"). A molecule the vocabulary spells only with its
        stereochemistry removed or standardized (largest fragment, neutralized) is encoded in that
        form, with one warning naming such rows; `strict=True` counts them as bad rows instead.
        return_rows=True also returns the input indices of the rows encoded, int64 (m,).
        """
        items = [smiles] if isinstance(smiles, str) else list(smiles)
        enc, mu, logvar = self._encode_checked(items, on_invalid, strict, batch_size)
        z = mu
        if sample:
            gen = torch.Generator().manual_seed(_fresh_seed() if seed is None else int(seed))
            eps = torch.randn(mu.shape, generator=gen).numpy()
            z = (mu + np.exp(0.5 * logvar) * eps).astype(np.float32)
        return (z, enc.rows) if return_rows else z

    def _encode_checked(self, items: list[Any], on_invalid: str, strict: bool,
                        batch_size: int | None) -> tuple[EncodedInputs, np.ndarray, np.ndarray]:
        """The checked inputs (rows, the SMILES encoded, stereo/standardization flags) and their posterior
        means and log-variances (m, latent_dim)."""
        enc = encode_inputs(items, self.tokenizer, self.vocab, on_invalid, bool(strict))
        mu, logvar = encode_batched(self.model, enc.ids, self._batch_size(batch_size), self.precision)
        return enc, mu, logvar

    def _encode_one(self, smiles: str, what: str) -> np.ndarray:
        try:
            return self.encode([smiles])[0]
        except DataError as exc:
            raise DataError(f"cannot encode the {what}: {exc}") from exc

    # ---------------------------------------------------------- applications
    def reconstruct(self, smiles: str | Sequence[str], method: str = "greedy", on_invalid: str = "error",
                    properties: Sequence[str] | None = (), seed: int | None = None, beam_width: int = 5,
                    batch_size: int | None = None, n_jobs: int | None = None, strict: bool = False) -> pd.DataFrame:
        """Encode each molecule to its posterior mean and decode it again.

        Returns one row per encoded input: `row` (input index), `input`, `output` (the decoded
        SMILES), the molecule table of the decoded output (its
        `smiles` column equals `output`, so the table joins with every other one), `exact`
        (the output's canonical SMILES equals that of the molecule encoded), and `stereo_removed` /
        `standardized` (the molecule encoded is the input without its stereochemistry / standardized;
        see `encode`, which also explains `strict`).
        """
        items = [smiles] if isinstance(smiles, str) else list(smiles)
        enc, z, _ = self._encode_checked(items, on_invalid, strict, batch_size)
        seed = _fresh_seed() if seed is None else int(seed)
        ids = self._decode_ids(torch.from_numpy(z), method, 1.0, seed, beam_width, batch_size)
        df = self._table(ids, properties, n_jobs)
        df.insert(0, "row", enc.rows)
        df.insert(1, "input", pd.Series([items[i] for i in enc.rows], dtype=object))
        df.insert(2, "output", df["smiles"])
        at = df.columns.get_loc("canonical") + 1
        df.insert(at, "exact", np.asarray([c is not None and c == t for c, t in zip(df["canonical"], enc.smiles)],
                                          dtype=bool))
        df.insert(at + 1, "stereo_removed", enc.stereo_removed)
        df.insert(at + 2, "standardized", enc.standardized)
        return df

    def interpolate(self, a: str, b: str, steps: int = 8, kind: str = "linear", method: str = "greedy",
                    properties: Sequence[str] | None = _DEFAULT_PROPERTIES, seed: int | None = None) -> pd.DataFrame:
        """Decode `steps` evenly spaced points (endpoints included) between the latent means
        of molecules `a` and `b`. kind "linear" or "slerp" (spherical, keeps the norm
        typical of the prior). Adds columns `step`, `t`, `sim_a`, `sim_b` (Tanimoto)."""
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
            raise UsageError(f"steps must be an integer >= 2 (the endpoints count), got {steps!r}")
        if kind not in ("linear", "slerp"):
            raise UsageError(f"unknown interpolation kind {kind!r}; expected linear or slerp")
        za, zb = self._encode_one(a, "first molecule"), self._encode_one(b, "second molecule")
        t = np.linspace(0.0, 1.0, int(steps))
        z = inference.slerp(za, zb, t) if kind == "slerp" else za[None] + t[:, None] * (zb - za)[None]
        df = self.decode_table(z, method=method, seed=seed, properties=properties)
        df.insert(0, "step", np.arange(int(steps)))
        df.insert(1, "t", t)
        df["sim_a"] = chem.bulk_tanimoto(a, df["smiles"].tolist())
        df["sim_b"] = chem.bulk_tanimoto(b, df["smiles"].tolist())
        return df

    def neighbors(self, smiles: str, n: int = 10, radius: float = 0.5, seed: int | None = None,
                  method: str = "greedy", properties: Sequence[str] | None = _DEFAULT_PROPERTIES,
                  unique: bool = False) -> pd.DataFrame:
        """Molecules decoded from `n` random points around `smiles`'s latent mean:
        z = mu + radius * eps, eps ~ N(0, I) (radius is the noise std per dimension).

        Adds `distance` (||z - mu||) and `similarity` (Tanimoto to `smiles`), sorted by
        similarity, most similar first. unique=True drops invalid rows, repeats and the
        query itself.
        """
        n = arguments.positive_int(n, "n")
        try:
            radius = float(radius)
        except (TypeError, ValueError):
            radius = float("nan")
        if not np.isfinite(radius) or radius < 0:
            raise UsageError(f"radius must be a finite number >= 0, got {radius!r}")
        mu = self._encode_one(smiles, "query molecule")
        seed = _fresh_seed() if seed is None else int(seed)
        eps = torch.randn(int(n), self.latent_dim, generator=torch.Generator().manual_seed(seed)).numpy()
        z = mu[None] + radius * eps
        df = self.decode_table(z, method=method, seed=seed, properties=properties)
        df["distance"] = np.linalg.norm(z - mu[None], axis=1)
        df["similarity"] = chem.bulk_tanimoto(smiles, df["smiles"].tolist())
        if unique:
            query = chem.canonical(smiles)
            df = df[df["valid"] & ~df["canonical"].duplicated() & (df["canonical"] != query)]
        df = df.sort_values("similarity", ascending=False, kind="stable").reset_index(drop=True)
        df.attrs["seed"] = seed
        return df

    def predict(self, smiles: str | Sequence[str], on_invalid: str = "error", rdkit: bool = False,
                batch_size: int | None = None, strict: bool = False, domain: bool = False) -> pd.DataFrame:
        """Property-head predictions from the latent means, in the training data's units.

        Columns: `row` (input index), `smiles` (the input), `stereo_removed` and `standardized` (how
        the molecule encoded differs from the input; see `encode`, which also explains `strict`), one
        float column per property the model was trained on; with rdkit=True also `<name>_rdkit`,
        RDKit's value for names RDKit computes (to compare with). on_invalid: "error" (DataError naming
        the rows the model cannot encode), "skip" (leave them out, with a warning) or "keep" (one row per
        input: NaN predictions and a `reason` column, "" or why not). domain=True adds `in_domain` and
        `anomaly` after `smiles`, as `score` computes them (a row without a prediction is never in the
        domain; empty, with a warning, for a model without a calibrated domain), and `reason`.
        See `molvae.generation.predict`.
        """
        from molvae.generation.predict import predict_table

        items = [smiles] if isinstance(smiles, str) else list(smiles)
        return predict_table(self, items, on_invalid, rdkit, batch_size, strict, domain)

    # ------------------------------------------------------- applicability
    def score(self, smiles: str | Sequence[str], batch_size: int | None = None,
              chunk_size: int = 4096) -> pd.DataFrame:
        """Anomaly / applicability-domain scores, one row per input, none dropped.

        Columns: `row` (input index), `smiles` (as given), `in_domain` (bool: anomaly at most the model's
        calibrated threshold and a molecule the model can spell), `anomaly` (higher = less like the
        training data; +inf when a score is missing), `nll` (teacher-forced negative log-likelihood of the
        molecule given its posterior mean, nats), `kl` (KL of the posterior to N(0, I), nats),
        `log_density` (log-density of the posterior mean under `log_density`, nats), `nn_similarity`
        (highest Morgan Tanimoto to the domain's training molecules), `n_tokens`, `reason` ("" or why the
        model cannot spell the molecule). Without a calibrated domain (`calibrate_domain`), `anomaly`,
        `in_domain` and `nn_similarity` are missing. Runs in chunks of `chunk_size` molecules.
        """
        from molvae.generation.domain import apply_domain
        from molvae.generation.scoring import score_terms

        items = [smiles] if isinstance(smiles, str) else list(smiles)
        size, chunk_size = self._batch_size(batch_size), arguments.positive_int(chunk_size, "chunk_size")
        reference = self._domain_reference()
        parts = [apply_domain(score_terms(self, items[i:i + chunk_size], reference, size), self.domain)
                 for i in range(0, len(items), chunk_size)]
        if not parts:
            parts = [apply_domain(score_terms(self, [], reference, size), self.domain)]
        df = pd.concat(parts, ignore_index=True)
        df.insert(0, "row", np.arange(len(df), dtype=np.int64))
        first = ["row", "smiles", "in_domain", "anomaly", "nll", "kl", "log_density", "nn_similarity"]
        return df[first + [c for c in df.columns if c not in first]]

    def _domain_reference(self) -> torch.Tensor | None:
        """The domain's reference fingerprints, computed (or read from the cache) once per domain."""
        if self.domain is None:
            return None
        if self._reference is None or self._reference[0] is not self.domain:
            self._reference = (self.domain, self.domain.reference_fingerprints())
        return self._reference[1]

    def calibrate_domain(self, smiles: Sequence[str], n_reference: int = 15_000, n_calibration: int = 5_000,
                         quantile: float = 0.99, seed: int = 0, save: bool = False) -> Domain:
        """Calibrate the applicability domain on the model's training molecules `smiles` (see
        `molvae.generation.domain.calibrate_domain`), make it this model's and, with `save=True`, write
        it into the checkpoint directory. Returns the `Domain`."""
        from molvae.generation.domain import calibrate_domain

        if save and self.path is None:
            raise UsageError("this model has no checkpoint directory to save its domain in")
        domain = calibrate_domain(self, list(smiles), n_reference, n_calibration, quantile, seed)
        self.domain = domain
        if save:
            domain.save(self.path)
        return domain

    def grid(self, df: pd.DataFrame, n: int = 24, legend: str | None = "qed", path: str | Path | None = None,
             **kwargs: Any) -> Any:
        """Molecule grid image of a result table (see `molvae.plotting.grid`)."""
        from molvae.plotting.molecules import grid

        return grid(df, n=n, legend=legend, path=path, **kwargs)

