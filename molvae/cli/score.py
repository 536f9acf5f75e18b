"""`molvae score` (anomaly / applicability-domain scores of molecules) and `molvae domain` (calibrate a
model's domain on its training molecules).

`register(app)` adds both. `score` streams a file through `MolVAE.score` in chunks (memory bounded by
the chunk, not the file) and writes each scored chunk as it goes; `domain` calls
`MolVAE.calibrate_domain` and writes `domain.json` + `domain_reference.json` into the checkpoint.
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import typer

from molvae.cli.common import (BATCH, DEVICE, MODEL, PRECISION, check_output, count_phrase, err_console, load_model,
                               model_facts, print_table, read_inputs, reported_warnings)

__all__ = ["register"]

CHUNK = typer.Option(10_000, "--chunk-size", min=1, help="Molecules read, scored and written at a time.")


def _progress(total: int | None, chunk_size: int, label: str = "scoring") -> Any:
    """A progress bar on stderr, hidden when the input fits in one chunk (also used by `molvae predict`)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err_console(), transient=True, disable=total is not None and total <= chunk_size)


def score(
    inputs: list[str] = typer.Argument(..., help="A CSV/TSV/SMI/SDF/parquet file (streamed), or SMILES strings."),
    model: str | None = MODEL,
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the scores to this file (.csv, .smi, "
                                       ".sdf, .parquet) instead of a table."),
    smiles_col: str | None = typer.Option(None, help="SMILES column of the input file (default: detected)."),
    chunk_size: int = CHUNK,
    batch_size: int | None = BATCH,
    device: str = DEVICE,
    precision: str = PRECISION,
) -> None:
    """Anomaly scores: how unlike the model's training data each molecule is, and whether it is in domain."""
    settings = dict(locals())  # the arguments as given, before any local name is bound
    import pandas as pd

    from molvae.data.write import MoleculeWriter, write_record
    from molvae.generation.chunks import count_rows, iter_molecules

    check_output(output)
    stream = len(inputs) == 1 and Path(inputs[0]).is_file()
    smiles = None if stream else read_inputs(inputs, smiles_col)
    vae = load_model(model, device, precision, 1)
    if vae.domain is None:
        err_console().print(f"[yellow]warning:[/] model {vae.name} has no calibrated domain: anomaly and in_domain "
                            "are left empty (calibrate it with `molvae domain --data TRAINING_FILE`)")
    t0 = time.perf_counter()
    chunks = (iter_molecules(inputs[0], smiles_col, chunk_size) if stream else
              ((pd.DataFrame({"smiles": smiles[i:i + chunk_size]}), "smiles")
               for i in range(0, len(smiles), chunk_size)))
    total = count_rows(inputs[0]) if stream else len(smiles)
    n, n_in, n_unspelled, shown = 0, 0, 0, []
    with _progress(total, chunk_size) as bar, reported_warnings():
        task = bar.add_task("scoring", total=total)
        writer = MoleculeWriter(output) if output is not None else None
        with writer if writer is not None else nullcontext():
            for frame, col in chunks:
                df = vae.score(frame[col].tolist(), batch_size=batch_size, chunk_size=chunk_size)
                df["row"] += n
                extra = [c for c in frame.columns if c != col and c not in df]  # the input's ids and data
                df = pd.concat([df, frame[extra]], axis=1)
                n += len(df)
                n_in += int(df["in_domain"].fillna(False).astype(bool).sum())
                n_unspelled += int((df["reason"] != "").sum())
                if writer is not None:
                    writer.write(df)
                elif sum(len(s) for s in shown) < 20:
                    shown.append(df)
                bar.advance(task, len(df))
    seconds = time.perf_counter() - t0
    if writer is not None:
        record = write_record(output, "molvae score", settings, model_facts(vae), rows=n,
                              rows_written=writer.rows_written)
        err_console().print(f"wrote {writer.rows_written} rows to {output} (settings in {record.name})")
    else:
        print_table(pd.concat(shown, ignore_index=True) if shown else pd.DataFrame(), f"{n} molecules scored")
    domain = f"in domain {n_in / max(n, 1):.1%}, " if vae.domain is not None else ""
    err_console().print(f"{count_phrase(n, 'molecule')} scored, {domain}{n_unspelled} the model cannot spell, "
                        f"{seconds:.2f} s, {n / max(seconds, 1e-9):,.0f} molecules/s")


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
    from molvae.generation.domain import calibrate_domain

    vae = load_model(model, device, "auto", 1)
    target = out or vae.path
    if target is None or not Path(target).is_dir():
        raise UsageError(f"--out {target}: not a checkpoint directory")
    table, col = read_table(dataset_path(data, "train"), smiles_col)
    t0 = time.perf_counter()
    err_console().print(f"calibrating the domain of {vae.name} on {len(table):,} molecules of {data}")
    fitted = calibrate_domain(vae, table[col].tolist(), n_reference, n_calibration, quantile, seed, source=data)
    fitted.save(target)
    err_console().print(f"threshold {fitted.threshold:.3f} (the {quantile:g} quantile of "
                        f"{fitted.info['n_calibration']:,} held-out training molecules), "
                        f"{len(fitted.reference):,} reference molecules, "
                        f"{time.perf_counter() - t0:.0f} s; wrote {Path(target) / 'domain.json'}")


def register(app: typer.Typer) -> None:
    """Add `molvae score` and `molvae domain` to the app."""
    app.command("score")(score)
    app.command("domain")(domain)
