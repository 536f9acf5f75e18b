"""`molvae density`: fit (or refit) a model's learned latent density, the default sampling prior.

`register(app)` adds the command. It reads the molecules, calls `molvae.generation.density_fit.fit_density`
and writes `density.safetensors` + `density.json` into the checkpoint directory (or `--out`).
"""
from __future__ import annotations

import time
from pathlib import Path

import typer

from molvae.cli.common import DEVICE, MODEL, err_console, load_model

__all__ = ["register"]


def density(
    model: str | None = MODEL,
    data: str = typer.Option("moses", "--data", help="The model's training molecules: moses, embedded or a file "
                             "(CSV/SMI/SDF)."),
    smiles_col: str | None = typer.Option(None, "--smiles-col", help="SMILES column of --data (default: found)."),
    kind: str = typer.Option("posterior-mixture", "--kind", help="posterior-mixture (keep the posteriors of --n "
                             "training molecules as components) or gaussian-mixture (fit --components)."),
    n: int = typer.Option(20_000, "--n", help="Training molecules kept (a seeded random subset when there are more)."),
    components: list[int] = typer.Option([16, 32, 64], "--components", "-k", help="gaussian-mixture sizes tried; "
                                         "the best by held-out likelihood is kept. Repeat."),
    source: str = typer.Option("posterior", "--source", help="gaussian-mixture fit to posterior draws or means."),
    seed: int = typer.Option(0, "--seed"),
    out: Path | None = typer.Option(None, "--out", help="Checkpoint directory to write into (default: the model's)."),
    device: str = DEVICE,
) -> None:
    """Fit the learned latent density of a model to the posterior of its training molecules."""
    from molvae.data.datasets import dataset_path
    from molvae.data.read import read_table
    from molvae.errors import UsageError
    from molvae.generation.density_fit import DensityConfig, fit_density

    config = DensityConfig(kind=kind, n_molecules=n, candidates=tuple(components), source=source, seed=seed)
    vae = load_model(model, device, "auto", 0)
    target = out or vae.path
    if target is None or not Path(target).is_dir():
        raise UsageError(f"--out {target}: not a checkpoint directory")
    table, col = read_table(dataset_path(data, "train"), smiles_col)
    t0 = time.perf_counter()
    err_console().print(f"making the {kind} latent density of {vae.name} from {min(n, len(table)):,} molecules "
                        f"of {data}")
    fitted = fit_density(vae.codec, table[col].tolist(), config, verbose=True)
    fitted.save(target)
    err_console().print(f"kept {fitted.n_components:,} components (held-out log-likelihood "
                        f"{fitted.info['heldout_loglik']:.2f} nats per latent), {time.perf_counter() - t0:.0f} s; "
                        f"wrote {Path(target) / 'density.safetensors'}")


def register(app: typer.Typer) -> None:
    """Add `molvae density` to the app."""
    app.command("density")(density)
