"""The generation side of a conditional model (docs/conditional.md): which c every path decodes with, the
density that keeps each component's c, windows through the conditions, analogs (`near=`) and the CLI.

Two models: the shipped default's conditional twin (zero conditioning weights: it must compute exactly what
the shipped model computes, whatever c each path chooses) for the plumbing, and `cond_checkpoint` (a tiny
model trained with logP as its condition) for behaviour."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import molvae
from molvae import chem
from molvae.errors import CheckpointError, DataError, UsageError
from molvae.generation.analogs import target_conditions
from molvae.generation.conditioned_draws import INSIDE_MARGIN, MIN_INSIDE, ConditionedDraws, move_inside
from molvae.generation.conditions import Window, parse_where
from molvae.generation.density_fit import DensityConfig
from molvae.model.density import LatentDensity
from molvae.train.warm_start import add_conditioning

pytestmark = pytest.mark.usefixtures("one_thread")

PARACETAMOL = "CC(=O)Nc1ccc(O)cc1"
STATS = {"logp": (2.45, 0.9), "qed": (0.8, 0.1)}


@pytest.fixture(scope="module")
def train_smiles() -> list[str]:
    from pathlib import Path

    data = Path(__file__).resolve().parents[1] / "data" / "moses_train_20k.csv"
    return pd.read_csv(data)["SMILES"].tolist()[:300]


@pytest.fixture(scope="module")
def twin(shipped, train_smiles):
    """The shipped model with zero-weight conditioning on logP and QED, and a density fitted to 270 molecules."""
    vae = molvae.MolVAE(add_conditioning(shipped.model, 2).eval(), shipped.tokenizer, shipped.vocab,
                        shipped.prop_stats, shipped.train_hashes, device="cpu", precision="fp32", n_jobs=1,
                        cond_stats=STATS)
    vae.fit_density(train_smiles, DensityConfig(n_molecules=270, heldout_fraction=0.1))
    return vae


@pytest.fixture(scope="module")
def base(shipped, twin):
    """The shipped model with the twin's density (so that both draw the same latents)."""
    return molvae.MolVAE(shipped.model, shipped.tokenizer, shipped.vocab, shipped.prop_stats, shipped.train_hashes,
                         device="cpu", precision="fp32", n_jobs=1, density=twin.density)


@pytest.fixture(scope="module")
def cond(cond_checkpoint):
    return molvae.load(cond_checkpoint, device="cpu", precision="fp32", n_jobs=1)


# ------------------------------------------------------------------ the codec's conditions
def test_conditions_are_standardized_with_the_checkpoints_statistics(twin):
    c = twin.codec.rdkit_conditions([PARACETAMOL, "not a molecule"])
    logp, qed = chem.properties([PARACETAMOL], ["logp", "qed"]).iloc[0]
    assert c.shape == (2, 2) and c.dtype == torch.float32
    assert c[0].tolist() == pytest.approx([(logp - 2.45) / 0.9, (qed - 0.8) / 0.1], abs=1e-5)
    assert c[1].tolist() == [0.0, 0.0]  # unknown values become the training mean
    assert twin.codec.unstandardize(c[:1])[0] == pytest.approx([logp, qed], abs=1e-5)


def test_head_conditions_are_the_heads_prediction_in_condition_units(twin):
    z = torch.from_numpy(twin.encode([PARACETAMOL, "c1ccccc1O"]))
    predicted = twin.codec.head_values(z, ["logp", "qed"])
    assert twin.codec.unstandardize(twin.codec.head_conditions(z)) == pytest.approx(predicted, abs=1e-4)
    differentiable = twin.codec.head_conditions_differentiable(z.clone().requires_grad_(True))
    assert differentiable.requires_grad
    assert differentiable.detach().numpy() == pytest.approx(twin.codec.head_conditions(z).numpy(), abs=1e-5)


def test_a_condition_the_head_does_not_predict_is_refused(shipped):
    with pytest.raises(CheckpointError, match="not predicted by the property head"):
        molvae.MolVAE(add_conditioning(shipped.model, 1), shipped.tokenizer, shipped.vocab, shipped.prop_stats,
                      device="cpu", cond_stats={"tpsa": (70.0, 20.0)})


