"""The `molvae` command line. It parses arguments, calls the library and formats output; nothing more."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from molvae.errors import MolvaeError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Molecular generation with a GRU VAE.",
)
data_app = typer.Typer(no_args_is_help=True, help="Fetch and inspect data sets.")
app.add_typer(data_app, name="data")


def _console() -> Console:
    return Console(stderr=True)


@app.command()
def doctor() -> None:
    """Print versions of Python and the chemistry/ML stack, the device seen and the data cache path."""
    import platform

    from molvae.data.datasets import cache_dir

    rows = [("python", platform.python_version()), ("platform", platform.platform())]
    from importlib import metadata

    # distribution metadata, not module __version__: selfies 2.2 still reports 2.1.1 there
    for name in ("torch", "rdkit", "selfies", "numpy", "pandas", "scikit-learn", "fcd", "safetensors", "typer"):
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append((name, "MISSING"))
    try:
        import torch

        device = f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"
        rows.append(("device", device))
        rows.append(("threads", str(torch.get_num_threads())))
        rows.append(("cpu capability", torch.backends.cpu.get_cpu_capability()))
    except ImportError:
        pass
    rows.append(("data cache", str(cache_dir())))
    from molvae import __version__

    rows.append(("molvae", __version__))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        typer.echo(f"{key:<{width}}  {value}")


@data_app.command("moses")
def data_moses(directory: Optional[Path] = typer.Option(None, "--dir", help="Where to put the splits.")) -> None:
    """Fetch the MOSES train/test/test_scaffolds splits (from the molsets wheel on PyPI), verify and cache them."""
    import gzip

    from molvae.data.datasets import fetch_moses

    paths = fetch_moses(directory)
    for split, path in paths.items():
        with gzip.open(path, "rt") as fh:
            n = sum(1 for _ in fh) - 1
        typer.echo(f"{split:<15} {n:>9,d} molecules  {path}")


@app.command()
def train(
    data: str = typer.Option("embedded", help="A CSV/SMI/SDF file, 'moses' (full train split) or 'embedded' (20k subset)."),
    smiles_col: Optional[str] = typer.Option(None, help="SMILES column (default: detected, case-insensitive)."),
    property: List[str] = typer.Option([], "--property", "-p", help="Property to predict: a file column or an RDKit "
                                       "name (logp, qed, sa, ...); repeat. Default: logp, qed, sa."),
    repr: str = typer.Option("selfies", "--repr", help="selfies or smiles."),
    epochs: int = typer.Option(10, min=1),
    batch_size: int = typer.Option(256, min=1),
    lr: float = typer.Option(1e-3, min=0.0),
    out: Path = typer.Option(Path("runs/model"), help="Checkpoint directory to write."),
    resume: Optional[Path] = typer.Option(None, help="Continue an interrupted run from this checkpoint directory."),
    seed: int = typer.Option(0),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    max_len: int = typer.Option(120, min=8, help="Longest molecule in tokens; longer rows are rejected."),
    n_jobs: int = typer.Option(1, help="Processes for RDKit work."),
    config: Optional[Path] = typer.Option(None, help="JSON file of further TrainConfig fields."),
    stop_after: int = typer.Option(0, min=0, help="End this run after N epochs in all (the schedules still span "
                                   "--epochs); --resume continues it. 0: run to --epochs."),
) -> None:
    """Train a VAE on your molecules, the embedded MOSES subset, or full MOSES."""
    from molvae.train.loop import fit, train_config_from_cli

    cfg = train_config_from_cli(
        data=data, smiles_col=smiles_col, properties=tuple(property), representation=repr, epochs=epochs,
        batch_size=batch_size, lr=lr, out=str(out), resume=str(resume) if resume else None, seed=seed,
        device=device, max_len=max_len, n_jobs=n_jobs, config_file=str(config) if config else None,
        stop_after=stop_after,
    )
    path = fit(cfg)
    typer.echo(f"checkpoint written to {path}")


def _register_commands() -> None:
    # each command group lives in its own module; they register here so `molvae --help` lists all
    from molvae.cli import evaluate as cli_evaluate
    from molvae.cli import generate as cli_generate
    from molvae.cli import optimize as cli_optimize
    from molvae.cli import plot as cli_plot

    for module in (cli_generate, cli_optimize, cli_evaluate, cli_plot):
        module.register(app)


_register_commands()


def main() -> None:
    """Entry point: run the app, turning user errors into a message and an exit code (no traceback).

    Usage errors found by the argument parser exit with 2 through typer itself.
    """
    try:
        app(prog_name="molvae")
    except MolvaeError as exc:
        _console().print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _console().print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
