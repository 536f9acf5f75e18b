"""How many more epochs (and CPU-hours) the default model needs to reach the FCD goal, from its learning curve
(issue 15; docs/training.md, "How far the goal is").

Each `--point LABEL:EPOCHS:EVAL_JSON[,EVAL_JSON...]` is one checkpoint's `molvae evaluate --json` output(s)
(the short protocol of scripts/evaluate_midrun.sh: 10,000 samples, full MOSES test; every seed in the files
is averaged, with the spread across seeds) and the epochs of full MOSES it had seen. FCD of a finite sample has a floor: the FCD of the training set itself against the test set at the same
sample size (computed here once, `--floor-n` random MOSES training molecules, seed 0, cached in `--json`).
The excess FCD over that floor is fitted as a power law of epochs, log(FCD - floor) = a + b log(epochs),
through the points of `--fit` (default: all), and solved for the goal's excess: the goal is FCD/Test .099 on
the 30,000-sample protocol, whose own floor is .048 (the train set at 30,000 samples), so the goal's excess is
.051 at any sample size to first order (the sample-size bias of FCD is additive and nearly the same for
model and data). Epochs convert to hours at `--hours-per-epoch` (measured: molvae.bench.train_speed, or the
run's log).

    python -m molvae.bench.learning_curve --point shipped:2:runs/eval_midrun/shipped/eval.json \
        --point step1696:2.553:runs/eval_midrun/step_1696/eval.json --hours-per-epoch 2.5 [--json curve.json]

Prints a table (points, fitted values) and the extrapolation; writes it all to --json. An extrapolation from
three or four points of one run is a rough estimate, and it says nothing about novelty or validity.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

GOAL_FCD = 0.099          # MOSES VAE, FCD/Test at 30,000 samples
GOAL_FLOOR = 0.048        # the MOSES train set itself at 30,000 samples (docs/benchmarks.md)


def parse_point(text: str) -> tuple[str, float, list[Path]]:
    """'LABEL:EPOCHS:PATH[,PATH...]' -> (label, epochs, paths). Raises ValueError naming the problem."""
    parts = text.split(":", 2)
    if len(parts) != 3:
        raise ValueError(f"--point takes LABEL:EPOCHS:EVAL_JSON[,EVAL_JSON...], got {text!r}")
    label, epochs, paths = parts
    value = float(epochs)
    if not value > 0:
        raise ValueError(f"--point {label}: epochs must be > 0, got {epochs}")
    return label, value, [Path(p) for p in paths.split(",") if p]


def read_eval(paths: Sequence[Path]) -> dict[str, float]:
    """FCD/Test, Valid and Novelty (mean over every seed of `molvae evaluate --json` files, and the std of
    FCD across them), the sample size and exact reconstruction (the first file that has it)."""
    samples, recon = [], math.nan
    for path in paths:
        model = next(iter(json.loads(path.read_text(encoding="utf-8")).values()))
        samples += model["samples"]
        if math.isnan(recon):
            recon = float(model.get("reconstruction", {}).get("recon_acc", math.nan))
    sizes = {int(s["n_input"]) for s in samples}
    if len(sizes) != 1:
        raise ValueError(f"{', '.join(map(str, paths))}: samples of different sizes {sorted(sizes)}")
    fcd = np.array([float(s["FCD/Test"]) for s in samples])
    return {"FCD/Test": float(fcd.mean()), "FCD_std": float(fcd.std(ddof=1)) if len(fcd) > 1 else math.nan,
            "seeds": len(samples), "Valid": float(np.mean([float(s["Valid"]) for s in samples])),
            "Novelty": float(np.mean([float(s.get("Novelty", math.nan)) for s in samples])),
            "n_samples": sizes.pop(), "recon": recon}


def fit_power_law(epochs: Sequence[float], excess: Sequence[float]) -> tuple[float, float]:
    """(a, b) of the least-squares line log(excess) = a + b log(epochs); needs two points or more."""
    x, y = np.log(np.asarray(epochs, float)), np.log(np.asarray(excess, float))
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def epochs_to_reach(a: float, b: float, excess_goal: float) -> float:
    """Epochs at which the fitted excess falls to `excess_goal` (inf when the curve does not fall)."""
    if b >= 0:
        return math.inf
    return math.exp((math.log(excess_goal) - a) / b)


def train_floor(n: int) -> float:
    """FCD/Test of `n` random MOSES training molecules (seed 0) against the MOSES test set."""
    import pandas as pd

    import molvae
    from molvae.data.datasets import dataset_path

    train = pd.read_csv(dataset_path("moses", "train"), usecols=["SMILES"])["SMILES"]
    smiles = train.sample(n, random_state=0).tolist()
    return float(molvae.evaluate(smiles, reference="moses", train=None, n_jobs=1, kl_score=False)["FCD/Test"])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Fit and extrapolate as the command line `argv` says; print the table, write --json; returns the result."""
    ap = argparse.ArgumentParser(prog="python -m molvae.bench.learning_curve", description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--point", action="append", required=True, help="LABEL:EPOCHS:EVAL_JSON (repeat)")
    ap.add_argument("--fit", default=None, help="comma-separated labels fitted (default: every point)")
    ap.add_argument("--hours-per-epoch", type=float, required=True, help="training hours per epoch of full MOSES")
    ap.add_argument("--floor-n", type=int, default=10_000, help="training molecules of the FCD floor")
    ap.add_argument("--json", default="runs/learning_curve.json")
    args = ap.parse_args(argv)
    try:
        points = [parse_point(p) for p in args.point]
    except ValueError as exc:
        ap.error(str(exc))
    missing = [str(p) for _, _, paths in points for p in paths if not p.is_file()]
    if missing:
        ap.error(f"no such evaluation file: {', '.join(missing)}")
    fit_labels = args.fit.split(",") if args.fit else [label for label, _, _ in points]
    if unknown := sorted(set(fit_labels) - {label for label, _, _ in points}):
        ap.error(f"--fit names no --point: {', '.join(unknown)}")
    if len(fit_labels) < 2:
        ap.error("--fit needs two points or more")
    if not args.hours_per_epoch > 0 or args.floor_n < 2:
        ap.error("--hours-per-epoch must be > 0 and --floor-n >= 2")

    out_path = Path(args.json)
    cached: dict[str, Any] = json.loads(out_path.read_text()) if out_path.is_file() else {}
    floor = cached.get("floor") if cached.get("floor_n") == args.floor_n else None
    if floor is None:
        floor = train_floor(args.floor_n)
    try:
        rows = [{"label": label, "epochs": epochs, **read_eval(paths), "eval": [str(p) for p in paths]}
                for label, epochs, paths in points]
    except ValueError as exc:
        ap.error(str(exc))
    sizes = {r["n_samples"] for r in rows}
    if sizes != {args.floor_n}:
        ap.error(f"the points have {sorted(sizes)} samples and the floor {args.floor_n}: use the same size")
    fitted = [r for r in rows if r["label"] in fit_labels]
    if any(r["FCD/Test"] <= floor for r in fitted):
        ap.error(f"a fitted point is at or below the floor ({floor:.3f}); nothing to extrapolate")
    a, b = fit_power_law([r["epochs"] for r in fitted], [r["FCD/Test"] - floor for r in fitted])
    goal_excess = GOAL_FCD - GOAL_FLOOR
    need = epochs_to_reach(a, b, goal_excess)
    last = max(r["epochs"] for r in rows)
    result = {"floor": floor, "floor_n": args.floor_n, "fit": {"a": a, "b": b, "labels": fit_labels},
              "goal_fcd_30k": GOAL_FCD, "goal_excess": goal_excess, "goal_fcd_this_protocol": floor + goal_excess,
              "epochs_needed": need, "more_epochs": need - last, "hours_per_epoch": args.hours_per_epoch,
              "more_hours": (need - last) * args.hours_per_epoch, "points": rows}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1, default=float) + "\n", encoding="utf-8")

    print("| checkpoint | epochs | seeds | FCD/Test | fitted | Valid | Novelty | reconstruction |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        fit_value = floor + math.exp(a + b * math.log(r["epochs"]))
        spread = "" if math.isnan(r["FCD_std"]) else f" +- {r['FCD_std']:.3f}"
        print(f"| {r['label']} | {r['epochs']:.2f} | {r['seeds']} | {r['FCD/Test']:.3f}{spread} | {fit_value:.3f} | "
              f"{r['Valid']:.3f} | {r['Novelty']:.3f} | {r['recon']:.3f} |")
    print(f"floor (train set itself, {args.floor_n:,} molecules): {floor:.3f}; goal on this protocol: "
          f"{floor + goal_excess:.3f} (excess {goal_excess:.3f}); fit: excess = {math.exp(a):.3f} x epochs^{b:.2f}")
    if math.isinf(need):
        print("the fitted curve does not fall: no extrapolation")
    elif need > 100 * last:
        print(f"the fitted curve is nearly flat (exponent {b:.2f}): at this rate the goal is out of reach "
              f"({need:,.0f} epochs); the run has stopped approaching it")
    else:
        print(f"goal reached at about {need:.1f} epochs: {need - last:.1f} more than the last point, about "
              f"{(need - last) * args.hours_per_epoch:.0f} hours at {args.hours_per_epoch:g} h per epoch")
    print(f"wrote {out_path}")
    return result


if __name__ == "__main__":
    main()
