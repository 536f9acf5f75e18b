"""CLI commands for generation: sample, encode, decode, reconstruct, interpolate, neighbors.

`register(app)` adds them to the `molvae` typer app. They parse arguments, call the
`MolVAE` API and format output: a table on the terminal when no `-o` is given (else a file
whose format follows the extension), then a one-line summary on stderr. Errors are raised
as `MolvaeError`s; `molvae.cli.main` turns them into a message and an exit code.
"""
from __future__ import annotations

import math
import time
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
    import numpy as np
    import pandas as pd

__all__ = ["register", "read_inputs", "summary_line", "model_facts"]

_SHOW = 20  # rows printed to the terminal
_FILE_SUFFIXES = (".csv", ".tsv", ".smi", ".smiles", ".txt", ".sdf")

# Shared option declarations (typer reads defaults from these objects).
_MODEL = typer.Option(None, "--model", "-m", help="Shipped model name or checkpoint directory (default: the shipped default).")
_DEVICE = typer.Option("auto", help="auto, cpu, cuda or cuda:N.")
_PRECISION = typer.Option("auto", help="auto (bf16 where the hardware has it), fp32 or bf16.")
_NJOBS = typer.Option(0, "--n-jobs", "-j", help="Processes for RDKit validation and properties, used from 2,000 "
                     "molecules on (0: all cores).")
_OUTPUT = typer.Option(None, "--output", "-o", help="Write to this file (.csv, .smi, .sdf, .parquet) instead of a table.")
_PROPS = typer.Option([], "--property", "-p", help="RDKit property to compute (logp, qed, sa, ...); repeat. Default: logp, qed, sa.")
_GRID = typer.Option(None, "--grid", help="Also draw the first 24 valid molecules to this PNG.")
_SEED = typer.Option(None, "--seed", help="Random seed (default: fresh; printed in the summary).")
_METHOD_GREEDY = typer.Option("greedy", "--method", help="greedy, multinomial or beam.")
_BATCH = typer.Option(None, "--batch-size", help="Latents decoded at once (default 1024 on CPU).")


