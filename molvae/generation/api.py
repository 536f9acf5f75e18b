"""The notebook API: `molvae.load()` returns a `MolVAE`, which samples, encodes, decodes,
reconstructs, interpolates, explores neighbourhoods, predicts properties and scores molecules.

A `MolVAE` holds its parts and adds the checked, documented methods on top of them: the `MoleculeCodec`
(`codec`: network, tokenizer and vocabulary on a device; the batched steps between molecules and latents),
the `LatentPrior` (`prior`: the learned latent density or N(0, I)) and the applicability `Domain`
(`domain`, from `molvae.analysis`). Every method that returns molecules returns a DataFrame with `smiles`,
`valid`, `canonical`, the requested RDKit properties and `novel` (when the training set is known); see
`molvae.generation.molecule_table`. Decoding is batched on the model's device (`molvae.model.inference`);
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
from molvae.data.tokens import Tokenizer, Vocabulary
from molvae.errors import DataError, UsageError
from molvae.generation.analogs import sample_near
from molvae.generation.codec import MoleculeCodec
from molvae.generation.conditional_sampling import sample_where
from molvae.generation.conditions import parse_where
from molvae.generation.density_fit import DensityConfig, fit_density
from molvae.generation.distinct_sampling import sample_distinct
from molvae.generation.latent_walks import interpolation_table, neighbors_table
from molvae.generation.molecule_table import property_names
from molvae.generation.prior import LatentPrior
from molvae.generation.reconstruction import reconstruct_table
from molvae.model import inference
from molvae.model.checkpoint import (DEFAULT_MODEL, SAMPLING_DEFAULTS, load_checkpoint, pretrained_dir,
                                    resolve_model)
from molvae.model.density import LatentDensity

if TYPE_CHECKING:
    from molvae.analysis.domain import Domain

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
    # Imported here: molvae.analysis imports molvae.generation (through the package), so a module-level
    # import would make `import molvae.analysis` find this module half-initialized.
    from molvae.analysis.domain import Domain

    model, meta = load_checkpoint(path, device=dev)
    return MolVAE(
        model, meta.tokenizer, meta.vocab, prop_stats=meta.prop_stats, train_hashes=meta.train_hashes(),
        name=str(name_or_path) if name_or_path is not None else DEFAULT_MODEL, path=path,
        device=dev, precision=precision, n_jobs=n_jobs, density=LatentDensity.load(path), domain=Domain.load(path),
        cond_stats=meta.cond_stats, sampling=meta.sampling,
    )


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().generate_state(1)[0])


def _codec_attribute(name: str, doc: str) -> property:
    """A read-only attribute of the model that is its codec's."""
    return property(lambda self: getattr(self.codec, name), doc=doc)