# ------------------------------------------------------------------ zero conditioning changes nothing
def test_every_path_of_a_zero_conditioned_twin_matches_its_base(twin, base, train_smiles):
    assert twin.is_conditional and twin.cond_names == ("logp", "qed") and not base.is_conditional
    # Zero weights add exact zeros, but a wider matmul may sum in another order: allow a rare flipped token.
    assert (twin.sample(60, seed=3)["smiles"] == base.sample(60, seed=3)["smiles"]).mean() >= 0.95
    assert (twin.reconstruct(train_smiles[:20])["output"] == base.reconstruct(train_smiles[:20])["output"]).mean() >= 0.95
    assert twin.score(train_smiles[:5])["nll"].to_numpy() == pytest.approx(base.score(train_smiles[:5])["nll"].to_numpy(),
                                                                            abs=1e-3)
    assert twin.interpolate(train_smiles[0], train_smiles[1], steps=3)["smiles"].tolist() == \
        base.interpolate(train_smiles[0], train_smiles[1], steps=3)["smiles"].tolist()


def test_the_optimizers_likelihood_reads_the_heads_conditions_and_keeps_its_gradient(twin, base, train_smiles):
    from molvae.optimization.likelihood import StartLikelihood

    starts = train_smiles[:3]
    z = torch.from_numpy(twin.encode(starts))
    group = np.arange(3)
    assert StartLikelihood(twin, starts).nll(z, group) == pytest.approx(StartLikelihood(base, starts).nll(z, group),
                                                                        abs=1e-3)
    refined = StartLikelihood(twin, starts).refine(z, torch.ones_like(z) * 0.1, steps=2)
    assert refined.shape == z.shape and not torch.equal(refined, z)


def test_the_density_keeps_each_components_conditions_and_stores_them(twin, tmp_path):
    density = twin.density
    assert density.n_conds == 2 and density.conds.shape == (density.n_components, 2)
    values = twin.codec.unstandardize(density.conds)
    assert 0.5 < values[:, 1].mean() < 1.0 and np.isfinite(values).all()  # QED of training molecules
    density.save(tmp_path)
    loaded = LatentDensity.load(tmp_path)
    assert torch.allclose(loaded.conds, density.conds.double(), atol=1e-6)
    z, c = loaded.sample_with_conds(6, torch.Generator().manual_seed(0))
    assert torch.equal(z, loaded.sample(6, torch.Generator().manual_seed(0)))  # the same draws as before
    rows = [int(torch.argmin((loaded.conds - ci.double()).abs().sum(1))) for ci in c]
    assert torch.allclose(loaded.conds[rows].float(), c)  # each draw's c is one component's c


# ------------------------------------------------------------------ windows
def test_window_draws_take_the_components_inside_the_window(twin):
    windows = parse_where("logp>=3,logp<=4", twin.prop_names)
    draws = ConditionedDraws(twin.codec, twin.density, windows)
    values = twin.codec.unstandardize(twin.density.conds)[:, 0]
    assert draws.inside == int(((values >= 3) & (values <= 4)).sum()) >= MIN_INSIDE and not draws.moved
    z, c = draws.draw(50, torch.Generator().manual_seed(0), np.random.default_rng(0))
    got = twin.codec.unstandardize(c)[:, 0]
    assert z.shape == (50, twin.latent_dim) and ((got >= 3 - 1e-4) & (got <= 4 + 1e-4)).all()


def test_a_window_beyond_the_data_moves_the_nearest_conditions_into_it(twin):
    draws = ConditionedDraws(twin.codec, twin.density, parse_where("logp>=7", twin.prop_names))
    assert draws.moved and draws.inside < MIN_INSIDE
    _, c = draws.draw(20, torch.Generator().manual_seed(0), np.random.default_rng(0))
    assert twin.codec.unstandardize(c)[:, 0] == pytest.approx(7 + INSIDE_MARGIN * 0.9, abs=1e-4)


def test_move_inside_never_passes_the_middle_of_a_narrow_window():
    out = move_inside(np.array([[0.0], [5.0], [10.0]]), [Window("logp", 4.9, 5.1)], np.array([1.0]))
    assert out[:, 0] == pytest.approx([5.0, 5.0, 5.0])


def test_sampling_in_a_window_uses_the_conditions(twin):
    df = twin.sample(5, where="logp>=2,logp<=3", seed=0, max_decodes=300)
    assert df.attrs["conditioned"] == ["logp"] and df.attrs["steered"] == []
    assert ((df["logp"] >= 2) & (df["logp"] <= 3)).all() and len(df) == 5
    head_only = twin.sample(3, where="sa<=3", seed=0, max_decodes=300)  # sa is not a condition: steered
    assert head_only.attrs["conditioned"] == [] and head_only.attrs["steered"] == ["sa"]


