"""Charts (molvae.plotting.charts) and `molvae plot`: the images exist, hold what their titles say, and
bad paths or inputs give clear errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molvae import chem
from molvae.plotting import charts as charts
from molvae.errors import DataError, UsageError

DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.usefixtures("one_thread")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _distinct_colours(path: Path) -> int:
    import matplotlib.image as mpimg

    img = mpimg.imread(path)[..., :3]
    return len(np.unique((img.reshape(-1, 3) * 255).astype(np.uint8), axis=0))


def test_history_png_and_svg(gen_checkpoint: Path, tmp_path: Path) -> None:
    hist = pd.read_csv(gen_checkpoint / "history.csv")
    fig = charts.plot_history(gen_checkpoint, tmp_path / "h.png")
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert "loss (nats/molecule)" in titles and "property head MAE (property units)" not in titles  # no val set
    loss_ax = next(ax for ax in fig.axes if ax.get_title() == "loss (nats/molecule)")
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), hist["train_loss"])  # the curve is the history
    assert (tmp_path / "h.png").read_bytes()[:8] == PNG_MAGIC and _distinct_colours(tmp_path / "h.png") > 20
    charts.plot_history(gen_checkpoint / "history.csv", tmp_path / "h.svg")
    assert "<svg" in (tmp_path / "h.svg").read_text()[:2000]


def test_history_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="png or svg"):
        charts.plot_history(pd.DataFrame({"epoch": [1], "train_loss": [1.0]}), tmp_path / "h.jpg")
    with pytest.raises(DataError, match="no such file"):
        charts.plot_history(tmp_path)
    with pytest.raises(DataError, match="'epoch'"):
        charts.plot_history(pd.DataFrame({"loss": [1.0]}))
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_latent_map_colours_by_rdkit_property(vae, tmp_path: Path) -> None:
    smiles = pd.read_csv(DATA / "gen_train.csv")["smiles"].tolist()
    with pytest.warns(RuntimeWarning, match="row 64 'not a smiles'"):
        m = charts.latent_map(vae, smiles + ["not a smiles"], color="logP")
    assert len(m) == len(smiles) and list(m.columns[:3]) == ["smiles", "pc1", "pc2"]
    np.testing.assert_allclose(m["logP"], chem.properties(m["smiles"], ["logp"])["logp"])
    ev = m.attrs["explained"]
    assert 0 < ev[1] <= ev[0] and sum(ev) <= 1 + 1e-9
    # the map is the PCA of the posterior means: distances along pc1/pc2 follow the latent geometry
    z = vae.encode(m["smiles"].tolist())
    centred = z - z.mean(0)
    assert np.var(m["pc1"]) == pytest.approx(np.linalg.svd(centred, compute_uv=False)[0] ** 2 / len(z), rel=1e-3)
    fig = charts.plot_latent(vae, smiles, color="qed", path=tmp_path / "l.png")
    assert "coloured by qed" in fig.axes[0].get_title() and _distinct_colours(tmp_path / "l.png") > 20
    with pytest.raises(UsageError, match="unknown property"):
        charts.latent_map(vae, smiles, color="potency")


def test_latent_map_uses_a_frame_column(vae) -> None:
    df = pd.read_csv(DATA / "gen_train.csv").head(20)
    df["assay"] = np.arange(len(df), dtype=float)
    m = charts.latent_map(vae, df, color="assay", n=10, seed=3)
    assert len(m) == 10
    lookup = dict(zip(df["smiles"], df["assay"]))
    assert [lookup[s] for s in m["smiles"]] == m["assay"].tolist()


def test_property_histograms_report_wasserstein(tmp_path: Path) -> None:
    from scipy.stats import wasserstein_distance

    smiles = pd.read_csv(DATA / "gen_train.csv")["smiles"].tolist()
    gen, ref = smiles[:30], smiles[30:]
    fig = charts.plot_properties(gen, ref, ["logp", "qed"], tmp_path / "p.png")
    props = chem.properties(smiles, ["logp"])["logp"].to_numpy()
    expected = wasserstein_distance(props[:30], props[30:])
    assert fig.axes[0].get_title().endswith(f"W1 = {expected:.3g}")
    same = charts.plot_properties(pd.DataFrame({"smiles": ref}), ref, ["qed"])
    assert same.axes[0].get_title().endswith("W1 = 0")
    with pytest.raises(DataError, match="no valid molecule"):
        charts.plot_properties(pd.DataFrame({"smiles": ["C1CC", "x"], "valid": [False, False]}), ref, ["qed"])


def test_cli_plot_commands(run, gen_checkpoint: Path, tmp_path: Path) -> None:
    code, out = run("plot", "history", gen_checkpoint, "-o", tmp_path / "h.png")
    assert code == 0 and (tmp_path / "h.png").read_bytes()[:8] == PNG_MAGIC, out
    code, out = run("plot", "latent", "--model", gen_checkpoint, "--data", DATA / "gen_train.csv", "--color", "qed",
                    "-o", tmp_path / "l.svg")
    assert code == 0 and "<svg" in (tmp_path / "l.svg").read_text()[:2000], out
    code, out = run("plot", "properties", DATA / "gen_train.csv", "--reference", DATA / "train_tiny.csv",
                    "-p", "mw", "-o", tmp_path / "p.png")
    assert code == 0 and (tmp_path / "p.png").exists(), out
    code, out = run("plot", "history", tmp_path, "-o", tmp_path / "x.png")
    assert code == 1 and "no such file" in out and "Traceback" not in out
    code, out = run("plot", "properties", DATA / "gen_train.csv", "-o", tmp_path / "p.gif")
    assert code == 2 and "png or svg" in out
