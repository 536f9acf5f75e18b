"""`molvae optimize`: latent-space optimization from the command line.

`register(app)` adds the command. It parses arguments into the objects `molvae.optimize` takes (the
`Objective`s, `Constraints`, the start molecules), calls it, and prints a table of the best molecule per
start (or writes every row to `-o FILE` with its run record), then a summary of the budget spent and of
what the constraints rejected. Every argument the library takes is checked there, once; this module checks
only what is its own (which of --property / --objective, the --plot file). The shared options and the
table and file helpers are those of `molvae.cli.common`.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from molvae.cli.common import (DEVICE, MODEL, NJOBS, OUTPUT, PRECISION, check_output, err_console, load_model,
                               print_table, read_inputs, reported_warnings, write_result)
from molvae.errors import UsageError

if TYPE_CHECKING:  # the library (RDKit, torch) is imported when the command runs, not when the CLI starts
    from molvae.optimization.objectives import Objective

__all__ = ["register", "optimize_command"]

# The options of this command alone (the shared ones come from cli/common).
PROPERTY = typer.Option(None, "--property", "-p", help="Property to optimize (case-insensitive): one the model's "
                        "head predicts (logp, qed, sa, your columns) or plogp.")
MINIMIZE = typer.Option(False, "--minimize", help="Minimize --property instead of maximizing it.")
TARGET = typer.Option(None, "--target", help="Aim --property at this value.")
OBJECTIVE = typer.Option(None, "--objective", help="Several objectives: 'qed:max:1.0,sa:min:0.5' "
                         "(name:max|min|target=V:weight).")
START = typer.Option(None, "--start", help="Start molecule: a SMILES or a CSV/SMI/SDF file (default: prior samples).")
SIMILARITY = typer.Option(None, "--similarity", help="Tanimoto floor in [0, 1] to the start molecule (needs --start).")
METHOD = typer.Option("gradient", "--method", help="gradient, random or bo.")
N_STARTS = typer.Option(None, "--n-starts", help="Prior starts, or trajectories per --start molecule (default: 64 "
                        "prior starts; 20 per molecule for gradient, 1 for random and bo).")
STEPS = typer.Option(None, "--steps", help="Steps per trajectory (default 100 from prior starts, 10 gradient / 19 "
                     "random and bo from molecules).")
LR = typer.Option(None, "--lr", help="Gradient step length in posterior standard deviations (default 0.5 prior "
                  "starts, 0.2 molecules).")
DECODE_EVERY = typer.Option(None, "--decode-every", help="Decode and rescore every k steps.")
BUDGET = typer.Option(None, "--budget", help="At most this many decoded molecules per start (default: 20 per start "
                      "molecule).")
SEED = typer.Option(0, "--seed")
DENSITY_WEIGHT = typer.Option(None, "--density-weight", help="Weight of the learned latent log-density (gradient; "
                              "default 0).")
TRUST_RADIUS = typer.Option(None, "--trust-radius", help="Stay within this many posterior standard deviations of "
                            "the start.")
NOISE = typer.Option(None, "--noise", help="Langevin noise per gradient step, in posterior standard deviations "
                     "(default 0).")
SPREAD = typer.Option(None, "--spread", help="Copies of a start molecule begin this many posterior standard "
                      "deviations around its mean.")
TEMPERATURE = typer.Option(None, "--temperature", help="0 decodes greedily; above 0 samples tokens at that "
                           "temperature (default 0.5 gradient from molecules, else 0).")
CANDIDATES = typer.Option(None, "--candidates", help="Copies searched per start molecule, of which --n-starts are "
                          "decoded: those nearest --target-nll (default 200).")
REFINE_STEPS = typer.Option(None, "--refine-steps", help="Steps that first move each start's latent to where the "
                            "decoder reproduces the start (default 100).")
TARGET_NLL = typer.Option(None, "--target-nll", help="Decode the copies whose likelihood of the start molecule is "
                          "nearest this many nats (default 2).")
HEADS = typer.Option(None, "--heads", help="Directory of a head ensemble (heads.safetensors) whose disagreement "
                     "the gradient search avoids.")
UNCERTAINTY_WEIGHT = typer.Option(None, "--uncertainty-weight", help="Penalty on the std of the predicted score "
                                  "across --heads (default 0).")
MAX_SA = typer.Option(None, "--max-sa", help="Reject molecules with SA score above this.")
FILTERS = typer.Option(False, "--filters/--no-filters", help="Reject molecules failing the MOSES filters or "
                       "matching a PAINS alert.")
MIN_HEAVY = typer.Option(None, "--min-heavy-atoms")
MAX_HEAVY = typer.Option(None, "--max-heavy-atoms")
MAX_RING = typer.Option(None, "--max-ring-size")
TOP_K = typer.Option(1, "--top-k", help="Molecules reported per start.")
PLOT = typer.Option(None, "--plot", help="Draw predicted vs RDKit score per step to this PNG.")


def optimize_command(
    property: str | None = PROPERTY, minimize: bool = MINIMIZE, target: float | None = TARGET,
    objective: str | None = OBJECTIVE, model: str | None = MODEL, start: str | None = START,
    similarity: float | None = SIMILARITY, method: str = METHOD, n_starts: int | None = N_STARTS,
    steps: int | None = STEPS, lr: float | None = LR, decode_every: int | None = DECODE_EVERY,
    budget: int | None = BUDGET, seed: int = SEED, density_weight: float | None = DENSITY_WEIGHT,
    trust_radius: float | None = TRUST_RADIUS, noise: float | None = NOISE, spread: float | None = SPREAD,
    temperature: float | None = TEMPERATURE, candidates: int | None = CANDIDATES,
    refine_steps: int | None = REFINE_STEPS, target_nll: float | None = TARGET_NLL, heads: Path | None = HEADS,
    uncertainty_weight: float | None = UNCERTAINTY_WEIGHT, max_sa: float | None = MAX_SA, filters: bool = FILTERS,
    min_heavy_atoms: int | None = MIN_HEAVY, max_heavy_atoms: int | None = MAX_HEAVY,
    max_ring_size: int | None = MAX_RING, top_k: int = TOP_K, output: Path | None = OUTPUT,
    plot: Path | None = PLOT, device: str = DEVICE, precision: str = PRECISION, n_jobs: int = NJOBS,
) -> None:
    """Search the latent space for molecules that improve a property (RDKit-rescored)."""
    settings = dict(locals())  # the arguments as given, for the run record
    from molvae.optimization.run import Constraints, optimize

    objectives = _objectives(property, objective, minimize, target)
    check_output(output, plot, "--plot")
    constraints = Constraints(filters=filters, pains=filters, min_heavy_atoms=min_heavy_atoms,
                              max_heavy_atoms=max_heavy_atoms, max_ring_size=max_ring_size, max_sa=max_sa)
    starts = read_inputs([start]) if start is not None else None
    vae = load_model(model, device, precision, n_jobs)
    t0 = time.perf_counter()
    with reported_warnings():
        df = optimize(vae, objectives, n_starts=n_starts, steps=steps, lr=lr, method=method, start=starts,
                      similarity=similarity, constraints=constraints, density_weight=density_weight,
                      trust_radius=trust_radius, decode_every=decode_every, budget=budget, seed=seed, top_k=top_k,
                      n_jobs=n_jobs, noise=noise, spread=spread, temperature=temperature, heads=heads,
                      uncertainty_weight=uncertainty_weight, candidates=candidates, refine_steps=refine_steps,
                      target_nll=target_nll)
    seconds = time.perf_counter() - t0
    if output is not None:
        write_result(df, output, "optimize", settings, vae, seconds=round(seconds, 2))
    elif len(df):
        print_table(_best_per_start(df, objectives), f"best molecule per start ({method})", fold=("start", "best"))
    if plot is not None:
        from molvae.plotting.trajectories import plot_trajectories

        plot_trajectories(df, plot)
        err_console().print(f"trajectories drawn to {plot}")
    _summary(df, seconds, written=output is not None)


def _objectives(prop: str | None, objective: str | None, minimize: bool,
                target: float | None) -> tuple[Objective, ...]:
    """The `Objective`s of --property (with --minimize or --target) or of an --objective specification."""
    from molvae.optimization.objectives import Objective, parse_objectives

    if prop and objective:
        raise UsageError("give either --property or --objective, not both")
    if objective:
        if minimize or target is not None:
            raise UsageError("--minimize and --target go with --property; in --objective write "
                             "'name:min' or 'name:target=V'")
        return parse_objectives(objective)
    if not prop:
        raise UsageError("nothing to optimize: give --property NAME (e.g. --property logP) or "
                         "--objective 'qed:max:1.0,sa:min:0.5'")
    if minimize and target is not None:
        raise UsageError("--minimize and --target exclude each other")
    if target is not None:
        return (Objective(prop, "target", target=target),)
    return (Objective(prop, "min" if minimize else "max"),)


def _best_per_start(df: Any, objectives: tuple[Objective, ...]) -> Any:
    """The terminal table: each start's best molecule, most improved first, with the objective values before,
    after (RDKit) and as predicted, the score when there are several objectives, similarity and step."""
    import pandas as pd

    show = df[df["rank"] == 1].sort_values("improvement", ascending=False, na_position="last", kind="stable")
    names = [c[:-len("_after")] for c in df.columns if c.endswith("_after")]
    table = pd.DataFrame({"start": show["start"].astype(str), "best": show["smiles"].astype(str)})
    for n in names:
        table[f"{n} before"], table[f"{n} after"], table[f"{n} pred."] = (
            show[f"{n}_before"], show[f"{n}_after"], show[f"{n}_pred"])
    if len(objectives) > 1:
        table["score before"], table["score after"] = show["score_before"], show["score"]
    table["similarity"], table["step"] = show["similarity"], show["step"].astype(int)
    return table.reset_index(drop=True)


def _summary(df: Any, seconds: float, written: bool) -> None:
    """The budget spent, what the constraints rejected, and whether any start improved (stderr)."""
    att = df.attrs
    rejected = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in att["rejected"].items() if v)
    err_console().print(f"{att['method']}: {att['n_decoded']} molecules decoded (budget {att['budget_per_start']} "
                        f"per start, {att['budget']} in all), {att['n_valid']} valid, {att['n_ok']} passed the "
                        "constraints" + (f"; not reported: {rejected}" if rejected else "")
                        + f"; results scored by {att['scored_by']}; {seconds:.1f} s")
    st = att["run"].starts
    n_improved = int(st["improved"].sum())
    if not len(df):
        err_console().print("[yellow]no improvement found:[/] no decoded molecule was valid, different from its "
                            "start and within the constraints. Try more --steps or --n-starts, a lower --similarity, "
                            "or another --method.")
    elif n_improved == 0:
        err_console().print(f"[yellow]no improvement found:[/] none of the {len(st)} starts led to a valid molecule "
                            "scoring better than the start; the best found are "
                            + ("written anyway." if written else "shown anyway."))
    else:
        err_console().print(f"improved {n_improved} of {len(st)} starts")


def register(app: typer.Typer) -> None:
    """Add `optimize` to the `molvae` app."""
    app.command("optimize")(optimize_command)
