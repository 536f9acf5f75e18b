"""`molvae predict`: the property head's predictions for molecules, each with its applicability domain.

`register(app)` adds the command. Like `molvae score` it streams a file through the library in chunks
(memory bounded by the chunk, not the file) and writes each chunk as it goes; every input row is kept,
those without a prediction with NaN values and the reason.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from molvae.cli.common import BATCH, DEVICE, MODEL, PRECISION, count_phrase, err_console
from molvae.cli.input_stream import CHUNK, INPUTS, SMILES_COL, finish, start, stream_chunks

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["register"]


def predict(
    inputs: list[str] = INPUTS,
    model: str | None = MODEL,
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the predictions to this file (.csv, "
                                       ".smi, .sdf, .parquet) instead of a table."),
    rdkit: bool = typer.Option(False, "--rdkit", help="Also RDKit's value of each predicted property RDKit "
                               "computes (column <name>_rdkit), to compare with."),
    strict: bool = typer.Option(False, "--strict", help="Give no prediction for molecules the model spells only "
                                "without their stereochemistry or standardized (they get a reason instead)."),
    smiles_col: str | None = SMILES_COL,
    chunk_size: int = CHUNK,
    batch_size: int | None = BATCH,
    device: str = DEVICE,
    precision: str = PRECISION,
) -> None:
    """Property-head predictions in the training data's units, each row with in_domain and anomaly."""
    settings = dict(locals())  # the arguments as given, before any local name is bound
    source, vae = start(inputs, smiles_col, chunk_size, output, model, device, precision)
    counts = {"in": 0, "missing": 0, "relaxed": 0}

    def tally(df: pd.DataFrame) -> None:
        counts["in"] += int(df["in_domain"].fillna(False).astype(bool).sum())
        counts["missing"] += int(df[vae.prop_names[0]].isna().sum())
        counts["relaxed"] += int((df["stereo_removed"] | df["standardized"]).sum())

    def process(smiles: list[str]) -> pd.DataFrame:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*no calibrated domain")  # said once, above
            return vae.predict(smiles, on_invalid="keep", rdkit=rdkit, batch_size=batch_size, strict=strict,
                               domain=True)

    run = stream_chunks(source, chunk_size, output, "predicting", process, tally)
    finish(run, output, "molvae predict", settings, vae, f"{run.rows} molecules: {', '.join(vae.prop_names)} predicted",
           properties=list(vae.prop_names))
    domain = f"in domain {counts['in'] / max(run.rows, 1):.1%}, " if vae.domain is not None else ""
    err_console().print(f"{count_phrase(run.rows, 'molecule')} predicted, {domain}{counts['missing']} without a "
                        f"prediction (see reason), {counts['relaxed']} encoded without stereochemistry or "
                        f"standardized, {run.seconds:.2f} s, {run.rows / max(run.seconds, 1e-9):,.0f} molecules/s")


def register(app: typer.Typer) -> None:
    """Add `molvae predict` to the app."""
    app.command("predict")(predict)
