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


def _default(name: str) -> str:
    """"Default: X." for help text, X read from TrainConfig (the one place defaults live). Plain
    text: typer's help renders brackets as rich markup."""
    from molvae.train.config import field_default

    value = field_default(name)
    return f"Default: {', '.join(value) if isinstance(value, tuple) else value}."


def _names(values: List[str]) -> tuple[str, ...]:
    """The names of a repeatable, comma-separated option ("logp,mw" "tpsa" -> logp, mw, tpsa), blanks dropped;
    TrainConfig checks them."""
    return tuple(name.strip() for value in values for name in value.split(",") if name.strip())


# Every option defaults to None, meaning "not typed": a typed option overrides --config, an
# untyped one leaves the file's value (or else TrainConfig's default) in place. Bounds are TrainConfig's
# alone (no typer min=): its UsageError names the setting and exits 2.
@app.command()
def train(
    data: Optional[str] = typer.Option(None, help="A CSV/SMI/SDF file, 'moses' (full train split) or 'embedded' "
                                       f"(20k subset). {_default('data')}"),
    smiles_col: Optional[str] = typer.Option(None, help="SMILES column (default: detected, case-insensitive)."),
    property: Optional[List[str]] = typer.Option(None, "--property", "-p", help="Property to predict: a file column "
                                                 "or an RDKit name (logp, qed, sa, ...); repeat. "
                                                 f"{_default('properties')}"),
    condition: Optional[List[str]] = typer.Option(None, "--condition", help="RDKit property the decoder reads as "
                                                  "its condition (a conditional VAE): logp,mw,tpsa or repeated; "
                                                  "each must also be a --property. Default: the --init "
                                                  "model's (none without --init; --condition '' for none)."),
    repr: Optional[str] = typer.Option(None, "--repr", help=f"selfies or smiles. {_default('representation')}"),
    epochs: Optional[int] = typer.Option(None, help=_default("epochs")),
    batch_size: Optional[int] = typer.Option(None, help=_default("batch_size")),
    lr: Optional[float] = typer.Option(None, help=_default("lr")),
    out: Optional[Path] = typer.Option(None, help=f"Checkpoint directory to write. {_default('out')}"),
    resume: Optional[Path] = typer.Option(None, help="Continue an interrupted run from this checkpoint directory."),
    seed: Optional[int] = typer.Option(None, help=_default("seed")),
    device: Optional[str] = typer.Option(None, help=f"auto, cpu or cuda. {_default('device')}"),
    max_len: Optional[int] = typer.Option(None, help="Longest molecule in tokens; longer rows are rejected. "
                                          f"{_default('max_len')}"),
    n_jobs: Optional[int] = typer.Option(None, help=f"Processes for RDKit work. {_default('n_jobs')}"),
    config: Optional[Path] = typer.Option(None, help="JSON file of further TrainConfig fields; options typed on the "
                                          "command line override it."),
    stop_after: Optional[int] = typer.Option(None, help="End this run after N epochs in all (the schedules "
                                             "still span --epochs); --resume continues it. 0: run to --epochs. "
                                             f"{_default('stop_after')}"),
    unlabelled: Optional[List[str]] = typer.Option(None, help="A further molecule file whose molecules train the VAE "
                                                   "only (no labels of --data's own columns); repeat."),
    init: Optional[str] = typer.Option(None, help="Start from this model's weights (a shipped name such as "
                                       "moses-smiles, or a checkpoint directory) with a fresh fine-tuning schedule; "
                                       "its representation is used and its vocabulary grows for new tokens."),
    checkpoint_every: Optional[str] = typer.Option(None, help="Also save the full trainer state inside epochs: every "
                                                   "N steps (500) or N minutes (10m); 0: at epoch ends only. "
                                                   f"{_default('checkpoint_every')}"),
    max_steps: Optional[int] = typer.Option(None, help="The schedules span N optimizer steps instead of "
                                            f"--epochs whole epochs. {_default('max_steps')}"),
    time_budget: Optional[str] = typer.Option(None, help="Size the schedule to this much training time (90m, 2h) "
                                              "at the speed timed on this machine before the first step: one "
                                              f"training cycle. {_default('time_budget')}"),
) -> None:
    """Train a VAE on your molecules, the embedded MOSES subset, or full MOSES.

    An option typed here overrides the --config file; the defaults shown apply where neither sets a value.
    """
    from molvae.train.config import train_config_from_cli
    from molvae.train.loop import fit

    cfg = train_config_from_cli(
        config_file=str(config) if config else None,
        data=data, smiles_col=smiles_col, properties=tuple(property) if property else None,
        conditions=_names(condition) if condition else None, representation=repr,
        epochs=epochs, batch_size=batch_size, lr=lr, out=str(out) if out else None,
        resume=str(resume) if resume else None, seed=seed, device=device, max_len=max_len, n_jobs=n_jobs,
        stop_after=stop_after, init=init, checkpoint_every=checkpoint_every, max_steps=max_steps,
        time_budget=time_budget,
        unlabelled=tuple(unlabelled) if unlabelled else None,
    )
    path = fit(cfg)
    typer.echo(f"checkpoint written to {path}")


def _register_commands() -> None:
    # each command group lives in its own module; they register here so `molvae --help` lists all
    from molvae.cli import density as cli_density
    from molvae.cli import evaluate as cli_evaluate
    from molvae.cli import generate as cli_generate
    from molvae.cli import optimize as cli_optimize
    from molvae.cli import plot as cli_plot
    from molvae.cli import predict as cli_predict
    from molvae.cli import score as cli_score

    for module in (cli_generate, cli_density, cli_optimize, cli_evaluate, cli_plot, cli_score, cli_predict):
        module.register(app)
    __import__("molvae.cli.serve", fromlist=["register"]).register(app)  # `molvae serve` (web extra on use)


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
