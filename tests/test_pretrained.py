"""The models shipped in molvae/pretrained/ (today the SMILES default alone; SELFIES models are covered by
tests/test_generation_selfies.py): each loads offline, samples, reconstructs unseen MOSES test molecules and
carries what the checkpoint format and the model card promise."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import molvae
from molvae.errors import CheckpointError
from molvae.generation.api import DEFAULT_MODEL, pretrained_dir
from molvae.model.checkpoint import RETIRED_MODELS, resolve_model

pytestmark = pytest.mark.usefixtures("one_thread")

SHIPPED = sorted(p.name for p in pretrained_dir().iterdir() if p.is_dir()) if pretrained_dir().is_dir() else []
TEST = pd.read_csv(Path(__file__).resolve().parent.parent / "data" / "moses_test_2k.csv")["SMILES"].tolist()


def test_default_model_is_shipped() -> None:
    assert DEFAULT_MODEL in SHIPPED


def test_retired_model_names_say_how_to_train_one(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """moses-selfies shipped until issue 25: its name now gives one paragraph (why, and the training command), in
    the API and the CLI, and a checkpoint directory of that name is still loaded as a path."""
    assert "moses-selfies" in RETIRED_MODELS and not set(RETIRED_MODELS) & set(SHIPPED)
    for load in (resolve_model, molvae.load):
        with pytest.raises(CheckpointError, match="no longer shipped") as info:
            load("moses-selfies")
        assert "molvae train --data moses --repr selfies" in str(info.value)
    code, text = run("sample", "--n", 3, "--model", "moses-selfies")
    assert code == 1 and "no longer shipped" in text and "--repr selfies" in text and "Traceback" not in text
    monkeypatch.chdir(tmp_path)
    (tmp_path / "moses-selfies").mkdir()
    assert resolve_model("moses-selfies") == Path("moses-selfies")


def test_a_missing_model_is_a_missing_checkpoint(tmp_path: Path) -> None:
    """A name that is neither a directory nor a shipped model: MissingCheckpointError, so notebook code catches it
    as FileNotFoundError as well as CheckpointError; a retired name is not 'missing' (it says what replaced it)."""
    from molvae.errors import MissingCheckpointError

    for name in ("moses-smiles-v9", str(tmp_path / "nowhere")):
        with pytest.raises(MissingCheckpointError, match="not a checkpoint directory and not a shipped model") as info:
            resolve_model(name)
        assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, CheckpointError)
        assert DEFAULT_MODEL in str(info.value)  # the shipped names are listed
    with pytest.raises(CheckpointError) as info:
        resolve_model("moses-selfies")
    assert not isinstance(info.value, MissingCheckpointError)


@pytest.fixture(scope="module", params=SHIPPED)
def shipped(request: pytest.FixtureRequest) -> tuple[str, molvae.MolVAE]:
    # fp32: bf16 kernels differ between CPUs, and the assertions below must not depend on the machine.
    return request.param, molvae.load(request.param, device="cpu", precision="fp32", n_jobs=1)


def test_files_size_and_card(shipped: tuple[str, molvae.MolVAE]) -> None:
    name, _ = shipped
    folder = pretrained_dir() / name
    files = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "vocab.json", "train_hashes.npy", "MODEL_CARD.md"} <= files
    assert not {"trainer_state.json", "trainer_state.safetensors"} & files
    assert (folder / "model.safetensors").stat().st_size <= 20e6
    config = json.loads((folder / "config.json").read_text())
    assert name.split("-")[-1] == config["representation"]
    card = (folder / "MODEL_CARD.md").read_text()
    assert "MOSES" in card and "FCD/Test" in card and config["representation"].upper() in card


def test_samples_are_valid_novel_and_scored(shipped: tuple[str, molvae.MolVAE]) -> None:
    name, vae = shipped
    df = vae.sample(200, seed=0)
    a = vae.sample(200, seed=0)
    assert df["smiles"].tolist() == a["smiles"].tolist()
    valid = df[df["valid"]]
    # Measured over 30,000 samples: .879 (N(0, I)), .903 (the density prior); 200 draws leave a wide margin.
    assert len(valid) >= 140
    assert valid["canonical"].nunique() >= 0.98 * len(valid)
    # The default prior is the shipped posterior mixture (novelty about .90 over 10,000 samples);
    # N(0, I) draws are about .98 novel.
    assert df.attrs["prior"] == "density" and valid["novel"].mean() > 0.8
    assert valid["logp"].between(-5, 10).all() and valid["qed"].between(0, 1).all()
    standard = vae.sample(200, seed=0, prior="standard")
    assert standard[standard["valid"]]["novel"].mean() > 0.9


def test_shipped_density_is_a_posterior_mixture_of_training_molecules(shipped: tuple[str, molvae.MolVAE]) -> None:
    _, vae = shipped
    assert vae.density_kind == "posterior-mixture" and vae.density.n_components == 20_000
    assert vae.density.info["config"]["n_molecules"] == 20_000
    # test molecules' posterior means are typical under it, points far out along every axis are not
    mu = vae.encode(TEST[:50])
    assert np.median(vae.log_density(mu)) > np.median(vae.log_density(mu + 3.0)) + 20


def test_reconstructs_unseen_test_molecules(shipped: tuple[str, molvae.MolVAE]) -> None:
    _, vae = shipped
    out = vae.reconstruct(TEST[:100], seed=0)
    assert len(out) == 100 and out["exact"].mean() >= 0.3  # first 1,000 MOSES test molecules: .56 (moses-smiles)


def test_property_head_tracks_rdkit(shipped: tuple[str, molvae.MolVAE]) -> None:
    _, vae = shipped
    pred = vae.predict(TEST[:300], rdkit=True)
    assert pred["logp"].corr(pred["logp_rdkit"]) > 0.85  # R^2 on 5,000 test molecules: .96 (moses-smiles)


def test_cli_sample_with_no_model_named_uses_the_default(run, tmp_path: Path) -> None:
    out = tmp_path / "ten.csv"
    code, text = run("sample", "--n", 10, "--seed", 0, "--device", "cpu", "-o", out)
    assert code == 0, text
    assert len(pd.read_csv(out)) == 10 and "10 molecules, valid" in text
    record = json.loads(out.with_suffix(".config.json").read_text())
    assert record["model"]["name"] == DEFAULT_MODEL and record["settings"]["model"] is None
    assert Path(record["model"]["path"]) == pretrained_dir() / DEFAULT_MODEL