def _out() -> Console:
    return Console(soft_wrap=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def _reported_warnings() -> Iterator[None]:
    """Show the library's warnings (skipped rows, too few unique molecules) as plain
    "warning:" lines on stderr rather than Python's file:line format."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if issubclass(w.category, (RuntimeWarning, UserWarning)):
            _err().print(f"[yellow]warning:[/] {w.message}")


def _load(model: str | None, device: str, precision: str, n_jobs: int) -> Any:
    from molvae.generation.api import load

    return load(model, device=device, precision=precision, n_jobs=None if n_jobs <= 0 else n_jobs)


def _properties(props: Sequence[str]) -> tuple[str, ...]:
    return tuple(props) if props else ("logp", "qed", "sa")


def read_inputs(inputs: Sequence[str], smiles_col: str | None = None) -> list[str]:
    """Molecules from arguments: an existing file (CSV/SMI/SDF, read with `tables.read_table`)
    contributes its SMILES column; any other argument is itself a SMILES."""
    from molvae.data.read import read_table

    out: list[str] = []
    for arg in inputs:
        path = Path(arg)
        if path.is_file():
            df, col = read_table(path, smiles_col)
            out.extend(df[col].astype(str).tolist())
        elif any(arg.lower().endswith(s) or arg.lower().endswith(s + ".gz") for s in _FILE_SUFFIXES):
            raise DataError(f"{arg}: file not found")
        else:
            out.append(arg)
    if not out:
        raise UsageError("no molecules given: pass SMILES strings or a CSV/SMI/SDF file")
    return out


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def summary_line(df: pd.DataFrame, seconds: float, n_asked: int | None = None) -> str:
    """Validity, uniqueness (distinct valid / valid), novelty (novel / distinct valid, when
    known), time and molecules per second."""
    import pandas as pd

    n = len(df)
    valid = df["canonical"][df["valid"].astype(bool)] if n else pd.Series(dtype=object)
    parts = [_count(n, "molecule") + (f" (asked {n_asked})" if n_asked is not None and n_asked != n else "")]
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


def _print_table(df: pd.DataFrame, title: str) -> None:
    import pandas as pd

    table = Table(title=title, title_justify="left")
    cols = [c for c in df.columns if c not in ("canonical", "mol")]
    for col in cols:
        numeric = pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col])
        table.add_column(str(col), justify="right" if numeric else "left",
                         overflow="fold" if col in ("smiles", "input") else "ellipsis")
    for _, row in df.head(_SHOW).iterrows():
        table.add_row(*(_fmt(row[c]) for c in cols))
    console = _out()
    console.print(table)
    if len(df) > _SHOW:
        console.print(f"... {len(df) - _SHOW} more rows; use -o FILE to save all of them")


def model_facts(vae: Any) -> dict[str, Any]:
    """The model part of a run record: shipped name (or None), directory, representation, and the
    device and precision "auto" resolved to (bf16 and fp32 draw different molecules from one seed)."""
    return {"name": vae.name, "path": str(vae.path) if vae.path is not None else None,
            "representation": vae.tokenizer.representation, "device": str(vae.device),
            "precision": vae.precision}


def _emit(df: pd.DataFrame, output: Path | None, title: str, grid: Path | None, command: str,
          settings: dict[str, Any], vae: Any) -> None:
    """Print `df` as a table, or write it to `output` with its run record (`molvae.data.write.write_record`)."""
    from molvae.data.write import output_format, write_molecules, write_record

    if output is not None:
        output_format(output)  # unknown extension: usage error before anything else
        written = write_molecules(df, output)
        record = write_record(output, f"molvae {command}", settings, model_facts(vae),
                              seed=df.attrs.get("seed"), rows=len(df), rows_written=written)
        _err().print(f"wrote {written} rows to {output} (settings in {record.name})")
    else:
        _print_table(df, title)
    if grid is not None:
        from molvae.plotting.molecules import grid as draw_grid

        draw_grid(df, path=grid, legend="qed" if "qed" in df else None)
        _err().print(f"grid drawn to {grid}")


def _check_output(output: Path | None, grid: Path | None = None) -> None:
    """Fail on a bad extension before the (slow) work starts."""
    from molvae.data.write import output_format

    if output is not None:
        output_format(output)
    if grid is not None and grid.suffix.lower() != ".png":
        raise UsageError(f"--grid writes a PNG image; got {grid.name!r}")


# ------------------------------------------------------------------ commands


def sample(
    n: int = typer.Option(100, "--n", "-n", help="Number of molecules."),
    model: str | None = _MODEL,
    temperature: float = typer.Option(1.0, "--temperature", "-t", help="Softmax temperature in (0, 10]."),
    seed: int | None = _SEED,
    method: str = typer.Option("multinomial", "--method", help="multinomial, greedy or beam."),
    beam_width: int = typer.Option(5, help="Beams per latent (method beam)."),
    output: Path | None = _OUTPUT,
    unique_valid: bool = typer.Option(False, "--unique-valid", help="Keep drawing until N distinct valid molecules."),
    grid: Path | None = _GRID,
    batch_size: int | None = _BATCH,
    property: list[str] = _PROPS,
    device: str = _DEVICE,
    precision: str = _PRECISION,
    n_jobs: int = _NJOBS,
) -> None:
    """Sample molecules from the prior."""
    settings = dict(locals())  # the arguments as given, for the run record
    _check_output(output, grid)
    vae = _load(model, device, precision, n_jobs)
    t0 = time.perf_counter()
    with _reported_warnings():
        df = vae.sample(n, temperature=temperature, seed=seed, method=method, beam_width=beam_width,
                        batch_size=batch_size, properties=_properties(property), unique_valid=unique_valid)
    seconds = time.perf_counter() - t0
    _emit(df, output, f"{len(df)} molecules sampled ({method}, T={temperature:g})", grid, "sample", settings, vae)
    _err().print(f"{summary_line(df, seconds, n)}; seed {df.attrs['seed']}")


def encode(
    inputs: list[str] = typer.Argument(..., help="SMILES strings and/or CSV/SMI/SDF files."),
    model: str | None = _MODEL,
    output: Path | None = typer.Option(None, "--output", "-o", help="Write latents to .npy (n, d) or .csv."),
    smiles_col: str | None = typer.Option(None, help="SMILES column of input files (default: detected)."),
    sample_z: bool = typer.Option(False, "--sample", help="Draw from the posterior instead of taking its mean."),
    seed: int | None = _SEED,
    on_invalid: str = typer.Option("error", help="error (stop, naming the bad rows) or skip (leave them out)."),
    device: str = _DEVICE,
    precision: str = _PRECISION,
) -> None:
    """Encode molecules to latent vectors (posterior means)."""
    import numpy as np
    import pandas as pd

    if output is not None and output.suffix.lower() not in (".npy", ".csv"):
        raise UsageError(f"encode writes .npy or .csv; got {output.name!r}")
    smiles = read_inputs(inputs, smiles_col)
    vae = _load(model, device, precision, 1)
    t0 = time.perf_counter()
    with _reported_warnings():
        z, rows = vae.encode(smiles, sample=sample_z, seed=seed, on_invalid=on_invalid, return_rows=True)
    seconds = time.perf_counter() - t0
    kept = [smiles[i] for i in rows]
    if output is not None:
        from molvae.data.write import atomic_path

        with atomic_path(output) as tmp:
            if output.suffix.lower() == ".npy":
                with open(tmp, "wb") as fh:
                    np.save(fh, z, allow_pickle=False)
            else:
                frame = pd.DataFrame(z, columns=[f"z{i}" for i in range(z.shape[1])])
                frame.insert(0, "smiles", kept)
                frame.to_csv(tmp, index=False)
        _err().print(f"wrote {len(z)} x {z.shape[1]} latents to {output}")
    else:
        show = pd.DataFrame({"row": rows, "smiles": kept, "|z|": np.linalg.norm(z, axis=1)})
        for j in range(min(4, z.shape[1])):
            show[f"z{j}"] = z[:, j]
        _print_table(show, f"{len(z)} latent vectors of dimension {vae.latent_dim}")
    skipped = len(smiles) - len(rows)
    _err().print(f"{_count(len(z), 'molecule')} encoded" + (f", {skipped} skipped" if skipped else "")
                 + f", {seconds:.2f} s, {len(z) / max(seconds, 1e-9):,.0f} molecules/s")


def _read_latents(path: Path) -> np.ndarray:
    import numpy as np
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.suffix.lower() == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DataError(f"{path}: not a readable .npy array of latents ({exc})") from exc
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path)
        cols = [c for c in frame.columns if str(c).startswith("z") and str(c)[1:].isdigit()]
        if not cols:
            raise DataError(f"{path}: no latent columns z0, z1, ... (write them with `molvae encode -o FILE.csv`)")
        return frame[cols].to_numpy(dtype=np.float32)
    raise UsageError(f"decode reads latents from .npy or .csv; got {path.name!r}")


def decode(
    latents: Path = typer.Argument(..., help=".npy array (n, latent_dim), or a .csv written by `molvae encode`."),
    model: str | None = _MODEL,
    method: str = _METHOD_GREEDY,
    temperature: float = typer.Option(1.0, "--temperature", "-t"),
    seed: int | None = _SEED,
    beam_width: int = typer.Option(5, help="Beams per latent (method beam)."),
    output: Path | None = _OUTPUT,
    grid: Path | None = _GRID,
    property: list[str] = _PROPS,
    device: str = _DEVICE,
    precision: str = _PRECISION,
    n_jobs: int = _NJOBS,
) -> None:
    """Decode latent vectors to molecules."""
    settings = dict(locals())  # the arguments as given, for the run record
    _check_output(output, grid)
    z = _read_latents(latents)
    vae = _load(model, device, precision, n_jobs)
    t0 = time.perf_counter()
    with _reported_warnings():
        df = vae.decode_table(z, method=method, temperature=temperature, seed=seed, beam_width=beam_width,
                              properties=_properties(property))
    seconds = time.perf_counter() - t0
    _emit(df, output, f"{len(df)} molecules decoded ({method})", grid, "decode", settings, vae)
    _err().print(summary_line(df, seconds))


def reconstruct(
    inputs: list[str] = typer.Argument(..., help="SMILES strings and/or CSV/SMI/SDF files."),
    model: str | None = _MODEL,
    method: str = _METHOD_GREEDY,
    output: Path | None = _OUTPUT,
    smiles_col: str | None = typer.Option(None, help="SMILES column of input files (default: detected)."),
    on_invalid: str = typer.Option("error", help="error (stop, naming the bad rows) or skip (leave them out)."),
    device: str = _DEVICE,
    precision: str = _PRECISION,
    n_jobs: int = _NJOBS,
) -> None:
    """Encode molecules and decode them again; report exact (canonical) matches."""
    settings = dict(locals())  # the arguments as given, for the run record
    _check_output(output)
    smiles = read_inputs(inputs, smiles_col)
    vae = _load(model, device, precision, n_jobs)
    t0 = time.perf_counter()
    with _reported_warnings():
        df = vae.reconstruct(smiles, method=method, on_invalid=on_invalid, seed=0)
    seconds = time.perf_counter() - t0
    _emit(df, output, f"{len(df)} molecules reconstructed ({method})", None, "reconstruct", settings, vae)
    skipped = len(smiles) - len(df)
    exact = f"exact {df['exact'].mean():.1%}" if len(df) else "nothing encoded"
    _err().print(f"{exact}; " + summary_line(df, seconds) + (f"; {_count(skipped, 'input')} skipped" if skipped else ""))


def interpolate(
    a: str = typer.Argument(..., help="Start molecule (SMILES)."),
    b: str = typer.Argument(..., help="End molecule (SMILES)."),
    steps: int = typer.Option(8, "--steps", help="Points including both ends (>= 2)."),
    kind: str = typer.Option("linear", "--kind", help="linear or slerp."),
    model: str | None = _MODEL,
    method: str = _METHOD_GREEDY,
    output: Path | None = _OUTPUT,
    grid: Path | None = _GRID,
    property: list[str] = _PROPS,
    device: str = _DEVICE,
    precision: str = _PRECISION,
) -> None:
    """Decode evenly spaced points between two molecules' latent vectors."""
    settings = dict(locals())  # the arguments as given, for the run record
    _check_output(output, grid)
    vae = _load(model, device, precision, 1)
    t0 = time.perf_counter()
    with _reported_warnings():
        df = vae.interpolate(a, b, steps=steps, kind=kind, method=method, properties=_properties(property), seed=0)
    seconds = time.perf_counter() - t0
    _emit(df, output, f"{kind} interpolation in {steps} points", grid, "interpolate", settings, vae)
    _err().print(summary_line(df, seconds))


def neighbors(
    smiles: str = typer.Argument(..., help="Query molecule (SMILES)."),
    n: int = typer.Option(10, "--n", "-n", help="Perturbed latents to decode."),
    radius: float = typer.Option(0.5, "--radius", "-r", help="Noise standard deviation per latent dimension."),
    seed: int | None = _SEED,
    unique: bool = typer.Option(False, "--unique", help="Drop invalid rows, repeats and the query itself."),
    model: str | None = _MODEL,
    method: str = _METHOD_GREEDY,
    output: Path | None = _OUTPUT,
    grid: Path | None = _GRID,
    property: list[str] = _PROPS,
    device: str = _DEVICE,
    precision: str = _PRECISION,
) -> None:
    """Decode random perturbations around a molecule; rank by Tanimoto similarity to it."""
    settings = dict(locals())  # the arguments as given, for the run record
    _check_output(output, grid)
    vae = _load(model, device, precision, 1)
    t0 = time.perf_counter()
    with _reported_warnings():
        df = vae.neighbors(smiles, n=n, radius=radius, seed=seed, method=method, properties=_properties(property),
                           unique=unique)
    seconds = time.perf_counter() - t0
    _emit(df, output, f"neighbours of {smiles} (radius {radius:g})", grid, "neighbors", settings, vae)
    _err().print(f"{summary_line(df, seconds, n)}; seed {df.attrs['seed']}")


def register(app: typer.Typer) -> None:
    """Add the generation commands to the `molvae` app."""
    for fn in (sample, encode, decode, reconstruct, interpolate, neighbors):
        app.command(fn.__name__)(fn)
