"""Matplotlib charts readable without a notebook: training curves (history.csv), latent maps
(PCA of posterior means coloured by a property) and property distributions of generated
molecules against a reference set.

Every function returns the matplotlib Figure and, given `path`, writes it (PNG or SVG, by
extension) atomically. Molecule pictures (grids) are in `molvae.plotting.molecules`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from molvae.errors import DataError, UsageError

if TYPE_CHECKING:
    from molvae.generation.api import MolVAE

__all__ = ["plot_history", "plot_latent", "plot_properties", "latent_map", "IMAGE_FORMATS"]

IMAGE_FORMATS = ("png", "svg")
_LABELS = {"logp": "logP (Crippen)", "qed": "QED", "sa": "SA score", "mw": "mol. weight (Da)",
           "plogp": "penalized logP", "tpsa": "TPSA (Å²)"}


def _pyplot(path: str | os.PathLike[str] | None) -> Any:
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)  # scripts and the CLI have no display
    import matplotlib.pyplot as plt

    return plt


def _check_path(path: str | os.PathLike[str] | None) -> str | None:
    if path is None:
        return None
    fmt = os.fspath(path).lower().rsplit(".", 1)[-1]
    if fmt not in IMAGE_FORMATS:
        raise UsageError(f"images are written as {' or '.join(IMAGE_FORMATS)}; got {os.fspath(path)!r}")
    return fmt


def _save(fig: Any, path: str | os.PathLike[str] | None, fmt: str | None) -> None:
    if path is None:
        return
    from molvae.files import atomic_path

    plt = _pyplot(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- training curves

_HISTORY_PANELS = (
    ("loss (nats/molecule)", ("train_loss", "val_loss")),
    ("reconstruction and KL (nats/molecule)", ("train_recon", "val_recon", "train_kl", "val_kl")),
    ("accuracy", ("train_token_acc", "val_token_acc", "val_recon_acc")),
    ("property head MAE (property units)", None),  # every val_mae_* column
    ("KL weight and learning rate", ("beta", "lr")),
    ("active latent units", ("active_units", "kl_active_units")),
)


def read_history(source: str | os.PathLike[str] | pd.DataFrame) -> pd.DataFrame:
    """history.csv as a DataFrame; `source` is the file, the run directory holding it, or a frame."""
    if isinstance(source, pd.DataFrame):
        df = source
    else:
        p = Path(source)
        if p.is_dir():
            p = p / "history.csv"
        if not p.exists():
            raise DataError(f"{p}: no such file; give a run directory written by `molvae train` or its history.csv")
        df = pd.read_csv(p)
    if "epoch" not in df.columns or len(df) == 0:
        raise DataError("the training history has no rows or no 'epoch' column; is it a molvae history.csv?")
    return df


def plot_history(history: str | os.PathLike[str] | pd.DataFrame, path: str | os.PathLike[str] | None = None,
                 title: str | None = None) -> Any:
    """Training curves per epoch: loss, reconstruction/KL, token and molecule accuracy, property-head
    MAE, the KL weight and learning rate, and active latent units (posterior collapse shows as a
    falling count). Panels whose columns are absent are left out."""
    fmt = _check_path(path)
    df = read_history(history)
    plt = _pyplot(path)
    from matplotlib.ticker import MaxNLocator
    panels = []
    for name, cols in _HISTORY_PANELS:
        cols = tuple(c for c in df.columns if c.startswith("val_mae_")) if cols is None else cols
        present = [c for c in cols if c in df.columns and df[c].notna().any()]
        if present:
            panels.append((name, present))
    ncols = 3 if len(panels) > 4 else 2
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    x = df["epoch"].to_numpy()
    for ax, (name, cols) in zip(axes.flat, panels):
        twin = None
        for k, col in enumerate(cols):
            target = ax
            if col == "lr":  # a different unit: right axis
                twin = ax.twinx()
                target = twin
            style = "--" if col.startswith("train_") else "-"
            target.plot(x, df[col], style, marker="o", ms=3, color=f"C{k}", label=col)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if twin is not None:
            h2, l2 = twin.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
            twin.set_yscale("log")
        ax.legend(handles, labels, fontsize=7, loc="best")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title or f"training history ({len(df)} epochs)", fontsize=11)
    fig.tight_layout()
    _save(fig, path, fmt)
    return fig


# --------------------------------------------------------------------------- latent map

def _color_values(smiles: list[str], color: str | None, frame: pd.DataFrame | None, n_jobs: int | None) -> np.ndarray | None:
    if color is None:
        return None
    if frame is not None and color in frame.columns:
        values = pd.to_numeric(frame[color], errors="coerce").to_numpy(dtype=float)
        return values
    from molvae import chem

    chem.property_name(color)  # UsageError listing the valid names
    return chem.properties(smiles, [color], n_jobs=n_jobs or 1).iloc[:, 0].to_numpy(dtype=float)


def latent_map(model: "MolVAE", molecules: Sequence[str] | pd.DataFrame, color: str | None = "logp",
           n: int | None = 5000, seed: int = 0, n_jobs: int | None = None) -> pd.DataFrame:
    """Posterior means of `molecules` projected on their first two principal components.

    Returns a DataFrame (m, 4+): smiles, pc1, pc2, and the `color` column (RDKit-computed
    unless `molecules` is a frame holding it). Rows that cannot be encoded are skipped with a
    warning; at most `n` molecules (a seeded random subset) are used. `attrs["explained"]` holds
    the explained variance ratio of the two components.
    """
    from sklearn.decomposition import PCA

    frame = molecules.reset_index(drop=True) if isinstance(molecules, pd.DataFrame) else None
    smiles = (frame["smiles"] if frame is not None else pd.Series(list(molecules))).astype(str).tolist()
    if n is not None and len(smiles) > n:
        keep = np.sort(np.random.default_rng(seed).choice(len(smiles), n, replace=False))
        smiles = [smiles[i] for i in keep]
        frame = frame.iloc[keep].reset_index(drop=True) if frame is not None else None
    if len(smiles) < 3:
        raise DataError(f"a latent map needs at least 3 molecules; got {len(smiles)}")
    z, rows = model.encode(smiles, on_invalid="skip", return_rows=True)
    smiles = [smiles[i] for i in rows]
    frame = frame.iloc[rows].reset_index(drop=True) if frame is not None else None
    pca = PCA(n_components=2, random_state=seed)
    xy = pca.fit_transform(np.asarray(z, dtype=np.float64))
    out = pd.DataFrame({"smiles": smiles, "pc1": xy[:, 0], "pc2": xy[:, 1]})
    values = _color_values(smiles, color, frame, n_jobs)
    if values is not None:
        out[color] = values
    out.attrs["explained"] = [float(v) for v in pca.explained_variance_ratio_]
    return out


def plot_latent(model: "MolVAE", molecules: Sequence[str] | pd.DataFrame, color: str | None = "logp",
                path: str | os.PathLike[str] | None = None, n: int | None = 5000, seed: int = 0,
                n_jobs: int | None = None, title: str | None = None) -> Any:
    """Scatter of the latent means (PCA, see `latent_map`) coloured by a property. A smooth colour
    gradient across the map means the latent space organizes molecules by that property."""
    fmt = _check_path(path)
    m = latent_map(model, molecules, color, n, seed, n_jobs)
    plt = _pyplot(path)
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    if color is not None:
        pts = ax.scatter(m["pc1"], m["pc2"], c=m[color], s=6, cmap="viridis", alpha=0.8, linewidths=0)
        fig.colorbar(pts, ax=ax, label=_LABELS.get(color, color))
    else:
        ax.scatter(m["pc1"], m["pc2"], s=6, alpha=0.6, linewidths=0)
    ev = m.attrs["explained"]
    ax.set_xlabel(f"PC1 ({ev[0]:.1%} of variance)")
    ax.set_ylabel(f"PC2 ({ev[1]:.1%} of variance)")
    ax.set_title(title or f"latent means of {len(m)} molecules" + (f", coloured by {color}" if color else ""),
                 fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path, fmt)
    return fig


# --------------------------------------------------------------------------- property distributions

def _property_frame(molecules: Sequence[str] | pd.DataFrame, names: Sequence[str], n_jobs: int | None) -> pd.DataFrame:
    from molvae import chem

    if isinstance(molecules, pd.DataFrame):
        df = molecules
        if "valid" in df.columns:
            df = df[df["valid"].astype(bool)]
        missing = [p for p in names if p not in df.columns]
        smiles = df["smiles"].astype(str).tolist()
    else:
        df, missing, smiles = pd.DataFrame(index=range(len(molecules))), list(names), [str(s) for s in molecules]
    out = pd.DataFrame({p: pd.to_numeric(df[p], errors="coerce").to_numpy(dtype=float)
                        for p in names if p not in missing})
    if missing:
        computed = chem.properties(smiles, missing, n_jobs=n_jobs or 1)
        for p in missing:
            out[p] = computed[chem.property_name(p)].to_numpy(dtype=float)
    return out[list(names)]


def plot_properties(generated: Sequence[str] | pd.DataFrame, reference: Sequence[str] | pd.DataFrame,
                    properties: Sequence[str] = ("logp", "qed", "sa", "mw"), path: str | os.PathLike[str] | None = None,
                    labels: tuple[str, str] = ("generated", "reference"), n_jobs: int | None = None,
                    title: str | None = None) -> Any:
    """Histograms (as densities) of RDKit properties of generated molecules over a reference set,
    one panel per property, each titled with the 1-D Wasserstein distance (property units; 0 means
    identical distributions). Invalid molecules are left out; properties already in a frame are used."""
    from scipy.stats import wasserstein_distance

    fmt = _check_path(path)
    if not properties:
        raise UsageError("give at least one property to plot")
    gen = _property_frame(generated, properties, n_jobs)
    ref = _property_frame(reference, properties, n_jobs)
    plt = _pyplot(path)
    ncols = min(len(properties), 4)
    nrows = -(-len(properties) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.0 * nrows), squeeze=False)
    for ax, p in zip(axes.flat, properties):
        g, r = gen[p].dropna().to_numpy(), ref[p].dropna().to_numpy()
        if len(g) == 0 or len(r) == 0:
            raise DataError(f"no valid molecule to plot {p} for the {labels[0] if len(g) == 0 else labels[1]} set")
        bins = np.histogram_bin_edges(np.concatenate([g, r]), bins=40)
        ax.hist(r, bins=bins, density=True, alpha=0.45, color="C0", label=f"{labels[1]} (n={len(r)})")
        ax.hist(g, bins=bins, density=True, histtype="step", lw=1.6, color="C3", label=f"{labels[0]} (n={len(g)})")
        ax.set_title(f"{_LABELS.get(p, p)}   W1 = {wasserstein_distance(g, r):.3g}", fontsize=9)
        ax.set_ylabel("density")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(properties):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path, fmt)
    return fig
