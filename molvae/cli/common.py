"""What the CLI command modules share: option declarations, consoles, model loading, reading molecules
from arguments, the summary line, terminal tables and writing results with their run record."""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from molvae.errors import DataError, UsageError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MODEL", "DEVICE", "PRECISION", "NJOBS", "OUTPUT", "PROPS", "GRID", "SEED", "METHOD_GREEDY", "BATCH",
           "out_console", "err_console", "reported_warnings", "load_model", "properties_or_default", "is_file_argument",
           "read_inputs", "summary_line", "model_facts", "emit", "write_result", "check_output", "print_table",
           "count_phrase"]

_SHOW = 20  # rows printed to the terminal
_FILE_SUFFIXES = (".csv", ".tsv", ".smi", ".smiles", ".txt", ".sdf")

# Shared option declarations (typer reads defaults from these objects).
MODEL = typer.Option(None, "--model", "-m", help="Shipped model name or checkpoint directory (default: the shipped default).")
DEVICE = typer.Option("auto", help="auto, cpu, cuda or cuda:N.")
PRECISION = typer.Option("auto", help="auto (bf16 where the hardware has it), fp32 or bf16.")
NJOBS = typer.Option(0, "--n-jobs", "-j", help="Processes for RDKit validation and properties, used from 2,000 "
                     "molecules on (0: all cores).")
OUTPUT = typer.Option(None, "--output", "-o", help="Write to this file (.csv, .smi, .sdf, .parquet) instead of a table.")
PROPS = typer.Option([], "--property", "-p", help="RDKit property to compute (logp, qed, sa, ...); repeat. Default: logp, qed, sa.")
GRID = typer.Option(None, "--grid", help="Also draw the first 24 valid molecules to this PNG.")
SEED = typer.Option(None, "--seed", help="Random seed (default: fresh; printed in the summary).")
METHOD_GREEDY = typer.Option("greedy", "--method", help="greedy, multinomial or beam.")
BATCH = typer.Option(None, "--batch-size", help="Latents decoded at once (default 1024 on CPU).")


