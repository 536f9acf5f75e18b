"""`molvae predict`: the property head's predictions for molecules, each with its applicability domain.

`register(app)` adds the command. Like `molvae score` it streams a file through the library in chunks
(memory bounded by the chunk, not the file) and writes each chunk as it goes; every input row is kept,
those without a prediction with NaN values and the reason.
"""
from __future__ import annotations

import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import typer

from molvae.cli.common import (BATCH, DEVICE, MODEL, PRECISION, check_output, count_phrase, err_console, load_model,
                               model_facts, print_table, read_inputs, reported_warnings)
from molvae.cli.score import _progress

__all__ = ["register"]


def predict(
    inputs: list[str] = typer.Argument(..., help="A CSV/TSV/SMI/SDF/parquet file (streamed), or SMILES strings."),
    model: str | None = MODEL,
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the predictions to this file (.csv, "
                                       ".smi, .sdf, .parquet) instead of a table."),
    rdkit: bool = typer.Option(False, "--rdkit", help="Also RDKit's value of each predicted property RDKit "
                               "computes (column <name>_rdkit), to compare with."),
    strict: bool = typer.Option(False, "--strict", help="Give no prediction for molecules the model spells only "
                                "without their stereochemistry or standardized (they get a reason instead)."),
    smiles_col: str | None = typer.Option(None, help="SMILES column of the input file (default: detected)."),
    chunk_size: int = typer.Option(10_000, "--chunk-size", min=1, help="Molecules read, predicted and written at "
                                   "a time."),
    batch_size: int | None = BATCH,
    device: str = DEVICE,
    precision: str = PRECISION,
) -> None:
    """Property-head predictions in the training data's units, each row with in_domain and anomaly."""
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
    n, n_in, n_missing, n_relaxed, shown = 0, 0, 0, 0, []
    with _progress(total, chunk_size, "predicting") as bar, reported_warnings():
        task = bar.add_task("predicting", total=total)
        writer = MoleculeWriter(output) if output is not None else None
        with writer if writer is not None else nullcontext(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*no calibrated domain")  # said once, above
            for frame, col in chunks:
                df = vae.predict(frame[col].tolist(), on_invalid="keep", rdkit=rdkit, batch_size=batch_size,
                                 strict=strict, domain=True)
                df["row"] += n
                extra = [c for c in frame.columns if c != col and c not in df]  # the input's ids and data
                df = pd.concat([df, frame[extra]], axis=1)
                n += len(df)
                n_in += int(df["in_domain"].fillna(False).astype(bool).sum())
                n_missing += int(df[vae.prop_names[0]].isna().sum())
                n_relaxed += int((df["stereo_removed"] | df["standardized"]).sum())
                if writer is not None:
                    writer.write(df)
                elif sum(len(s) for s in shown) < 20:
                    shown.append(df)
                bar.advance(task, len(df))
    seconds = time.perf_counter() - t0
    if writer is not None:
        record = write_record(output, "molvae predict", settings, model_facts(vae), rows=n,
                              rows_written=writer.rows_written, properties=list(vae.prop_names))
        err_console().print(f"wrote {writer.rows_written} rows to {output} (settings in {record.name})")
    else:
        print_table(pd.concat(shown, ignore_index=True) if shown else pd.DataFrame(),
                    f"{n} molecules: {', '.join(vae.prop_names)} predicted")
    domain = f"in domain {n_in / max(n, 1):.1%}, " if vae.domain is not None else ""
    err_console().print(f"{count_phrase(n, 'molecule')} predicted, {domain}{n_missing} without a prediction "
                        f"(see reason), {n_relaxed} encoded without stereochemistry or standardized, "
                        f"{seconds:.2f} s, {n / max(seconds, 1e-9):,.0f} molecules/s")


def register(app: typer.Typer) -> None:
    """Add `molvae predict` to the app."""
    app.command("predict")(predict)
