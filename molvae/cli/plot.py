"""`molvae plot history|latent|properties`: charts as PNG or SVG files, no notebook needed."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

__all__ = ["register"]

plot_app = typer.Typer(help="Draw charts to PNG/SVG: training curves, latent maps, property distributions.",
                       no_args_is_help=True)


def _molecules(source: str, smiles_col: Optional[str]) -> "object":
    """A user file as a frame with a `smiles` column; 'embedded' / 'moses' name the test split of those sets."""
    from molvae.data.datasets import dataset_path
    from molvae.data.read import read_table

    df, col = read_table(dataset_path(source, "test"), smiles_col)
    return df.rename(columns={col: "smiles"}) if col != "smiles" else df


def _done(path: Path) -> None:
    typer.echo(f"wrote {path}")


@plot_app.command("history")
def history(
    run: Path = typer.Argument(..., help="A run directory written by `molvae train`, or its history.csv."),
    output: Path = typer.Option(Path("history.png"), "-o", "--output", help="Image to write (.png or .svg)."),
) -> None:
    """Training curves per epoch: losses, accuracies, property MAE, KL weight, learning rate, active units."""
    from molvae.plotting.charts import plot_history

    plot_history(run, output, title=f"training history: {run}")
    _done(output)


@plot_app.command("latent")
def latent(
    data: str = typer.Option("embedded", "--data", help="Molecules to map: a CSV/SMI/SDF file, 'embedded' or 'moses' (their test split)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Checkpoint directory or shipped name (default model if omitted)."),
    color: str = typer.Option("logp", "--color", help="Property to colour by: a numeric column of DATA or an RDKit property."),
    n: int = typer.Option(3000, "--n", min=3, help="At most this many molecules (a seeded random subset)."),
    seed: int = typer.Option(0, help="Seed of the subset."),
    smiles_col: Optional[str] = typer.Option(None, help="SMILES column of DATA (default: detected)."),
    output: Path = typer.Option(Path("latent.png"), "-o", "--output", help="Image to write (.png or .svg)."),
) -> None:
    """PCA map of the latent means of molecules, coloured by a property."""
    import molvae
    from molvae.plotting.charts import plot_latent

    frame = _molecules(data, smiles_col)
    plot_latent(molvae.load(model), frame, color=color, path=output, n=n, seed=seed)
    _done(output)


@plot_app.command("properties")
def properties(
    generated: Path = typer.Argument(..., help="Generated molecules (e.g. from `molvae sample -o`)."),
    reference: str = typer.Option("embedded", "--reference", help="A file of molecules, 'embedded' (the shipped 2,000 MOSES test molecules) or 'moses' (MOSES test)."),
    prop: list[str] = typer.Option(["logp", "qed", "sa", "mw"], "--property", "-p", help="Property to plot (repeat)."),
    n: int = typer.Option(20_000, "--n", min=1, help="At most this many reference molecules."),
    smiles_col: Optional[str] = typer.Option(None, help="SMILES column of GENERATED (default: detected)."),
    output: Path = typer.Option(Path("properties.png"), "-o", "--output", help="Image to write (.png or .svg)."),
) -> None:
    """Property histograms of generated molecules over a reference set, with Wasserstein distances."""
    from molvae.data.datasets import is_dataset_name
    from molvae.plotting.charts import plot_properties

    gen = _molecules(str(generated), smiles_col)
    ref = _molecules(reference, None)
    if len(ref) > n:
        ref = ref.sample(n, random_state=0)
    plot_properties(gen, ref, prop, output, labels=(generated.name, reference if is_dataset_name(reference)
                                                    else Path(reference).name))
    _done(output)


def register(app: typer.Typer) -> None:
    """Add the `plot` command group to `app`."""
    app.add_typer(plot_app, name="plot")
