"""Fitting a model's latent density (`molvae.model.density.LatentDensity`) to the posterior of its
training molecules: `fit_density(codec, smiles, DensityConfig())`, used by `molvae density`, by
`molvae train` at the end of a run and by `MolVAE.fit_density` (which makes it the model's latent prior)."""
from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from molvae import arguments
from molvae.errors import DataError, UsageError
from molvae.generation.inputs import encode_batched, encode_inputs
from molvae.model.density import LatentDensity, posterior_mixture, select_mixture

if TYPE_CHECKING:
    from molvae.generation.codec import MoleculeCodec

__all__ = ["DensityConfig", "fit_density", "encode_posteriors", "posterior_draws", "KINDS", "SOURCES"]

SOURCES = ("posterior", "means")
KINDS = ("posterior-mixture", "gaussian-mixture")
_ENCODE_CHUNK = 4096


@dataclass(frozen=True)
class DensityConfig:
    """How a latent density is made from a model's training molecules.

    kind: "posterior-mixture" keeps the posteriors q(z|x) = N(mu_x, diag sigma_x^2) of `n_molecules`
    training molecules as equal-weight mixture components (the aggregate posterior itself, what the decoder
    was trained on); "gaussian-mixture" fits full-covariance mixtures of each size in `candidates` to
    `n_molecules` latents (posterior draws or means, `source`) and keeps the best by held-out likelihood.
    heldout_fraction: molecules kept out to score the candidates and to report the held-out log-likelihood;
    seed: subset, draws, EM initialization.
    """

    kind: str = "posterior-mixture"
    n_molecules: int = 20_000
    candidates: tuple[int, ...] = (16, 32, 64)
    source: str = "posterior"
    heldout_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        arguments.choice(self.kind, "density kind", KINDS)
        arguments.positive_int(self.n_molecules, "n_molecules")
        if not self.candidates:
            raise UsageError("candidates: give at least one component count")
        for k in self.candidates:
            arguments.positive_int(k, "component count")
        arguments.choice(self.source, "density source", SOURCES)
        arguments.number(self.heldout_fraction, "heldout_fraction", 0.0, 0.5, lo_open=True)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "candidates": list(self.candidates)}


def _progress(show: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("encoding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True,
                    disable=not show)


def encode_posteriors(vae: MoleculeCodec, smiles: Sequence[str], progress: bool = True,
                      kept: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances (m, D) float64 of the molecules the vocabulary can spell (the
    others are left out), in chunks with a progress bar (unless `progress` is False). `vae`: a
    `MoleculeCodec`, or a `MolVAE` (which has the same model, tokenizer, vocab, precision and latent_dim).
    `kept`, when given, receives the canonical SMILES encoded, one per row."""
    mus, logvars = [], []
    with _progress(progress) as bar:
        task = bar.add_task("encoding", total=len(smiles))
        for start in range(0, len(smiles), _ENCODE_CHUNK):
            chunk = list(smiles[start:start + _ENCODE_CHUNK])
            with warnings.catch_warnings():  # unspellable training rows are expected and simply left out
                warnings.simplefilter("ignore", RuntimeWarning)
                enc = encode_inputs(chunk, vae.tokenizer, vae.vocab, "skip")
            if enc.ids:
                mu, logvar = encode_batched(vae.model, enc.ids, 1024, vae.precision)
                mus.append(mu.astype(np.float64))
                if kept is not None:
                    kept.extend(enc.smiles)
                logvars.append(logvar.astype(np.float64))
            bar.advance(task, len(chunk))
    if not mus:
        return np.zeros((0, vae.latent_dim)), np.zeros((0, vae.latent_dim))
    return np.concatenate(mus), np.concatenate(logvars)


def posterior_draws(mu: np.ndarray, logvar: np.ndarray, seed: int) -> np.ndarray:
    """One draw mu + sigma * eps per molecule, (m, D) float64."""
    eps = np.random.default_rng(seed).standard_normal(mu.shape)
    return mu + np.exp(0.5 * logvar) * eps


def fit_density(vae: MoleculeCodec, smiles: Sequence[str], config: DensityConfig = DensityConfig(),
                data_hash: str | None = None, verbose: bool = False, progress: bool = True) -> LatentDensity:
    """Make the latent density of `vae` (a `MoleculeCodec`) from `smiles` (the model's
    training molecules; see `DensityConfig`) and return it; `MolVAE.fit_density` also makes it the model's
    prior. `info["heldout_loglik"]` is the mean log-density (nats per latent) of posterior draws of held-out
    molecules. Raises DataError with too few encodable molecules."""
    rng = np.random.default_rng(config.seed)
    items = [s for s in smiles if isinstance(s, str)]
    n_want = int(round(config.n_molecules / (1.0 - config.heldout_fraction)))
    if len(items) > n_want:
        items = [items[i] for i in np.sort(rng.choice(len(items), n_want, replace=False))]
    encoded: list[str] = []
    mu, logvar = encode_posteriors(vae, items, progress, encoded)
    n_held = max(1, int(round(len(mu) * config.heldout_fraction)))
    need = 10 * max(config.candidates) if config.kind == "gaussian-mixture" else 2
    if len(mu) - n_held < need:
        raise DataError(f"{len(mu)} encodable molecules are too few to make a {config.kind} latent density: give "
                        f"more molecules (or, for a gaussian-mixture, smaller --components)")
    perm = rng.permutation(len(mu))
    held, keep = perm[:n_held], perm[n_held:]
    z_held = posterior_draws(mu[held], logvar[held], config.seed + 1)
    if config.kind == "posterior-mixture":
        conds = None
        if vae.is_conditional:  # each component keeps its molecule's c: sampling draws z and c together
            conds = vae.rdkit_conditions([encoded[i] for i in keep]).numpy()
        density = posterior_mixture(mu[keep], logvar[keep], conds=conds)
        with torch.no_grad():
            ll = float(density.log_prob(torch.from_numpy(z_held)).mean())
        info: dict[str, Any] = {"heldout_loglik": ll, "n_heldout": int(n_held)}
    else:
        z_fit = posterior_draws(mu[keep], logvar[keep], config.seed) if config.source == "posterior" else mu[keep]

        def report(k: int, ll: float) -> None:
            if verbose:
                print(f"  {k:>4} components: held-out log-likelihood {ll:.2f} nats per latent", flush=True)

        density, _ = select_mixture(z_fit, z_held, config.candidates, seed=config.seed, progress=report)
        info = dict(density.info)
    info.update(config=config.to_dict(), n_encoded=int(len(mu)), data_hash=data_hash)
    return dataclasses.replace(density, info=info)
