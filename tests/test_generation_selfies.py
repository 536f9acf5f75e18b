"""SELFIES models end to end, on a tiny SELFIES VAE trained here on tests/data/gen_train.csv.

No SELFIES model ships any more (`moses-selfies` was removed in issue 25; SELFIES is a training option,
`molvae train --repr selfies`), so this file keeps what that model covered: training and saving a SELFIES
checkpoint with its constraints, loading it, sampling from its latent density and from N(0, I) (every decoded
string a molecule), reconstruction with the canonical match, encoding, the property head, and the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import selfies as sf
from rdkit import Chem

import molvae
from molvae.generation.api import MolVAE

pytestmark = pytest.mark.usefixtures("one_thread")

DATA = Path(__file__).parent / "data" / "gen_train.csv"
TRAIN = pd.read_csv(DATA)["smiles"].tolist()


@pytest.fixture(scope="module")
def selfies_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """conftest's tiny-model recipe (`train_tiny`: 64 molecules, 40 epochs of 4 batches, fp32, one thread) with
    `representation="selfies"`: a few seconds on an idle core, deterministic."""
    from tests.conftest import train_tiny

    return train_tiny(tmp_path_factory.mktemp("selfies") / "tiny", representation="selfies")


@pytest.fixture(scope="module")
def selfies_vae(selfies_checkpoint: Path) -> MolVAE:
    return molvae.load(selfies_checkpoint, device="cpu", precision="fp32", n_jobs=1)


def test_checkpoint_records_the_selfies_tokenizer(selfies_checkpoint: Path, selfies_vae: MolVAE) -> None:
    config = json.loads((selfies_checkpoint / "config.json").read_text())
    assert config["representation"] == "selfies"
    assert config["tokenizer"]["selfies_constraint_values"] == sf.get_preset_constraints("default")
    assert selfies_vae.tokenizer.representation == "selfies" and "selfies" in repr(selfies_vae)
    tokens = json.loads((selfies_checkpoint / "vocab.json").read_text())["tokens"]
    assert "[C]" in tokens and all(t[0] in "[<." for t in tokens)  # SELFIES symbols and specials, no SMILES tokens


@pytest.mark.parametrize("prior", ["density", "standard"])
def test_every_decoded_string_is_a_molecule_given_as_smiles(selfies_vae: MolVAE, prior: str) -> None:
    df = selfies_vae.sample(60, seed=0, prior=prior)
    assert df.attrs["prior"] == prior
    assert df["smiles"].tolist() == selfies_vae.sample(60, seed=0, prior=prior)["smiles"].tolist()
    # SELFIES: any non-empty symbol sequence decodes to a molecule; only an empty decode is invalid
    assert (df["valid"] == (df["smiles"] != "")).all() and df["valid"].mean() >= 0.9
    valid = df[df["valid"]]
    assert not valid["smiles"].str.contains(r"\[[A-Z][a-z]?\]\[", regex=True).any()  # SMILES, not SELFIES
    assert all(Chem.MolToSmiles(Chem.MolFromSmiles(s)) == c for s, c in zip(valid["smiles"], valid["canonical"]))
    assert valid["logp"].notna().all() and "novel" in df.columns


def test_reconstruct_encode_decode_and_predict(selfies_vae: MolVAE) -> None:
    rec = selfies_vae.reconstruct(TRAIN[:16], seed=0)
    assert len(rec) == 16 and rec["valid"].all()
    canon = [Chem.CanonSmiles(s) for s in TRAIN[:16]]
    assert rec["exact"].tolist() == [o == c for o, c in zip(rec["canonical"], canon)]
    assert rec["exact"].any()  # a trained model memorizes some of its training molecules
    mu = selfies_vae.encode(TRAIN[:4])
    assert mu.shape == (4, 16) and np.isfinite(mu).all()
    decoded = selfies_vae.decode(mu)
    assert len(decoded) == 4 and all(Chem.MolFromSmiles(s) is not None for s in decoded)
    pred = selfies_vae.predict(TRAIN[:8], rdkit=True)
    assert pred["logp"].notna().all() and pred["logp"].corr(pred["logp_rdkit"]) > 0


def test_cli_samples_a_selfies_checkpoint(run, selfies_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    code, text = run("sample", "--n", 8, "--seed", 0, "--device", "cpu", "--model", selfies_checkpoint, "-o", out)
    assert code == 0, text
    assert len(pd.read_csv(out)) == 8 and "8 molecules, valid" in text
    record = json.loads(out.with_suffix(".config.json").read_text())
    assert record["model"]["representation"] == "selfies"
