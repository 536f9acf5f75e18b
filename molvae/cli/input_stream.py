"""Streaming input molecules through the model chunk by chunk, for `molvae score` and `molvae predict`: a
file is read, processed and written one chunk at a time (memory bounded by the chunk, not the file); SMILES
given on the command line go through the same path as one small table. (Sampled molecules stream into a
file through `molvae.generation.sample_stream`.)
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from molvae.cli.common import (check_output, err_console, is_file_argument, load_model, model_facts, print_table,
                               read_inputs, reported_warnings)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["INPUTS", "SMILES_COL", "CHUNK", "Chunks", "open_chunks", "start", "Streamed", "stream_chunks", "finish"]

INPUTS = typer.Argument(..., help="A CSV/TSV/SMI/SDF/parquet file (streamed), or SMILES strings.")
SMILES_COL = typer.Option(None, help="SMILES column of the input file (default: detected).")
CHUNK = typer.Option(10_000, "--chunk-size", min=1, help="Molecules read, processed and written at a time.")
_SHOW = 20  # rows kept for the terminal table when there is no output file


@dataclass(frozen=True)
class Chunks:
    """The input as (DataFrame, SMILES column) chunks, and its row count for the progress bar (None: unknown)."""

    chunks: Iterator[tuple[pd.DataFrame, str]]
    total: int | None


def open_chunks(inputs: list[str], smiles_col: str | None, chunk_size: int) -> Chunks:
    """Chunks of one molecule file (streamed) or of SMILES strings; SMILES are read here, before the model
    is loaded, so that bad arguments fail fast."""
    import pandas as pd

    from molvae.data.read import count_rows, iter_molecules

    if len(inputs) == 1 and is_file_argument(inputs[0]):
        return Chunks(iter_molecules(inputs[0], smiles_col, chunk_size), count_rows(inputs[0]))
    smiles = read_inputs(inputs, smiles_col)
    return Chunks(((pd.DataFrame({"smiles": smiles[i:i + chunk_size]}), "smiles")
                   for i in range(0, len(smiles), chunk_size)), len(smiles))


@dataclass(frozen=True)
class Streamed:
    """What a streamed run did: rows processed, rows in the output file (None without one), the first rows
    for the terminal (without an output file), seconds."""

    rows: int
    rows_written: int | None
    shown: pd.DataFrame
    seconds: float


def _progress(total: int | None, chunk_size: int, label: str) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err_console(), transient=True, disable=total is not None and total <= chunk_size)


def stream_chunks(source: Chunks, chunk_size: int, output: Path | None, label: str,
                  process: Callable[[list[str]], pd.DataFrame],
                  tally: Callable[[pd.DataFrame], None]) -> Streamed:
    """Run `process` (SMILES -> one row per input, with a 0-based `row` column) on every chunk, number its
    rows through the whole input, append the input's other columns (ids, data), call `tally` on each
    finished chunk and write it to `output` (or keep the first rows for the terminal)."""
    import pandas as pd

    from molvae.data.write import MoleculeWriter

    t0 = time.perf_counter()
    n, shown = 0, []
    writer = MoleculeWriter(output) if output is not None else None
    with _progress(source.total, chunk_size, label) as bar, reported_warnings():
        task = bar.add_task(label, total=source.total)
        with writer if writer is not None else nullcontext():
            for frame, col in source.chunks:
                df = process(frame[col].tolist())
                df["row"] += n
                extra = [c for c in frame.columns if c != col and c not in df]
                df = pd.concat([df, frame[extra]], axis=1)
                n += len(df)
                tally(df)
                if writer is not None:
                    writer.write(df)
                elif sum(len(s) for s in shown) < _SHOW:
                    shown.append(df)
                bar.advance(task, len(df))
    return Streamed(n, writer.rows_written if writer is not None else None,
                    pd.concat(shown, ignore_index=True) if shown else pd.DataFrame(), time.perf_counter() - t0)


def start(inputs: list[str], smiles_col: str | None, chunk_size: int, output: Path | None, model: str | None,
          device: str, precision: str) -> tuple[Chunks, Any]:
    """Check the output path and the input, then load the model: (chunks, MolVAE). A model without a calibrated
    domain is said once here (its anomaly/in_domain columns stay empty)."""
    check_output(output)
    source = open_chunks(inputs, smiles_col, chunk_size)
    vae = load_model(model, device, precision, 1)
    if vae.domain is None:
        err_console().print(f"[yellow]warning:[/] model {vae.name} has no calibrated domain: anomaly and in_domain "
                            "are left empty (calibrate it with `molvae domain --data TRAINING_FILE`)")
    return source, vae


def finish(run: Streamed, output: Path | None, command: str, settings: dict[str, Any], vae: Any, title: str,
           **record: Any) -> None:
    """The run record beside the output file (or the first rows as a terminal table)."""
    from molvae.data.write import write_record

    if output is None:
        print_table(run.shown, title)
        return
    written = write_record(output, command, settings, model_facts(vae), rows=run.rows, rows_written=run.rows_written,
                           **record)
    err_console().print(f"wrote {run.rows_written} rows to {output} (settings in {written.name})")
