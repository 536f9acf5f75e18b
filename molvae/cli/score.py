"""`molvae score` (anomaly / applicability-domain scores of molecules) and `molvae domain` (calibrate a
model's domain on its training molecules).

`register(app)` adds both. `score` streams a file through `MolVAE.score` in chunks (memory bounded by
the chunk, not the file) and writes each scored chunk as it goes; `domain` calls
`MolVAE.calibrate_domain` and writes `domain.json` + `domain_reference.json` into the checkpoint.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from molvae.cli.common import BATCH, DEVICE, MODEL, PRECISION, count_phrase, err_console, load_model
from molvae.cli.input_stream import CHUNK, INPUTS, SMILES_COL, finish, start, stream_chunks

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["register"]


def score(
    inputs: list[str] = INPUTS,
    model: str | None = MODEL,
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the scores to this file (.csv, .smi, "
                                       ".sdf, .parquet) instead of a table."),
    smiles_col: str | None = SMILES_COL,
    chunk_size: int = CHUNK,
    batch_size: int | None = BATCH,
    device: str = DEVICE,
    precision: str = PRECISION,
) -> None:
    """Anomaly scores: how unlike the model's training data each molecule is, and whether it is in domain."""
    settings = dict(locals())  # the arguments as given, before any local name is bound
    source, vae = start(inputs, smiles_col, chunk_size, output, model, device, precision)
    counts = {"in": 0, "unspelled": 0}

    def tally(df: pd.DataFrame) -> None:
        counts["in"] += int(df["in_domain"].fillna(False).astype(bool).sum())
        counts["unspelled"] += int((df["reason"] != "").sum())

    run = stream_chunks(source, chunk_size, output, "scoring",
                        lambda smiles: vae.score(smiles, batch_size=batch_size, chunk_size=chunk_size), tally)
    finish(run, output, "molvae score", settings, vae, f"{run.rows} molecules scored")
    domain = f"in domain {counts['in'] / max(run.rows, 1):.1%}, " if vae.domain is not None else ""
    err_console().print(f"{count_phrase(run.rows, 'molecule')} scored, {domain}{counts['unspelled']} the model "
                        f"cannot spell, {run.seconds:.2f} s, {run.rows / max(run.seconds, 1e-9):,.0f} molecules/s")


def domain(
    data: str = typer.Option(..., "--data", help="The model's training molecules: embedded, moses or a file "
                             "(CSV/SMI/SDF)."),
    model: str | None = MODEL,
    smiles_col: str | None = typer.Option(None, "--smiles-col", help="SMILES column of --data (default: found)."),
    n_reference: int = typer.Option(15_000, "--n-reference", min=1, help="Training molecules kept as the "
                                    "nearest-neighbour reference (stored with the model)."),
    n_calibration: int = typer.Option(5_000, "--n-calibration", min=100, help="Other training molecules that set "
                                      "the score statistics and the threshold."),
    quantile: float = typer.Option(0.99, "--quantile", help="Share of calibration molecules inside the domain."),
    seed: int = typer.Option(0, "--seed"),
    out: Path | None = typer.Option(None, "--out", help="Checkpoint directory to write into (default: the model's)."),
    device: str = DEVICE,
) -> None:
    """Calibrate a model's applicability domain (for `molvae score`) on its training molecules."""
    from molvae.data.datasets import dataset_path
    from molvae.data.read import read_table
    from molvae.errors import UsageError
    from molvae.analysis.domain import calibrate_domain

    vae = load_model(model, device, "auto", 1)
    target = out or vae.path
    if target is None or not Path(target).is_dir():
        raise UsageError(f"--out {target}: not a checkpoint directory")
    table, col = read_table(dataset_path(data, "train"), smiles_col)
    t0 = time.perf_counter()
    err_console().print(f"calibrating the domain of {vae.name} on {len(table):,} molecules of {data}")
    fitted = calibrate_domain(vae.codec, vae.prior, table[col].tolist(), n_reference, n_calibration, quantile, seed,
                              source=data)
    fitted.save(target)
    err_console().print(f"threshold {fitted.threshold:.3f} (the {quantile:g} quantile of "
                        f"{fitted.info['n_calibration']:,} held-out training molecules), "
                        f"{len(fitted.reference):,} reference molecules, "
                        f"{time.perf_counter() - t0:.0f} s; wrote {Path(target) / 'domain.json'}")


def register(app: typer.Typer) -> None:
    """Add `molvae score` and `molvae domain` to the app."""
    app.command("score")(score)
    app.command("domain")(domain)
