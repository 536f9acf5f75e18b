"""Latent-space optimization (molvae.optimization.run, objectives, search, CLI `molvae optimize`) on
the tiny SMILES checkpoint of conftest.py (`gen_checkpoint`: logp and qed heads, latent 16)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import molvae
from molvae import chem
from molvae.errors import DataError, UsageError
from molvae.generation.api import MolVAE
from molvae.optimization.objectives import Constraints, Objective, Scorer, parse_objectives
from molvae.optimization.run import optimize

TRAIN = pd.read_csv(Path(__file__).parent / "data" / "gen_train.csv")["smiles"].tolist()


pytestmark = pytest.mark.usefixtures("one_thread")




@pytest.fixture(scope="module")
def user_vae(vae: MolVAE) -> MolVAE:
    """The same network, its logp output presented as a user's trained column 'Activity'
    (a property RDKit cannot compute)."""
    stats = {("Activity" if k == "logp" else k): v for k, v in vae.prop_stats.items()}
    return MolVAE(vae.model, vae.tokenizer, vae.vocab, prop_stats=stats, device="cpu", precision="fp32", n_jobs=1)


# ------------------------------------------------------------------ objectives


def test_parse_objectives() -> None:
    objs = parse_objectives("qed:max:1.0, sa:min:0.5,logP:target=2.5")
    assert objs == (Objective("qed", "max", 1.0), Objective("sa", "min", 0.5), Objective("logP", "target", 1.0, 2.5))
    assert parse_objectives("logp") == (Objective("logp"),)
    assert parse_objectives([Objective("qed"), "logp:min"])[1] == Objective("logp", "min")
    for bad in ("qed:up", "qed:max:heavy", "logp:target=x", "a:b:c:d", "", "qed:max:0"):
        with pytest.raises(UsageError):
            parse_objectives(bad)


def test_scorer_units_and_guide() -> None:
    stats = {"logp": (2.0, 0.5), "qed": (0.8, 0.1)}
    s = Scorer(parse_objectives("logp:max:1,qed:target=0.9:2"), stats, need_guide=True)
    score = s.score({"logp": np.array([3.0]), "qed": np.array([0.7])})
    assert score[0] == pytest.approx((3.0 - 2.0) / 0.5 - 2 * abs(0.7 - 0.9) / 0.1)
    pred_std = torch.tensor([[2.0, -1.0]])  # logp 3.0, qed 0.7 in original units
    assert float(s.guide(pred_std)[0]) == pytest.approx(score[0], rel=1e-6)


# ----------------------------------------------------------------- behaviour


def test_gradient_ascent_raises_predicted_score(vae: MolVAE) -> None:
    df = optimize(vae, "logp", n_starts=8, steps=20, decode_every=4, lr=0.05, seed=0)
    traj = df.attrs["run"].trajectories
    assert df.attrs["method"] == "gradient" and df.attrs["objectives"] == ["logp:max:1"]
    mean = traj.groupby("step")["score_pred"].mean().to_numpy()
    assert len(mean) == 6 and np.all(np.diff(mean) > 0), mean
    first, last = (traj[traj["step"] == s].sort_values("traj")["score_pred"].to_numpy() for s in (0, 20))
    assert (last > first).mean() >= 0.75
    # predicted values are the head's, in original units: logp_pred at step 0 = model.predict on z0.
    z0 = molvae.model.inference.prior(8, vae.latent_dim, 0)
    with torch.no_grad():
        head = vae.model.predict_props(z0).numpy()[:, 0] * vae.prop_stats["logp"][1] + vae.prop_stats["logp"][0]
    np.testing.assert_allclose(traj[traj["step"] == 0].sort_values("traj")["logp_pred"], head, rtol=1e-5)


def test_rdkit_values_are_rescored_not_predicted(vae: MolVAE) -> None:
    df = optimize(vae, "qed:max:1.0,logp:min:0.5", start=TRAIN[:4], n_starts=8, steps=12, decode_every=3,
                  method="random", seed=1, top_k=2)
    assert len(df) > 0 and set(df["start"]) <= set(TRAIN[:4]) and set(df["rank"]) <= {1, 2}
    after = chem.properties(df["smiles"].tolist(), ["qed", "logp"])
    np.testing.assert_allclose(df["qed_after"], after["qed"])
    np.testing.assert_allclose(df["logp_after"], after["logp"])
    before = chem.properties(df["start"].tolist(), ["qed", "logp"])
    np.testing.assert_allclose(df["qed_before"], before["qed"])
    lq, sq = vae.prop_stats["logp"], vae.prop_stats["qed"]
    expect = (after["qed"] - sq[0]) / sq[1] - 0.5 * (after["logp"] - lq[0]) / lq[1]
    np.testing.assert_allclose(df["score"], expect)
    np.testing.assert_allclose(df["similarity"], [chem.tanimoto(a, b) for a, b in zip(df["start"], df["smiles"])])
    assert (df["scored_by"] == "rdkit").all()
    assert not (df["smiles"].map(chem.canonical) == df["start"].map(chem.canonical)).any()  # never the start itself
    assert not df.duplicated(["start_id", "smiles"]).any()
    assert (df.groupby("start_id")["score"].apply(lambda s: s.is_monotonic_decreasing)).all()


@pytest.mark.parametrize("method", ["gradient", "random", "bo"])
def test_results_satisfy_every_constraint(vae: MolVAE, method: str) -> None:
    cons = Constraints(filters=True, pains=True, min_heavy_atoms=12, max_heavy_atoms=30, max_ring_size=6, max_sa=4.0)
    df = optimize(vae, "qed", start=TRAIN[:6], similarity=0.35, n_starts=2, steps=16, decode_every=4,
                  method=method, constraints=cons, seed=0, top_k=3)
    att = df.attrs
    # 2 trajectories per start, decoded at 0, 4, ..., 16 (the gradient search from molecules skips step 0)
    assert att["n_decoded"] == 6 * 2 * (4 if method == "gradient" else 5) and sum(att["rejected"].values()) > 0
    assert len(df) > 0, att["rejected"]
    for start, smi in zip(df["start"], df["smiles"]):
        mol = chem.to_mol(smi)
        assert mol is not None and chem.passes_moses_filters(mol) and not chem.pains_match(mol)
        assert chem.tanimoto(start, smi) >= 0.35
        assert 12 <= mol.GetNumHeavyAtoms() <= 30
        assert max((len(r) for r in mol.GetRingInfo().AtomRings()), default=0) <= 6
    assert (chem.properties(df["smiles"].tolist(), ["sa"])["sa"] <= 4.0).all()
    # what was rejected is counted: every decoded latent that is not ok names its reasons
    traj = att["run"].trajectories
    assert ((traj["rejected"] != "") == ~traj["ok"]).all()


def test_budget_is_respected_equally(vae: MolVAE) -> None:
    used, frames = {}, []
    for method in ("gradient", "random", "bo"):
        df = optimize(vae, "logp", n_starts=6, steps=12, decode_every=3, method=method, budget=3, seed=0)
        frames.append(df)
        att = df.attrs
        assert att["n_decoded"] == len(att["run"].trajectories) == 6 * 3 and att["budget_per_start"] == 3
        assert att["run"].starts["n_decoded"].sum() == att["n_decoded"]
        assert (df["n_decoded"] <= 3).all()
        used[method] = att["n_decoded"]
        free = optimize(vae, "logp", n_starts=4, steps=6, decode_every=2, method=method, seed=0)
        assert free.attrs["n_decoded"] == 4 * 4  # trajectories x decode steps (0, 2, 4, 6)
    assert len(set(used.values())) == 1, used
    both = pd.concat(frames, ignore_index=True)  # results of several runs combine (attrs hold no DataFrame)
    assert set(both["method"]) <= {"gradient", "random", "bo"} and len(both) == sum(map(len, frames))
    assert frames[0].sort_values("score").attrs["run"] is frames[0].attrs["run"]  # shared, not copied


def test_user_column_is_scored_by_the_head_on_the_reencoded_molecule(user_vae: MolVAE) -> None:
    df = optimize(user_vae, "activity", n_starts=6, steps=8, decode_every=4, method="gradient", seed=0)
    assert len(df) > 0 and "Activity_after" in df  # the column keeps its training spelling
    assert df["scored_by"].iloc[0] == "head on re-encoded molecule: Activity"
    pred = user_vae.predict(df["smiles"].tolist())
    np.testing.assert_allclose(df["Activity_after"], pred["Activity"], rtol=1e-4, atol=1e-5)


def test_plogp_guided_from_heads_or_rdkit_only(vae: MolVAE) -> None:
    # The fixture has no SA head: gradient cannot guide plogp, random/bo score it with RDKit.
    with pytest.raises(UsageError, match="logp, qed.*random"):
        optimize(vae, "plogp", n_starts=2, steps=2)
    df = optimize(vae, "plogp_raw", n_starts=4, steps=4, decode_every=2, method="random")
    np.testing.assert_allclose(df["plogp_raw_after"], chem.properties(df["smiles"].tolist(), ["plogp_raw"])["plogp_raw"])
    assert df["plogp_raw_pred"].isna().all()


def test_usage_errors(vae: MolVAE) -> None:
    with pytest.raises(UsageError) as err:
        optimize(vae, "pIC50", n_starts=2, steps=2)
    assert "predicts logp, qed" in str(err.value)
    with pytest.raises(UsageError, match="similarity"):
        optimize(vae, "logp", start="CCO", similarity=1.5)
    with pytest.raises(UsageError, match="needs start"):
        optimize(vae, "logp", similarity=0.4)
    with pytest.raises(UsageError, match="method"):
        optimize(vae, "logp", method="annealing")
    for kw in ({"n_starts": 0}, {"steps": -1}, {"lr": 0}, {"budget": 0}, {"trust_radius": -1.0}):
        with pytest.raises(UsageError):
            optimize(vae, "logp", **kw)
    with pytest.raises(DataError, match="C1CC"):
        optimize(vae, "logp", start="C1CC")


def test_plot_trajectories(vae: MolVAE, tmp_path: Path) -> None:
    import molvae.optimization.run as module  # binds molvae.optimization.run to the module: it must stay callable
    from molvae.plotting.trajectories import plot_trajectories, trajectory_summary

    assert module is molvae.optimization.run
    # steps of 0.1 (the default 0.5 leaves the tiny 16-dim model's decodable region within two steps)
    df = molvae.optimize(vae, "logp", n_starts=4, steps=6, decode_every=2, lr=0.1)
    summary = trajectory_summary(df)
    assert summary["step"].tolist() == [0, 2, 4, 6] and summary["best_rdkit"].is_monotonic_increasing
    plot_trajectories(df, tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"


# ----------------------------------------------------------------------- CLI




def test_cli_optimize_table_file_and_plot(run, gen_checkpoint: Path, tmp_path: Path) -> None:
    code, out = run("optimize", "--property", "logP", "--model", gen_checkpoint, "--start", TRAIN[1], "--n-starts",
                    "4", "--steps", "6", "--decode-every", "3", "--device", "cpu", "--plot", tmp_path / "p.png")
    assert code == 0, out
    assert "logp before" in out and "logp after" in out and "similarity" in out and "Traceback" not in out
    assert "8 molecules decoded (budget 8 per start" in out  # 4 trajectories decoded at steps 3 and 6 and (tmp_path / "p.png").is_file()
    assert TRAIN[1] in out.replace("\n", "").replace("│", "").replace(" ", "")
    code, out = run("optimize", "-p", "QED", "--target", "0.9", "-m", gen_checkpoint, "--start", TRAIN[0],
                    "--similarity", "0.2", "--method", "random", "--steps", "4", "--decode-every", "2",
                    "--n-starts", "3", "--filters", "--device", "cpu", "-o", tmp_path / "r.csv")
    assert code == 0, out
    res = pd.read_csv(tmp_path / "r.csv")
    assert {"start", "smiles", "qed_before", "qed_after", "qed_pred", "similarity", "step"} <= set(res.columns)
    assert (res["similarity"] >= 0.2).all()
    record = json.loads((tmp_path / "r.config.json").read_text())
    assert record["command"] == "molvae optimize" and record["settings"]["method"] == "random"
    assert record["settings"]["similarity"] == 0.2 and record["settings"]["filters"] is True
    assert record["rows"] == len(res) and record["model"]["path"] == str(gen_checkpoint)


def test_cli_optimize_errors(run, gen_checkpoint: Path) -> None:
    base = ["optimize", "--model", gen_checkpoint, "--device", "cpu", "--steps", "2"]
    code, out = run(*base, "-p", "logp", "--similarity", "1.5", "--start", "CCO")
    assert code == 2 and "similarity" in out and "Traceback" not in out
    code, out = run(*base, "-p", "pIC50")
    assert code == 2 and "logp, qed" in out and "Traceback" not in out
    code, out = run(*base, "-p", "logp", "--start", "C1CC")
    assert code == 1 and "C1CC" in out and "unclosed ring" in out.lower() and "Traceback" not in out
    code, out = run(*base, "-p", "logp", "--start", "C[Xe]")
    assert code == 1 and "'[Xe]'" in out and "vocabulary" in out and "Traceback" not in out
    code, out = run(*base)
    assert code == 2 and "--property" in out
    code, out = run(*base, "-p", "logp", "--minimize", "--target", "1")
    assert code == 2 and "Traceback" not in out


def test_one_temperature_contract() -> None:
    from molvae.optimization.settings import decoding, likelihood_temperature, resolve_settings

    assert decoding(0.0) == {"method": "greedy"}
    assert decoding(0.5) == {"method": "multinomial", "temperature": 0.5}
    assert likelihood_temperature(0.0) == 1.0 and likelihood_temperature(0.5) == 0.5
    assert resolve_settings("random", False, {"temperature": 0}).temperature == 0.0
    with pytest.raises(UsageError, match="temperature"):
        resolve_settings("random", False, {"temperature": -1})


def test_greedy_runs_are_deterministic_and_sampling_is_seeded(vae: MolVAE) -> None:
    kw = dict(method="random", n_starts=3, steps=2, decode_every=1, seed=3)
    greedy = [optimize(vae, "logp", temperature=0, **kw).attrs["run"].trajectories["smiles"].tolist()
              for _ in range(2)]
    assert greedy[0] == greedy[1]
    sampled = [optimize(vae, "logp", temperature=1.0, **kw) for _ in range(2)]
    assert sampled[0].attrs["run"].trajectories["smiles"].tolist() == \
        sampled[1].attrs["run"].trajectories["smiles"].tolist()
    assert "sampling at temperature 1" in sampled[0].attrs["guidance"]
    assert "decoded greedily" in optimize(vae, "logp", temperature=0, **kw).attrs["guidance"]


def test_arguments_are_checked_once_in_optimize(vae: MolVAE) -> None:
    with pytest.raises(UsageError, match="n_jobs"):
        optimize(vae, "logp", n_jobs="all")
    with pytest.raises(UsageError, match="top_k"):
        optimize(vae, "logp", top_k=0)
    with pytest.raises(DataError, match="longer than the model's"):  # the length rule of every command
        optimize(vae, "logp", start="C" * 300, method="random")


def test_cli_builds_the_objectives_and_shares_the_common_options(run) -> None:
    from molvae.cli.optimize import _objectives

    assert _objectives("logP", None, False, None) == (Objective("logP", "max"),)
    assert _objectives("qed", None, True, None) == (Objective("qed", "min"),)
    assert _objectives("qed", None, False, 0.9) == (Objective("qed", "target", target=0.9),)
    assert _objectives(None, "qed:max:1.0,sa:min:0.5", False, None) == parse_objectives("qed:max:1.0,sa:min:0.5")
    with pytest.raises(UsageError, match="finite target"):
        _objectives("qed", None, False, float("inf"))
    code, out = run("optimize", "--help")
    assert code == 0
    for option in ("--model", "--device", "--precision", "--n-jobs", "--output"):
        assert option in out
