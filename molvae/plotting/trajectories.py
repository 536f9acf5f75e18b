"""Trajectory plot of a latent-optimization run: the head's predicted score against the
RDKit score of the decoded molecules, per decode step (matplotlib, no display needed)."""
from __future__ import annotations

import os
from typing import Any

import pandas as pd

from molvae.errors import UsageError

__all__ = ["plot_trajectories", "trajectory_summary"]


def _trajectories(result: pd.DataFrame) -> pd.DataFrame:
    """The trajectories table of an `optimize` result (or that table itself)."""
    run = result.attrs.get("run")
    traj = result if "traj" in result else getattr(run, "trajectories", None)
    if traj is None or not {"traj", "step", "score", "score_pred"} <= set(traj.columns):
        raise UsageError("plot_trajectories needs the DataFrame returned by molvae.optimization.run "
                         "(or its attrs['run'].trajectories)")
    return traj


def trajectory_summary(result: pd.DataFrame) -> pd.DataFrame:
    """Per decode step: mean predicted score, mean RDKit score (molecules that pass the
    constraints), best RDKit score found so far, and the fraction passing the constraints."""
    traj = _trajectories(result)
    ok = traj["ok"].astype(bool) if "ok" in traj else traj["score"].notna()
    rd = traj["score"].where(ok)
    g = pd.DataFrame({"step": traj["step"], "pred": traj["score_pred"], "rdkit": rd, "ok": ok}).groupby("step")
    out = pd.DataFrame({"predicted": g["pred"].mean(), "rdkit": g["rdkit"].mean(), "best_rdkit": g["rdkit"].max(),
                        "ok_fraction": g["ok"].mean()})
    out["best_rdkit"] = out["best_rdkit"].cummax()
    return out.reset_index()


def plot_trajectories(result: pd.DataFrame, path: str | os.PathLike[str] | None = None, max_lines: int = 12,
                      title: str | None = None) -> Any:
    """Draw predicted vs RDKit score per step: thin lines for up to `max_lines` trajectories
    (dashed: predicted at z; solid: RDKit score of the molecule decoded from z), thick lines
    for the means and the best RDKit score so far. Scores are in objective units (see
    `molvae.optimization.objectives`). Writes a PNG when `path` is given; returns the Figure."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    traj = _trajectories(result)
    if path is not None and os.fspath(path).lower().rsplit(".", 1)[-1] != "png":
        raise UsageError(f"the trajectory plot is written as PNG; got {os.fspath(path)!r}")
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    ids = pd.unique(traj["traj"])[:max_lines]
    ok = traj["ok"].astype(bool) if "ok" in traj else traj["score"].notna()
    for k, t in enumerate(ids):
        part = traj[traj["traj"] == t].sort_values("step")
        color = f"C{k % 10}"
        ax.plot(part["step"], part["score_pred"], ls="--", lw=0.8, color=color, alpha=0.5)
        ax.plot(part["step"], part["score"].where(ok[part.index]), ls="-", lw=0.8, color=color, alpha=0.5,
                marker=".", ms=3)
    summary = trajectory_summary(traj)
    if summary["predicted"].notna().any():
        ax.plot(summary["step"], summary["predicted"], color="black", ls="--", lw=2, label="predicted (mean)")
    ax.plot(summary["step"], summary["rdkit"], color="black", lw=2, label="RDKit (mean)")
    ax.plot(summary["step"], summary["best_rdkit"], color="crimson", lw=2, label="RDKit (best so far)")
    ax.set_xlabel("step")
    ax.set_ylabel("objective score")
    method = result.attrs.get("method", "")
    objectives = ", ".join(result.attrs.get("objectives", []))
    ax.set_title(title or f"{method}: {objectives}".strip(": "), fontsize=10)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
        plt.close(fig)
    return fig