class MolVAE:
    """A trained VAE with its tokenizer and vocabulary, ready for generation.

    Construct with `molvae.load`, or directly from an in-memory `VAE` (e.g. after training).
    prop_stats: {property name: (mean, std)} used to standardize the property head targets.
    train_hashes / is_known: the training set, for the `novel` column (optional).
    density: the learned latent density (`LatentDensity`), the default sampling prior; None for N(0, I).
    cond_stats: {condition: (mean, std)} of a conditional model (docs/conditional.md); None: unconditional.
    sampling: the model's default {temperature, top_p} for `sample` (config.json "sampling"; 1 and 1 without).
    domain: the calibrated applicability domain (`molvae.analysis.Domain`) used by `score`; None
    when the model has none (then `score` gives the raw scores without `anomaly` and `in_domain`).
    Its parts: `codec` (`MoleculeCodec`), `prior` (`LatentPrior`, holding `density`) and `domain`.
    """

    model = _codec_attribute("model", "The VAE (`molvae.model.vae.VAE`), on `device`, in eval mode.")
    tokenizer = _codec_attribute("tokenizer", "The model's `Tokenizer` (SMILES or SELFIES).")
    vocab = _codec_attribute("vocab", "The model's `Vocabulary`.")
    device = _codec_attribute("device", "The torch device the model runs on.")
    precision = _codec_attribute("precision", "\"fp32\" or \"bf16\", as resolved for the device.")
    prop_stats = _codec_attribute("prop_stats", "{property: (mean, std)} of the property head's targets.")
    prop_names = _codec_attribute("prop_names", "The properties the head predicts, in its output order.")
    train_hashes = _codec_attribute("train_hashes", "Hashes of the training set (the `novel` column), or None.")
    n_jobs = _codec_attribute("n_jobs", "Processes for RDKit work (None: all cores, for long lists only).")
    latent_dim = _codec_attribute("latent_dim", "Dimensions of a latent vector.")
    max_len = _codec_attribute("max_len", "Longest decoded sequence in tokens, BOS and EOS included.")
    is_conditional = _codec_attribute("is_conditional", "Whether the decoder reads property conditions c.")
    cond_names = _codec_attribute("cond_names", "The conditioning properties, in c's order (empty: none).")

    def __init__(self, model: torch.nn.Module, tokenizer: Tokenizer, vocab: Vocabulary,
                 prop_stats: Mapping[str, tuple[float, float]] | None = None,
                 train_hashes: Any = None, name: str | None = None, path: Path | None = None,
                 device: str | torch.device = "auto", precision: str = "auto", n_jobs: int | None = None,
                 density: LatentDensity | None = None, domain: Domain | None = None,
                 cond_stats: Mapping[str, tuple[float, float]] | None = None,
                 sampling: Mapping[str, float] | None = None):
        self.codec = MoleculeCodec(model, tokenizer, vocab, prop_stats, train_hashes, device, precision, n_jobs,
                                   cond_stats)
        self.prior = LatentPrior(self.codec.latent_dim, density)
        self.domain = domain
        self.name, self.path = name, path
        self.sampling = {**SAMPLING_DEFAULTS, **dict(sampling or {})}

    def __repr__(self) -> str:
        props = ", ".join(self.prop_names) or "none"
        n = sum(p.numel() for p in self.model.parameters())
        return (f"MolVAE({self.name or 'unnamed'}: {self.tokenizer.representation}, {len(self.vocab)} tokens, "
                f"latent {self.latent_dim}, properties {props}, {n / 1e6:.2f}M parameters, "
                f"{self.device.type}/{self.precision})")

    # ------------------------------------------------------------ the prior
    @property
    def density(self) -> LatentDensity | None:
        """The learned latent density, the default sampling prior; None for a model without one."""
        return self.prior.density

    @density.setter
    def density(self, density: LatentDensity | None) -> None:
        self.prior.density = density

    @property
    def density_kind(self) -> str:
        """The learned density's kind ("posterior-mixture", "gaussian-mixture"), or "standard-normal"."""
        return self.prior.kind

    def draw_latents(self, n: int, generator: torch.Generator, prior: str = "density") -> torch.Tensor:
        """n latents (n, latent_dim) float32 on CPU from the learned density or N(0, I) ("standard")."""
        return self.prior.draw(n, generator, prior)

    def log_density(self, z: Any) -> np.ndarray:
        """Log-density (n,) float64, nats, of latents z (n, latent_dim) under the learned latent density
        (or under N(0, I) for a model without one: `density_kind` says which)."""
        return self.prior.log_density(self.codec.as_latents(z))

    def fit_density(self, smiles: Sequence[str], config: Any = None, save: bool = False) -> Any:
        """Fit the learned latent density to the posterior of `smiles` (normally the training molecules;
        see `molvae.generation.density_fit.DensityConfig`), make it this model's default prior and, with
        `save=True`, write it into the model's checkpoint directory. Returns the `LatentDensity`."""
        if save and self.path is None:
            raise UsageError("this model has no checkpoint directory to save its density in")
        self.prior.density = fit_density(self.codec, smiles, config or DensityConfig())
        if save:
            self.prior.density.save(self.path)
        return self.prior.density

    # ------------------------------------------------------------- decoding
    def sample(self, n: int, temperature: float | None = None, seed: int | None = None, method: str = "multinomial",
               beam_width: int = 5, batch_size: int | None = None,
               properties: Sequence[str] | None = _DEFAULT_PROPERTIES, unique_valid: bool = False,
               max_len: int | None = None, n_jobs: int | None = None, prior: str | None = None,
               where: str | None = None, max_decodes: int | None = None, near: str | None = None,
               similarity: float = 0.4, top_p: float | None = None) -> pd.DataFrame:
        """Generate `n` molecules from latents drawn from the prior.

        prior: "density" (the model's learned latent density, the default when it has one),
        "standard" (N(0, I), the default for a model without one). method: "multinomial" (tokens
        drawn from softmax(logits / temperature)), "greedy" (argmax: one molecule per latent) or
        "beam" (the best of `beam_width` beams per latent). top_p < 1: multinomial draws from each step's
        nucleus (the likeliest tokens holding top_p of the probability). temperature and top_p default to
        the model's `sampling` settings (those its FCD-novelty frontier was read at; 1 and 1 for a model
        without them). seed: makes the result reproducible for
        the same device, batch_size and precision; None picks a fresh seed (stored in
        `df.attrs["seed"]`). unique_valid: keep drawing until n distinct valid molecules are found
        (at most 20 n draws; with fewer, a warning says so and fewer rows are returned). Returns the
        molecule table with `df.attrs` = {seed, method, temperature, top_p, prior, n_drawn, seconds}. A conditional
        model draws each latent with the conditions of its density component (docs/conditional.md).

        where: a property condition, e.g. "logp>=4,logp<=5,qed>=0.6" (`molvae.generation.conditions`): a
        conditional model decodes with the conditions of training molecules inside the window, an
        unconditional one steers its latents with the property head; RDKit checks every molecule and only
        hits are returned (distinct ones with unique_valid), at most `max_decodes` latents decoded (default
        20 n + 1000; fewer rows and a warning when it runs out). `df.attrs` adds where, hits, hit_rate (hits
        per decode), rounds, steered, conditioned. near: a SMILES; analogs of it instead
        (`molvae.generation.analogs`): molecules with Morgan Tanimoto >= `similarity` to it (the
        `similarity` column) meeting `where`; `df.attrs` adds near, similarity, hits, hit_rate.
        """
        n = arguments.positive_int(n, "n")
        prior = self.prior.choose(prior, self.name, self.path)
        names = property_names(properties)
        temperature = self.sampling["temperature"] if temperature is None else temperature
        top_p = self.sampling["top_p"] if top_p is None else top_p
        seed = _fresh_seed() if seed is None else int(seed)
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(seed)
        if where is not None or near is not None:
            windows = parse_where(where, self.prop_names) if where is not None else ()
            arguments.choice(method, "method", inference.METHODS)
            arguments.temperature(temperature)
            budget = None if max_decodes is None else arguments.positive_int(max_decodes, "max_decodes")
        if near is not None:
            if not isinstance(near, str) or not near.strip():
                raise UsageError(f"near must be a SMILES string, got {near!r}")
            similarity = arguments.number(similarity, "similarity", 0.0, 1.0)
            df = sample_near(self.codec, int(n), near, similarity, windows, names, seed, temperature, method,
                             beam_width, batch_size, max_len, n_jobs, unique_valid, budget, top_p=top_p)
            drawn = int(df.attrs["n_drawn"])
        elif where is not None:
            df = sample_where(self.codec, self.prior, int(n), windows, names, seed, temperature, method, beam_width,
                              batch_size, max_len, n_jobs, prior, unique_valid, budget, top_p=top_p)
            drawn = int(df.attrs["n_drawn"])
        elif not unique_valid:
            z, c = self.prior.draw_with_conds(int(n), gen, prior)
            ids = self.codec.decode_ids(z, method, temperature, seed, beam_width, batch_size, max_len, c, top_p)
            df, drawn = self.codec.table(ids, names, n_jobs), int(n)
        else:
            df, drawn = sample_distinct(self.codec, self.prior, int(n), gen, method, temperature, seed, beam_width,
                                        batch_size, names, max_len, n_jobs, prior, top_p)
        df.attrs.update(seed=seed, method=method, temperature=float(temperature), top_p=float(top_p), prior=prior,
                        n_drawn=drawn,
                        seconds=time.perf_counter() - t0)
        return df

    def decode(self, z: Any, method: str = "greedy", temperature: float = 1.0, seed: int | None = None,
               beam_width: int = 5, batch_size: int | None = None, max_len: int | None = None) -> list[str]:
        """SMILES strings decoded from latents z, array (n, latent_dim) or one vector.

        Greedy by default (deterministic); "multinomial" and "beam" as in `sample`. Strings
        are returned as decoded (SELFIES converted to SMILES), not validated; see `sample`'s
        table for validity.
        """
        zt = self.codec.as_latents(z)
        seed = _fresh_seed() if seed is None else int(seed)
        ids = self.codec.decode_ids(zt, method, temperature, seed, beam_width, batch_size, max_len)
        return self.codec.strings(ids)

    def decode_table(self, z: Any, method: str = "greedy", temperature: float = 1.0, seed: int | None = None,
                     beam_width: int = 5, batch_size: int | None = None,
                     properties: Sequence[str] | None = _DEFAULT_PROPERTIES, n_jobs: int | None = None) -> pd.DataFrame:
        """Like `decode`, but returns the molecule table (smiles, valid, canonical, properties, novel)."""
        zt = self.codec.as_latents(z)
        seed = _fresh_seed() if seed is None else int(seed)
        ids = self.codec.decode_ids(zt, method, temperature, seed, beam_width, batch_size)
        return self.codec.table(ids, properties, n_jobs)

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
        enc, mu, logvar = self.codec.encode_checked(items, on_invalid, strict, batch_size)
        z = mu
        if sample:
            gen = torch.Generator().manual_seed(_fresh_seed() if seed is None else int(seed))
            eps = torch.randn(mu.shape, generator=gen).numpy()
            z = (mu + np.exp(0.5 * logvar) * eps).astype(np.float32)
        return (z, enc.rows) if return_rows else z

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
        see `encode`, which also explains `strict`). A conditional model decodes with each molecule's own
        RDKit conditions.
        """
        items = [smiles] if isinstance(smiles, str) else list(smiles)
        seed = _fresh_seed() if seed is None else int(seed)
        return reconstruct_table(self.codec, items, method, on_invalid, properties, seed, beam_width, batch_size,
                                 n_jobs, strict)

    def interpolate(self, a: str, b: str, steps: int = 8, kind: str = "linear", method: str = "greedy",
                    properties: Sequence[str] | None = _DEFAULT_PROPERTIES, seed: int | None = None) -> pd.DataFrame:
        """Decode `steps` evenly spaced points (endpoints included) between the latent means
        of molecules `a` and `b`. kind "linear" or "slerp" (spherical, keeps the norm
        typical of the prior). Adds columns `step`, `t`, `sim_a`, `sim_b` (Tanimoto)."""
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
            raise UsageError(f"steps must be an integer >= 2 (the endpoints count), got {steps!r}")
        arguments.choice(kind, "interpolation kind", ("linear", "slerp"))
        za, zb = self._encode_one(a, "first molecule"), self._encode_one(b, "second molecule")
        return interpolation_table(self, a, b, za, zb, int(steps), kind, method, properties, seed)

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
        radius = arguments.number(radius, "radius", 0.0)
        mu = self._encode_one(smiles, "query molecule")
        seed = _fresh_seed() if seed is None else int(seed)
        return neighbors_table(self, smiles, mu, int(n), radius, seed, method, properties, bool(unique))

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
        See `molvae.analysis.predict`.
        """
        from molvae.analysis.predict import predict_table

        def score(inputs: list[Any]) -> pd.DataFrame:
            if self.domain is None:  # stacklevel: score <- predict_table <- predict <- the caller
                warnings.warn(f"model {self.name} has no calibrated domain: anomaly and in_domain are left empty "
                              "(calibrate it with MolVAE.calibrate_domain or `molvae domain`)", RuntimeWarning,
                              stacklevel=4)
            return self.score(inputs, batch_size=batch_size)

        items = [smiles] if isinstance(smiles, str) else list(smiles)
        return predict_table(self.codec, items, on_invalid, rdkit, batch_size, strict, score if domain else None)

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
        from molvae.analysis.domain import score_table

        items = [smiles] if isinstance(smiles, str) else list(smiles)
        return score_table(self.codec, self.prior, self.domain, items, batch_size, chunk_size)

    def calibrate_domain(self, smiles: Sequence[str], n_reference: int = 15_000, n_calibration: int = 5_000,
                         quantile: float = 0.99, seed: int = 0, save: bool = False) -> Domain:
        """Calibrate the applicability domain on the model's training molecules `smiles` (see
        `molvae.analysis.domain.calibrate_domain`), make it this model's and, with `save=True`, write
        it into the checkpoint directory. Returns the `Domain`."""
        from molvae.analysis.domain import calibrate_domain

        if save and self.path is None:
            raise UsageError("this model has no checkpoint directory to save its domain in")
        domain = calibrate_domain(self.codec, self.prior, list(smiles), n_reference, n_calibration, quantile, seed)
        self.domain = domain
        if save:
            domain.save(self.path)
        return domain

    def grid(self, df: pd.DataFrame, n: int = 24, legend: str | None = "qed", path: str | Path | None = None,
             **kwargs: Any) -> Any:
        """Molecule grid image of a result table (see `molvae.plotting.grid`)."""
        from molvae.plotting.molecules import grid

        return grid(df, n=n, legend=legend, path=path, **kwargs)

