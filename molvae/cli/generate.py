"""CLI commands for generation: sample, encode, decode, reconstruct, interpolate, neighbors.

`register(app)` adds them to the `molvae` typer app. They parse arguments, call the
`MolVAE` API and format output: a table on the terminal when no `-o` is given (else a file
whose format follows the extension), then a one-line summary on stderr. Errors are raised
as `MolvaeError`s; `molvae.cli.main` turns them into a message and an exit code.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from molvae.cli.common import (BATCH, DEVICE, GRID, METHOD_GREEDY, MODEL, NJOBS, OUTPUT, PRECISION, PROPS, SEED,
                               check_output, count_phrase, emit, err_console, load_model, model_facts,
                               properties_or_default, print_table, read_inputs, reported_warnings, summary_line)
from molvae.errors import DataError, UsageError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["register"]

STRICT = typer.Option(False, "--strict", help="Refuse molecules the model spells only with their stereochemistry "
                      "removed or standardized (largest fragment, neutralized); by default they are encoded in that "
                      "form and flagged.")

# One `molvae sample` run draws at most this many molecules: at the 1,000-2,000 molecules/s of a CPU that is
# about a day, and some 5-10 GB of CSV. A larger set is several runs with different seeds.
MAX_SAMPLES = 100_000_000
_MIN_BYTES_PER_ROW = 40  # a SMILES and its valid flag: no output format writes a molecule in less


def _check_sample_size(n: int, output: Path | None) -> None:
    """UsageError before any work when `n` is beyond `MAX_SAMPLES`, or when even the smallest rows would not
    fit in the free space where `output` goes."""
    import shutil

    if n > MAX_SAMPLES:
        raise UsageError(f"--n {n:,} is more than one run samples (at most {MAX_SAMPLES:,}: about a day on a CPU "
                         "and several GB of output); split it into runs with different --seed values")
    if output is None or n < 1:
        return
    folder = output.resolve().parent
    free = shutil.disk_usage(folder if folder.is_dir() else Path.cwd()).free
    if n * _MIN_BYTES_PER_ROW > free:
        raise UsageError(f"--n {n:,} molecules need at least {n * _MIN_BYTES_PER_ROW / 1e9:.1f} GB for {output}, "
                         f"but only {free / 1e9:.1f} GB are free there")


# ------------------------------------------------------------------ commands


def sample(
    n: int = typer.Option(100, "--n", "-n", help="Number of molecules."),
    model: str | None = MODEL,
    temperature: float | None = typer.Option(None, "--temperature", "-t", help="Softmax temperature in (0, 10] "
                                             "(default: the model's sampling setting, 1 for most models)."),
    top_p: float | None = typer.Option(None, "--top-p", help="Nucleus sampling: draw each token from the likeliest "
                                       "tokens holding this share of the probability, in (0, 1] (1: all tokens; "
                                       "default: the model's sampling setting)."),
    seed: int | None = SEED,
    method: str = typer.Option("multinomial", "--method", help="multinomial, greedy or beam."),
    beam_width: int = typer.Option(5, help="Beams per latent (method beam)."),
    prior: str | None = typer.Option(None, "--prior", help="density (the model's learned latent density; the "
                                     "default when it has one) or standard (N(0, I))."),
    output: Path | None = OUTPUT,
    unique_valid: bool = typer.Option(False, "--unique-valid", help="Keep drawing until N distinct valid molecules."),
    where: str | None = typer.Option(None, "--where", help="Keep only molecules meeting a property condition, e.g. "
                                     "'logp>=4,logp<=5,qed>=0.6' (RDKit-verified; >=, <=, = with +-TOLERANCE)."),
    max_decodes: int | None = typer.Option(None, "--max-decodes", min=1, help="With --where or --near: latents "
                                           "decoded at most (default 20 N + 1000) before giving up on the rest."),
    near: str | None = typer.Option(None, "--near", help="Analogs of this SMILES instead: molecules at least "
                                    "--similarity alike it (Morgan Tanimoto), meeting --where when given."),
    similarity: float = typer.Option(0.4, "--similarity", help="With --near: the Tanimoto floor, in [0, 1]."),
    chunk_size: int = typer.Option(10_000, "--chunk-size", min=1, help="With -o: molecules sampled and written at a "
                                   "time (memory follows the chunk, not N)."),
    grid: Path | None = GRID,
    batch_size: int | None = BATCH,
    property: list[str] = PROPS,
    device: str = DEVICE,
    precision: str = PRECISION,
    n_jobs: int = NJOBS,
) -> None:
    """Sample molecules from the prior (optionally under a property condition, --where, or near a molecule,
    --near)."""
    settings = dict(locals())  # the arguments as given, for the run record
    check_output(output, grid)
    _check_sample_size(n, output)
    vae = load_model(model, device, precision, n_jobs)
    args = dict(temperature=temperature, top_p=top_p, method=method, beam_width=beam_width, batch_size=batch_size,
                properties=properties_or_default(property), prior=prior, where=where, max_decodes=max_decodes)
    if near is not None:
        args.update(near=near, similarity=similarity)
    elif output is not None and grid is None and not unique_valid:
        _sample_stream(vae, output, n, chunk_size, seed, args, settings)
        return
    t0 = time.perf_counter()
    with reported_warnings():
        df = vae.sample(n, seed=seed, unique_valid=unique_valid, **args)
    seconds = time.perf_counter() - t0
    if near is not None and not len(df):
        raise DataError(f"no analog of {df.attrs['near']} at similarity >= {similarity:g}"
                        f"{' meeting ' + df.attrs['where'] if where else ''} in {df.attrs['n_drawn']} decodes: lower "
                        "--similarity, widen the condition or raise --max-decodes")
    if where is not None and not len(df):
        raise DataError(f"no molecule met {df.attrs['where']} in {df.attrs['n_drawn']} decodes: widen the "
                        "condition or raise --max-decodes")
    emit(df, output, f"{len(df)} molecules sampled ({method}, T={df.attrs['temperature']:g}, prior {df.attrs['prior']})", grid,
          "sample", settings, vae)
    label = " ".join(p for p in (f"near {near}" if near else "", df.attrs.get("where", "")) if p)
    hits = (f"; {label}: {df.attrs['hits']} hits in {df.attrs['n_drawn']} decodes ({df.attrs['hit_rate']:.1%})"
            if where is not None or near is not None else "")
    err_console().print(f"{summary_line(df, seconds, n)}; seed {df.attrs['seed']}{hits}")


def _sample_stream(vae: object, output: Path, n: int, chunk_size: int, seed: int | None, args: dict,
                   settings: dict) -> None:
    """`sample -o FILE`: chunks straight to the file (`molvae.generation.sample_stream.sample_to_file`)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from molvae.data.write import write_record
    from molvae.generation.sample_stream import sample_to_file

    with Progress(TextColumn("sampling"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err_console(), transient=True, disable=n <= chunk_size) as bar, reported_warnings():
        task = bar.add_task("sampling", total=n)
        summary = sample_to_file(vae, output, n, chunk_size, seed, lambda k: bar.advance(task, k), **args)
    if args["where"] is not None and not summary.rows:
        raise DataError(f"no molecule met {args['where']!r} in {summary.drawn} decodes: widen the condition or "
                        "raise --max-decodes")
    record = write_record(output, "molvae sample", settings, model_facts(vae), seed=summary.seed, rows=summary.rows,
                          rows_written=summary.rows_written, drawn=summary.drawn)
    err_console().print(f"wrote {summary.rows_written} rows to {output} (settings in {record.name})")
    hits = (f"; {args['where']}: {summary.rows} hits in {summary.drawn} decodes "
            f"({summary.rows / max(summary.drawn, 1):.1%})" if args["where"] is not None else "")
    err_console().print(f"{summary.line(n)}; seed {summary.seed}{hits}")


def encode(
    inputs: list[str] = typer.Argument(..., help="SMILES strings and/or CSV/SMI/SDF files."),
    model: str | None = MODEL,
    output: Path | None = typer.Option(None, "--output", "-o", help="Write latents to .npy (n, d) or .csv."),
    smiles_col: str | None = typer.Option(None, help="SMILES column of input files (default: detected)."),
    sample_z: bool = typer.Option(False, "--sample", help="Draw from the posterior instead of taking its mean."),
    seed: int | None = SEED,
    on_invalid: str = typer.Option("error", help="error (stop, naming the bad rows) or skip (leave them out)."),
    strict: bool = STRICT,
    device: str = DEVICE,
    precision: str = PRECISION,
) -> None:
    """Encode molecules to latent vectors (posterior means)."""
    import numpy as np
    import pandas as pd

    if output is not None and output.suffix.lower() not in (".npy", ".csv"):
        raise UsageError(f"encode writes .npy or .csv; got {output.name!r}")
    smiles = read_inputs(inputs, smiles_col)
    vae = load_model(model, device, precision, 1)
    t0 = time.perf_counter()
    with reported_warnings():
        z, rows = vae.encode(smiles, sample=sample_z, seed=seed, on_invalid=on_invalid, return_rows=True,
                             strict=strict)
    seconds = time.perf_counter() - t0
    kept = [smiles[i] for i in rows]
    if output is not None:
        from molvae.files import atomic_path

        with atomic_path(output) as tmp:
            if output.suffix.lower() == ".npy":
                with open(tmp, "wb") as fh:
                    np.save(fh, z, allow_pickle=False)
            else:
                frame = pd.DataFrame(z, columns=[f"z{i}" for i in range(z.shape[1])])
                frame.insert(0, "smiles", kept)
                frame.to_csv(tmp, index=False)
        err_console().print(f"wrote {len(z)} x {z.shape[1]} latents to {output}")
    else:
        show = pd.DataFrame({"row": rows, "smiles": kept, "|z|": np.linalg.norm(z, axis=1)})
        for j in range(min(4, z.shape[1])):
            show[f"z{j}"] = z[:, j]
        print_table(show, f"{len(z)} latent vectors of dimension {vae.latent_dim}")
    skipped = len(smiles) - len(rows)
    err_console().print(f"{count_phrase(len(z), 'molecule')} encoded" + (f", {skipped} skipped" if skipped else "")
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
    model: str | None = MODEL,
    method: str = METHOD_GREEDY,
    temperature: float = typer.Option(1.0, "--temperature", "-t"),
    seed: int | None = SEED,
    beam_width: int = typer.Option(5, help="Beams per latent (method beam)."),
    output: Path | None = OUTPUT,
    grid: Path | None = GRID,
    property: list[str] = PROPS,
    device: str = DEVICE,
    precision: str = PRECISION,
    n_jobs: int = NJOBS,
) -> None:
    """Decode latent vectors to molecules."""
    settings = dict(locals())  # the arguments as given, for the run record
    check_output(output, grid)
    z = _read_latents(latents)
    vae = load_model(model, device, precision, n_jobs)
    t0 = time.perf_counter()
    with reported_warnings():
        df = vae.decode_table(z, method=method, temperature=temperature, seed=seed, beam_width=beam_width,
                              properties=properties_or_default(property))
    seconds = time.perf_counter() - t0
    emit(df, output, f"{len(df)} molecules decoded ({method})", grid, "decode", settings, vae)
    err_console().print(summary_line(df, seconds))


def reconstruct(
    inputs: list[str] = typer.Argument(..., help="SMILES strings and/or CSV/SMI/SDF files."),
    model: str | None = MODEL,
    method: str = METHOD_GREEDY,
    output: Path | None = OUTPUT,
    smiles_col: str | None = typer.Option(None, help="SMILES column of input files (default: detected)."),
    on_invalid: str = typer.Option("error", help="error (stop, naming the bad rows) or skip (leave them out)."),
    strict: bool = STRICT,
    device: str = DEVICE,
    precision: str = PRECISION,
    n_jobs: int = NJOBS,
) -> None:
    """Encode molecules and decode them again; report exact (canonical) matches."""
    settings = dict(locals())  # the arguments as given, for the run record
    check_output(output)
    smiles = read_inputs(inputs, smiles_col)
    vae = load_model(model, device, precision, n_jobs)
    t0 = time.perf_counter()
    with reported_warnings():
        df = vae.reconstruct(smiles, method=method, on_invalid=on_invalid, seed=0, strict=strict)
    seconds = time.perf_counter() - t0
    emit(df, output, f"{len(df)} molecules reconstructed ({method})", None, "reconstruct", settings, vae)
    skipped = len(smiles) - len(df)
    exact = f"exact {df['exact'].mean():.1%}" if len(df) else "nothing encoded"
    err_console().print(f"{exact}; " + summary_line(df, seconds) + (f"; {count_phrase(skipped, 'input')} skipped" if skipped else ""))


def interpolate(
    a: str = typer.Argument(..., help="Start molecule (SMILES)."),
    b: str = typer.Argument(..., help="End molecule (SMILES)."),
    steps: int = typer.Option(8, "--steps", help="Points including both ends (>= 2)."),
    kind: str = typer.Option("linear", "--kind", help="linear or slerp."),
    model: str | None = MODEL,
    method: str = METHOD_GREEDY,
    output: Path | None = OUTPUT,
    grid: Path | None = GRID,
    property: list[str] = PROPS,
    device: str = DEVICE,
    precision: str = PRECISION,
) -> None:
    """Decode evenly spaced points between two molecules' latent vectors."""
    settings = dict(locals())  # the arguments as given, for the run record
    check_output(output, grid)
    vae = load_model(model, device, precision, 1)
    t0 = time.perf_counter()
    with reported_warnings():
        df = vae.interpolate(a, b, steps=steps, kind=kind, method=method, properties=properties_or_default(property), seed=0)
    seconds = time.perf_counter() - t0
    emit(df, output, f"{kind} interpolation in {steps} points", grid, "interpolate", settings, vae)
    err_console().print(summary_line(df, seconds))


def neighbors(
    smiles: str = typer.Argument(..., help="Query molecule (SMILES)."),
    n: int = typer.Option(10, "--n", "-n", help="Perturbed latents to decode."),
    radius: float = typer.Option(0.5, "--radius", "-r", help="Noise standard deviation per latent dimension."),
    seed: int | None = SEED,
    unique: bool = typer.Option(False, "--unique", help="Drop invalid rows, repeats and the query itself."),
    model: str | None = MODEL,
    method: str = METHOD_GREEDY,
    output: Path | None = OUTPUT,
    grid: Path | None = GRID,
    property: list[str] = PROPS,
    device: str = DEVICE,
    precision: str = PRECISION,
) -> None:
    """Decode random perturbations around a molecule; rank by Tanimoto similarity to it."""
    settings = dict(locals())  # the arguments as given, for the run record
    check_output(output, grid)
    vae = load_model(model, device, precision, 1)
    t0 = time.perf_counter()
    with reported_warnings():
        df = vae.neighbors(smiles, n=n, radius=radius, seed=seed, method=method, properties=properties_or_default(property),
                           unique=unique)
    seconds = time.perf_counter() - t0
    emit(df, output, f"neighbours of {smiles} (radius {radius:g})", grid, "neighbors", settings, vae)
    err_console().print(f"{summary_line(df, seconds, n)}; seed {df.attrs['seed']}")


def register(app: typer.Typer) -> None:
    """Add the generation commands to the `molvae` app."""
    for fn in (sample, encode, decode, reconstruct, interpolate, neighbors):
        app.command(fn.__name__)(fn)