def out_console() -> Console:
    return Console(soft_wrap=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def reported_warnings() -> Iterator[None]:
    """Show the library's warnings (skipped rows, too few unique molecules) as plain
    "warning:" lines on stderr rather than Python's file:line format."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if issubclass(w.category, (RuntimeWarning, UserWarning)):
            err_console().print(f"[yellow]warning:[/] {w.message}")


def load_model(model: str | None, device: str, precision: str, n_jobs: int) -> Any:
    from molvae.generation.api import load

    return load(model, device=device, precision=precision, n_jobs=None if n_jobs <= 0 else n_jobs)


def properties_or_default(props: Sequence[str]) -> tuple[str, ...]:
    return tuple(props) if props else ("logp", "qed", "sa")


def is_file_argument(arg: str) -> bool:
    """Whether a command-line argument names an existing file (a long SMILES is no file name: the OS refuses
    to look it up, and that is an answer, not an error)."""
    try:
        return Path(arg).is_file()
    except (OSError, ValueError):
        return False


def read_inputs(inputs: Sequence[str], smiles_col: str | None = None) -> list[str]:
    """Molecules from arguments: an existing file (CSV/SMI/SDF, read with `tables.read_table`)
    contributes its SMILES column; any other argument is itself a SMILES."""
    from molvae.data.read import read_table

    out: list[str] = []
    for arg in inputs:
        if is_file_argument(arg):
            df, col = read_table(Path(arg), smiles_col)
            out.extend(df[col].astype(str).tolist())
        elif any(arg.lower().endswith(s) or arg.lower().endswith(s + ".gz") for s in _FILE_SUFFIXES):
            raise DataError(f"{arg}: file not found")
        else:
            out.append(arg)
    if not out:
        raise UsageError("no molecules given: pass SMILES strings or a CSV/SMI/SDF file")
    return out


def count_phrase(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def summary_line(df: pd.DataFrame, seconds: float, n_asked: int | None = None) -> str:
    """Validity, uniqueness (distinct valid / valid), novelty (novel / distinct valid, when
    known), time and molecules per second."""
    import pandas as pd

    n = len(df)
    valid = df["canonical"][df["valid"].astype(bool)] if n else pd.Series(dtype=object)
    parts = [count_phrase(n, "molecule") + (f" (asked {n_asked})" if n_asked is not None and n_asked != n else "")]
    if n:
        parts.append(f"valid {len(valid) / n:.1%}")
    uniq = valid.drop_duplicates()
    if len(valid):
        parts.append(f"unique {len(uniq) / len(valid):.1%}")
    if "novel" in df and len(uniq):
        novel = df.loc[uniq.index, "novel"].astype(bool)
        parts.append(f"novel {novel.mean():.1%}")
    parts.append(f"{seconds:.2f} s")
    if seconds > 0 and n:
        parts.append(f"{n / seconds:,.0f} molecules/s")
    return ", ".join(parts)


def _fmt(value: Any) -> str:
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else f"{value:.3g}"
    if value is None:
        return ""
    return str(value)


def print_table(df: pd.DataFrame, title: str, fold: Sequence[str] = ("smiles", "input")) -> None:
    """The first rows of `df` as a terminal table (numbers right-aligned, NaN and None blank, booleans yes/no);
    the `fold` columns (SMILES) wrap instead of being cut."""
    import pandas as pd

    table = Table(title=title, title_justify="left")
    cols = [c for c in df.columns if c not in ("canonical", "mol")]
    for col in cols:
        numeric = pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col])
        table.add_column(str(col), justify="right" if numeric else "left",
                         overflow="fold" if col in fold else "ellipsis")
    for _, row in df.head(_SHOW).iterrows():
        table.add_row(*(_fmt(row[c]) for c in cols))
    console = out_console()
    console.print(table)
    if len(df) > _SHOW:
        console.print(f"... {len(df) - _SHOW} more rows; use -o FILE to save all of them")


def model_facts(vae: Any) -> dict[str, Any]:
    """The model part of a run record: shipped name (or None), directory, representation, the device and
    precision "auto" resolved to (bf16 and fp32 draw different molecules from one seed), and the model's
    default sampling setting (what a temperature or top-p left out of the settings meant)."""
    return {"name": vae.name, "path": str(vae.path) if vae.path is not None else None,
            "representation": vae.tokenizer.representation, "device": str(vae.device),
            "precision": vae.precision, "sampling": dict(vae.sampling)}


def emit(df: pd.DataFrame, output: Path | None, title: str, grid: Path | None, command: str,
          settings: dict[str, Any], vae: Any) -> None:
    """Print `df` as a table, or write it to `output` with its run record (`molvae.data.write.write_record`)."""
    if output is not None:
        write_result(df, output, command, settings, vae)
    else:
        print_table(df, title)
    if grid is not None:
        from molvae.plotting.molecules import grid as draw_grid

        draw_grid(df, path=grid, legend="qed" if "qed" in df else None)
        err_console().print(f"grid drawn to {grid}")


def write_result(df: pd.DataFrame, output: Path, command: str, settings: dict[str, Any], vae: Any,
                 **record: Any) -> None:
    """Write `df` to `output` (format from the extension) with its run record (`molvae.data.write.write_record`:
    the command, `settings`, the model, the seed in `df.attrs`, row counts and any further `record` fields)."""
    from molvae.data.write import output_format, write_molecules, write_record

    output_format(output)  # unknown extension: usage error before anything is written
    written = write_molecules(df, output)
    path = write_record(output, f"molvae {command}", settings, model_facts(vae), seed=df.attrs.get("seed"),
                        rows=len(df), rows_written=written, **record)
    err_console().print(f"wrote {written} rows to {output} (settings in {path.name})")


def check_output(output: Path | None, grid: Path | None = None, option: str = "--grid") -> None:
    """Fail on a bad extension before the (slow) work starts: `output` a molecule file, `grid` (named
    `option` in the message) a PNG image."""
    from molvae.data.write import output_format

    if output is not None:
        output_format(output)
    if grid is not None and grid.suffix.lower() != ".png":
        raise UsageError(f"{option} writes a PNG image; got {grid.name!r}")
