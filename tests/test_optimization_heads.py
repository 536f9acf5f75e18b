"""The post-hoc head ensemble (molvae.optimization.heads) and its use by the gradient search, on the
shipped default model with 200 molecules of the embedded MOSES train subset and two short-trained members."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from molvae import chem
from molvae.data.datasets import embedded_path
from molvae.errors import CheckpointError, DataError, UsageError
from molvae.generation.api import MolVAE
from molvae.optimization.heads import HEADS_FILE, HeadEnsemble, fit_heads
from molvae.optimization.run import optimize

pytestmark = pytest.mark.usefixtures("one_thread")

STARTS = ["CC(=O)Nc1ccc(O)cc1", "Cc1ccc(C(=O)Nc2ccccc2)cc1"]


@pytest.fixture(scope="module")
def heads(shipped: MolVAE) -> HeadEnsemble:
    smiles = pd.read_csv(embedded_path("train")).iloc[:200, 0].tolist()
    return fit_heads(shipped, smiles, n_members=2, hidden=32, epochs=20, draws=2, seed=0)


def test_members_learn_rdkit_targets_and_disagree(shipped: MolVAE, heads: HeadEnsemble) -> None:
    smiles = pd.read_csv(embedded_path("train")).iloc[:200, 0].tolist()
    z = torch.from_numpy(shipped.encode(smiles))
    with torch.no_grad():
        pred = heads.predict(z)
    assert pred.shape == (2, 200, 3) and heads.names == ("logp", "qed", "sa")
    logp = pred[:, :, 0].mean(0).numpy() * shipped.prop_stats["logp"][1] + shipped.prop_stats["logp"][0]
    rd = chem.properties(smiles, ["logp"])["logp"].to_numpy()
    assert np.corrcoef(logp, rd)[0, 1] > 0.5  # fitted on these molecules' posterior samples
    assert float((pred[0] - pred[1]).abs().mean()) > 1e-3  # members differ: their spread is the uncertainty
    assert heads.info["inputs"].startswith("posterior samples")


def test_save_load_round_trip_and_checks(shipped: MolVAE, heads: HeadEnsemble, vae: MolVAE, tmp_path: Path) -> None:
    heads.save(tmp_path / "h")
    back = HeadEnsemble.load(tmp_path / "h")
    z = torch.randn(5, shipped.latent_dim)
    torch.testing.assert_close(back.predict(z), heads.predict(z))
    assert (tmp_path / "h" / HEADS_FILE).read_bytes()[8:9] == b"{"  # safetensors header, no pickle
    with pytest.raises(CheckpointError, match="no head ensemble"):
        HeadEnsemble.load(tmp_path)
    with pytest.raises(UsageError, match="fit one for this model"):
        back.check(vae)  # the tiny fixture model: latent 16, logp and qed only
    with pytest.raises(DataError, match="100"):
        fit_heads(shipped, ["CCO", "c1ccccc1"], n_members=1, epochs=1)


def test_gradient_search_uses_the_ensemble(shipped: MolVAE, heads: HeadEnsemble, tmp_path: Path) -> None:
    heads.save(tmp_path / "h")
    common = dict(start=STARTS, similarity=0.4, n_starts=4, steps=4, decode_every=4, seed=0, temperature=0)
    plain = optimize(shipped, "plogp", **common)
    careful = optimize(shipped, "plogp", heads=tmp_path / "h", uncertainty_weight=50.0, **common)
    assert "std of the score across 2 heads" in careful.attrs["guidance"]
    assert careful.attrs["settings"]["uncertainty_weight"] == 50.0
    a, b = plain.attrs["run"].trajectories, careful.attrs["run"].trajectories
    assert a["score_pred"].tolist() != b["score_pred"].tolist()  # the penalty moved the latents
    with pytest.raises(UsageError, match="needs heads"):
        optimize(shipped, "plogp", uncertainty_weight=1.0, **common)
    with pytest.raises(UsageError, match="gradient method only"):
        optimize(shipped, "plogp", method="random", heads=heads, start=STARTS)