def test_a_trained_conditional_model_hits_a_window_far_above_its_plain_rate(cond):
    """The window holds about 12% of MOSES; plain samples of the same model (each latent with its component's
    c) are the unconditional rate (measured: .153 plain, .355 hits per decode in the window)."""
    plain = cond.sample(400, seed=0, temperature=0.5)
    plain_rate = float(((plain["logp"] >= 3.5) & plain["valid"]).mean())
    df = cond.sample(100, where="logp>=3.5", seed=0, temperature=0.5, max_decodes=400)
    assert df.attrs["conditioned"] == ["logp"]
    assert df.attrs["hit_rate"] > 1.8 * plain_rate and df.attrs["hit_rate"] > 0.25, (df.attrs["hit_rate"], plain_rate)


def test_a_trained_conditional_models_density_was_fitted_with_conditions(cond):
    assert cond.is_conditional and cond.density.n_conds == 1 and cond.density.n_components == 2000


# ------------------------------------------------------------------ analogs
def test_target_conditions_ask_for_the_smallest_change_that_meets_the_window(twin):
    own = np.array([1.0, 0.7])
    c = target_conditions(twin.codec, own, [Window("logp", 2.0, math.inf)], 200, np.random.default_rng(0))
    values = twin.codec.unstandardize(c)
    width = 2 * INSIDE_MARGIN * 0.9
    assert (values[:, 0] >= 2.0 - 1e-5).all() and (values[:, 0] <= 2.0 + width + 1e-5).all()
    assert values[:, 1] == pytest.approx(0.7, abs=1e-5)  # the condition the window does not name stays
    inside = target_conditions(twin.codec, np.array([3.0, 0.7]), [Window("logp", 2.0, math.inf)], 3,
                               np.random.default_rng(0))
    assert twin.codec.unstandardize(inside)[:, 0] == pytest.approx(3.0, abs=1e-5)


@pytest.mark.parametrize("model, floor", [("shipped", 0.3), ("cond", 0.2)])
def test_analogs_keep_the_similarity_floor_and_the_window(model, floor, request):
    """The tiny conditional model (KL weight 1, 6 epochs) keeps little of a molecule: measured, no analog of
    paracetamol at Tanimoto .3 in 200 decodes, 4 at .2 in 112."""
    vae = request.getfixturevalue(model)
    df = vae.sample(4, near=PARACETAMOL, similarity=floor, where="logp>=1", seed=0, max_decodes=200,
                    unique_valid=True)
    a = df.attrs
    assert a["near"] == chem.canonical(PARACETAMOL) and a["n_drawn"] <= 200 and 0 < a["hits"] <= a["n_drawn"]
    assert a["conditioned"] == (["logp"] if model == "cond" else [])
    assert sum(d for d, _ in a["scales"].values()) == a["n_drawn"]
    assert (df["similarity"] >= floor).all() and (df["logp"] >= 1).all() and df["valid"].all()
    assert (df["canonical"] != a["near"]).all() and not df["canonical"].duplicated().any()
    expected = chem.bulk_tanimoto(PARACETAMOL, df["smiles"].tolist())
    assert df["similarity"].to_numpy() == pytest.approx(expected)


def test_analogs_check_their_arguments(shipped):
    with pytest.raises(UsageError, match="similarity"):
        shipped.sample(3, near=PARACETAMOL, similarity=1.5)
    with pytest.raises(UsageError, match="near"):
        shipped.sample(3, near=42)
    with pytest.raises(DataError, match="near"):
        shipped.sample(3, near="C1CC")


def test_cli_sample_near(run, tmp_path):
    out = tmp_path / "analogs.csv"
    code, text = run("sample", "-n", "3", "--near", PARACETAMOL, "--similarity", "0.3", "--max-decodes", "150",
                     "--seed", "0", "--unique-valid", "-o", out, "--device", "cpu", "--precision", "fp32")
    assert code == 0, text
    df = pd.read_csv(out)
    assert len(df) >= 1 and (df["similarity"] >= 0.3).all()
    assert "near" in text and "hits in" in text
    code, text = run("sample", "--near", PARACETAMOL, "--similarity", "2")
    assert code == 2 and "similarity" in text and "Traceback" not in text
    code, text = run("sample", "--near", "C1CC", "--device", "cpu")
    assert code == 1 and "near" in text and "Traceback" not in text
