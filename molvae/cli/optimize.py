"""`molvae optimize`: latent-space optimization from the command line.

`register(app)` adds the command. It parses arguments, calls `molvae.optimization.run.optimize`
and prints a table of the best molecule per start (or writes every row to `-o FILE`),
then a summary of the budget spent and of what the constraints rejected.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from molvae.cli.common import err_console, out_console
from molvae.errors import UsageError

__all__ = ["register", "optimize_command"]

_SHOW = 20


def _objective(prop: str | None, objective: str | None, minimize: bool, target: float | None) -> str:
    if prop and objective:
        raise UsageError("give either --property or --objective, not both")
    if objective:
        if minimize or target is not None:
            raise UsageError("--minimize and --target go with --property; in --objective write "
                             "'name:min' or 'name:target=V'")
        return objective
    if not prop:
        raise UsageError("nothing to optimize: give --property NAME (e.g. --property logP) or "
                         "--objective 'qed:max:1.0,sa:min:0.5'")
    if minimize and target is not None:
        raise UsageError("--minimize and --target exclude each other")
    if target is not None:
        if not math.isfinite(target):
            raise UsageError(f"--target must be a finite number, got {target}")
        return f"{prop}:target={target!r}"
    return f"{prop}:{'min' if minimize else 'max'}"


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) >= 100 else f"{v:.{digits}f}".rstrip("0").rstrip(".") or "0"
    return str(v)


def _table(df: Any, names: list[str], multi: bool) -> Table:
    table = Table(title_justify="left")
    table.add_column("start", overflow="fold")
    table.add_column("best", overflow="fold")
    for n in names:
        table.add_column(f"{n} before", justify="right")
        table.add_column(f"{n} after", justify="right")
        table.add_column(f"{n} pred.", justify="right")
    if multi:
        table.add_column("score before", justify="right")
        table.add_column("score after", justify="right")
    table.add_column("similarity", justify="right")
    table.add_column("step", justify="right")
    for _, r in df.head(_SHOW).iterrows():
        cells = [str(r["start"]), str(r["smiles"])]
        for n in names:
            cells += [_fmt(r[f"{n}_before"]), _fmt(r[f"{n}_after"]), _fmt(r[f"{n}_pred"])]
        if multi:
            cells += [_fmt(r["score_before"]), _fmt(r["score"])]
        cells += [_fmt(r["similarity"], 2), str(int(r["step"]))]
        table.add_row(*cells)
    return table


def optimize_command(
    property: str | None = typer.Option(None, "--property", "-p", help="Property to optimize (case-insensitive): "
                                           "one the model's head predicts (logp, qed, sa, your columns) or plogp."),
    minimize: bool = typer.Option(False, "--minimize", help="Minimize --property instead of maximizing it."),
    target: float | None = typer.Option(None, "--target", help="Aim --property at this value."),
    objective: str | None = typer.Option(None, "--objective", help="Several objectives: "
                                            "'qed:max:1.0,sa:min:0.5' (name:max|min|target=V:weight)."),
    model: str | None = typer.Option(None, "--model", "-m", help="Shipped model name or checkpoint directory."),
    start: str | None = typer.Option(None, "--start", help="Start molecule: a SMILES or a CSV/SMI/SDF file "
                                        "(default: prior samples)."),
    similarity: float | None = typer.Option(None, "--similarity", help="Tanimoto floor in [0, 1] to the start "
                                               "molecule (needs --start)."),
    method: str = typer.Option("gradient", "--method", help="gradient, random or bo."),
    n_starts: int | None = typer.Option(None, "--n-starts", help="Prior starts, or trajectories per --start "
                                           "molecule (default: 64 prior starts; 20 per molecule for gradient, "
                                           "1 for random and bo)."),
    steps: int | None = typer.Option(None, "--steps", help="Steps per trajectory (default 100 from prior starts, "
                                        "10 gradient / 19 random and bo from molecules)."),
    lr: float | None = typer.Option(None, "--lr", help="Gradient step length in posterior standard deviations "
                                       "(default 0.5 prior starts, 0.2 molecules)."),
    decode_every: int | None = typer.Option(None, "--decode-every", help="Decode and rescore every k steps."),
    budget: int | None = typer.Option(None, "--budget", help="At most this many decoded molecules per start "
                                         "(default: 20 per start molecule)."),
    seed: int = typer.Option(0, "--seed"),
    density_weight: float | None = typer.Option(None, "--density-weight", help="Weight of the learned latent "
                                                   "log-density (gradient; default 0)."),
    trust_radius: float | None = typer.Option(None, "--trust-radius", help="Stay within this many posterior "
                                                 "standard deviations of the start."),
    noise: float | None = typer.Option(None, "--noise", help="Langevin noise per gradient step, in posterior "
                                          "standard deviations (default 0)."),
    spread: float | None = typer.Option(None, "--spread", help="Copies of a start molecule begin this many "
                                           "posterior standard deviations around its mean."),
    temperature: float | None = typer.Option(None, "--temperature", help="0 decodes greedily; above 0 samples "
                                                "tokens (default 0.5 gradient from molecules, else 0)."),
    candidates: int | None = typer.Option(None, "--candidates", help="Copies searched per start molecule, of which "
                                          "--n-starts are decoded: those nearest --target-nll (default 200)."),
    refine_steps: int | None = typer.Option(None, "--refine-steps", help="Steps that first move each start's latent "
                                            "to where the decoder reproduces the start (default 100)."),
    target_nll: float | None = typer.Option(None, "--target-nll", help="Decode the copies whose likelihood of the "
                                            "start molecule is nearest this many nats (default 2)."),
    heads: Path | None = typer.Option(None, "--heads", help="Directory of a head ensemble (heads.safetensors) "
                                         "whose disagreement the gradient search avoids."),
    uncertainty_weight: float | None = typer.Option(None, "--uncertainty-weight", help="Penalty on the std of "
                                                       "the predicted score across --heads (default 0)."),
    max_sa: float | None = typer.Option(None, "--max-sa", help="Reject molecules with SA score above this."),
    filters: bool = typer.Option(False, "--filters/--no-filters", help="Reject molecules failing the MOSES "
                                 "filters or matching a PAINS alert."),
    min_heavy_atoms: int | None = typer.Option(None, "--min-heavy-atoms"),
    max_heavy_atoms: int | None = typer.Option(None, "--max-heavy-atoms"),
    max_ring_size: int | None = typer.Option(None, "--max-ring-size"),
    top_k: int = typer.Option(1, "--top-k", help="Molecules reported per start."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write all rows (.csv, .smi, .sdf, .parquet)."),
    plot: Path | None = typer.Option(None, "--plot", help="Draw predicted vs RDKit score per step to this PNG."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    n_jobs: int = typer.Option(1, "--n-jobs", "-j", help="Processes for RDKit rescoring."),
) -> None:
    """Search the latent space for molecules that improve a property (RDKit-rescored)."""
    settings = dict(locals())  # the arguments as given, for the run record
    from molvae.cli.common import model_facts
    from molvae.data.write import output_format, write_molecules, write_record
    from molvae.optimization.objectives import Constraints, parse_objectives

    spec = _objective(property, objective, minimize, target)
    objectives = parse_objectives(spec)
    if similarity is not None and not (0.0 <= similarity <= 1.0):
        raise UsageError(f"--similarity must be in [0, 1], got {similarity}")
    if output is not None:
        output_format(output)
    if plot is not None and plot.suffix.lower() != ".png":
        raise UsageError(f"--plot writes a PNG image; got {plot.name!r}")
    constraints = Constraints(filters=filters, pains=filters, min_heavy_atoms=min_heavy_atoms,
                              max_heavy_atoms=max_heavy_atoms, max_ring_size=max_ring_size, max_sa=max_sa)
    starts = None
    if start is not None:
        from molvae.cli.common import read_inputs

        starts = read_inputs([start])
    from molvae.generation.api import load
    from molvae.optimization.run import optimize

    vae = load(model, device=device)
    t0 = time.perf_counter()
    df = optimize(vae, objectives, n_starts=n_starts, steps=steps, lr=lr, method=method, start=starts,
                  similarity=similarity, constraints=constraints, density_weight=density_weight,
                  trust_radius=trust_radius, decode_every=decode_every, budget=budget, seed=seed, top_k=top_k,
                  n_jobs=n_jobs, noise=noise, spread=spread, temperature=temperature, heads=heads,
                  uncertainty_weight=uncertainty_weight, candidates=candidates, refine_steps=refine_steps,
                  target_nll=target_nll)
    seconds = time.perf_counter() - t0
    names = [c[:-len("_after")] for c in df.columns if c.endswith("_after")] or \
        [o.name.lower() for o in objectives]
    att = df.attrs
    if output is not None:
        written = write_molecules(df, output)
        record = write_record(output, "molvae optimize", settings, model_facts(vae), seed=seed, rows=len(df),
                              rows_written=written, seconds=round(seconds, 2))
        err_console().print(f"wrote {written} rows to {output} (settings in {record.name})")
    elif len(df):
        show = df[df["rank"] == 1].sort_values("improvement", ascending=False, na_position="last", kind="stable")
        out_console().print(_table(show, names, len(objectives) > 1))
        if len(show) > _SHOW:
            out_console().print(f"... {len(show) - _SHOW} more starts; use -o FILE to save every row")
    if plot is not None:
        from molvae.plotting.trajectories import plot_trajectories

        plot_trajectories(df, plot)
        err_console().print(f"trajectories drawn to {plot}")
    rejected = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in att["rejected"].items() if v)
    err_console().print(f"{method}: {att['n_decoded']} molecules decoded (budget {att['budget_per_start']} per start, "
                        f"{att['budget']} in all), {att['n_valid']} valid, "
                 f"{att['n_ok']} passed the constraints" + (f"; not reported: {rejected}" if rejected else "")
                 + f"; results scored by {att['scored_by']}; {seconds:.1f} s")
    st = att["run"].starts
    n_improved = int(st["improved"].sum())
    if not len(df):
        err_console().print("[yellow]no improvement found:[/] no decoded molecule was valid, different from its start and "
                     "within the constraints. Try more --steps or --n-starts, a lower --similarity, or another --method.")
    elif n_improved == 0:
        err_console().print(f"[yellow]no improvement found:[/] none of the {len(st)} starts led to a valid molecule scoring "
                     "better than the start; the best found are " + ("written anyway." if output is not None
                                                                 else "shown anyway."))
    else:
        err_console().print(f"improved {n_improved} of {len(st)} starts")


def register(app: typer.Typer) -> None:
    """Add `optimize` to the `molvae` app."""
    app.command("optimize")(optimize_command)
