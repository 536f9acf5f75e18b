"""A model's learned latent density seen from MolVAE and the CLI: fitting, default prior, log_density."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import molvae
from molvae.errors import DataError, UsageError
from molvae.generation.density_fit import DensityConfig

pytestmark = pytest.mark.usefixtures("one_thread")
DATA = Path(__file__).parent / "data"


@pytest.fixture()
def own_checkpoint(gen_checkpoint: Path, tmp_path: Path) -> Path:
    """A copy of the tiny checkpoint, so that writing a density into it leaves the shared one alone."""
    return Path(shutil.copytree(gen_checkpoint, tmp_path / "tiny"))


def _train_smiles() -> list[str]:
    return pd.read_csv(DATA / "gen_train.csv")["smiles"].tolist()


def test_training_gives_the_model_its_density(gen_checkpoint: Path) -> None:
    vae = molvae.load(gen_checkpoint, device="cpu", precision="fp32")
    assert vae.density_kind == "posterior-mixture"
    assert vae.density.n_components == 58  # 90% of the 64 training molecules; the rest held out
    assert vae.sample(8, seed=0).attrs["prior"] == "density"


def test_without_a_density_the_prior_is_standard_and_density_is_refused(own_checkpoint: Path) -> None:
    for name in ("density.safetensors", "density.json"):
        (own_checkpoint / name).unlink()
    vae = molvae.load(own_checkpoint, device="cpu", precision="fp32")
    assert vae.density is None and vae.density_kind == "standard-normal"
    assert vae.sample(8, seed=0).attrs["prior"] == "standard"
    with pytest.raises(UsageError, match="no latent density"):
        vae.sample(8, seed=0, prior="density")
    with pytest.raises(UsageError, match="prior"):
        vae.sample(8, seed=0, prior="uniform")
    z = np.zeros((3, vae.latent_dim))
    np.testing.assert_allclose(vae.log_density(z), -0.5 * vae.latent_dim * np.log(2 * np.pi))


def test_fitted_density_becomes_the_default_prior_and_is_saved(own_checkpoint: Path) -> None:
    vae = molvae.load(own_checkpoint, device="cpu", precision="fp32")
    density = vae.fit_density(_train_smiles(), DensityConfig(heldout_fraction=0.2), save=True)
    # the default kind keeps the posteriors of the non-held-out molecules (64 in the file, 13 held out)
    assert vae.density_kind == "posterior-mixture" and density.n_components == 51
    assert np.isfinite(density.info["heldout_loglik"]) and density.info["config"]["kind"] == "posterior-mixture"
    df = vae.sample(16, seed=0)
    assert df.attrs["prior"] == "density" and len(df) == 16
    # the training molecules' own latents are typical under the density, far-away points are not
    mu = vae.encode(_train_smiles())
    far = mu + 10.0
    assert np.median(vae.log_density(mu)) > np.median(vae.log_density(far)) + 10
    reloaded = molvae.load(own_checkpoint, device="cpu", precision="fp32")
    # float16 storage of the per-molecule means and scales: a few hundredths of a nat
    np.testing.assert_allclose(reloaded.log_density(mu), vae.log_density(mu), rtol=2e-3, atol=5e-2)
    a = reloaded.sample(16, seed=0, prior="standard")
    b = vae.sample(16, seed=0, prior="standard")
    assert a["smiles"].tolist() == b["smiles"].tolist()


def test_gaussian_mixture_kind_selects_by_heldout_likelihood(own_checkpoint: Path) -> None:
    vae = molvae.load(own_checkpoint, device="cpu", precision="fp32")
    cfg = DensityConfig(kind="gaussian-mixture", candidates=(1, 2), heldout_fraction=0.2)
    density = vae.fit_density(_train_smiles(), cfg)
    rows = density.info["selection"]
    assert [r["n_components"] for r in rows] == [1, 2] and vae.density_kind == "gaussian-mixture"
    assert density.info["heldout_loglik"] == max(r["heldout_loglik"] for r in rows)
    assert vae.sample(8, seed=0).attrs["prior"] == "density"


def test_too_few_molecules_is_a_clear_error(own_checkpoint: Path) -> None:
    vae = molvae.load(own_checkpoint, device="cpu", precision="fp32")
    with pytest.raises(DataError, match="too few"):
        vae.fit_density(_train_smiles()[:12], DensityConfig(kind="gaussian-mixture", candidates=(4,)))


def test_config_is_validated() -> None:
    for bad in ({"source": "prior"}, {"candidates": ()}, {"heldout_fraction": 0.9}, {"n_molecules": 0},
                {"kind": "flow"}):
        with pytest.raises(UsageError):
            DensityConfig(**bad)


def test_cli_density_then_sample_uses_it(own_checkpoint: Path, run) -> None:
    code, out = run("density", "--model", own_checkpoint, "--data", DATA / "gen_train.csv", "--n", "64")
    assert code == 0, out
    assert (own_checkpoint / "density.safetensors").is_file() and "held-out log-likelihood" in out
    code, out = run("sample", "--model", own_checkpoint, "-n", "5", "--seed", "1")
    assert code == 0 and "prior density" in out, out
    code, out = run("sample", "--model", own_checkpoint, "-n", "5", "--prior", "standard")
    assert code == 0 and "prior standard" in out, out
    code, out = run("density", "--model", own_checkpoint, "--data", DATA / "gen_train.csv", "--source", "x")
    assert code == 2 and "Traceback" not in out
