"""The density-aware gradient search (molvae.optimization.gradient, .settings) and per-start budgets, on
the shipped default model (moses-smiles, latent 64, a 20,000-component posterior-mixture density) with
three start molecules and few steps."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from molvae import chem
from molvae.errors import UsageError
from molvae.generation.api import MolVAE
from molvae.optimization.gradient import gradient_search, log_density_fn
from molvae.optimization.objectives import Constraints, Scorer, parse_objectives
from molvae.optimization.run import _starts, optimize
from molvae.optimization.search import Batch, Evaluator

pytestmark = pytest.mark.usefixtures("one_thread")

STARTS = ["CC(=O)Nc1ccc(O)cc1", "O=C(NCC1CCCO1)N1CC2CC3CC(C2)CC1C3", "Cc1ccc(C(=O)Nc2ccccc2)cc1"]


@pytest.fixture(scope="module")
def default_run(shipped: MolVAE):
    return optimize(shipped, "plogp", start=STARTS, similarity=0.4, seed=0, top_k=3)


def test_each_start_gets_its_own_budget(shipped: MolVAE, default_run) -> None:
    att = default_run.attrs
    assert att["budget_per_start"] == 20 and att["budget"] == 60 and att["n_decoded"] == 60
    assert att["settings"]["n_starts"] == 20 and att["settings"]["temperature"] == 0.5
    assert (att["settings"]["candidates"], att["settings"]["refine_steps"]) == (200, 100)
    starts = att["run"].starts
    assert starts["n_decoded"].tolist() == [20, 20, 20]
    traj = att["run"].trajectories
    assert (traj["step"] == 1).all()  # 20 of the 200 copies per start, decoded once after their one step
    assert traj.groupby("start_id")["traj"].nunique().tolist() == [20, 20, 20]
    for method in ("random", "bo"):  # the baselines spend the same 20 per start by default
        df = optimize(shipped, "plogp", start=STARTS[:2], similarity=0.4, method=method, seed=0, budget=6)
        assert df.attrs["run"].starts["n_decoded"].tolist() == [6, 6] and df.attrs["budget_per_start"] == 6
    capped = optimize(shipped, "plogp", start=STARTS, n_starts=4, steps=4, decode_every=2, budget=5, seed=0)
    # 4 trajectories x decode steps 2 and 4 = 8 per start, cut to 5 each; no start borrows another's
    assert capped.attrs["run"].starts["n_decoded"].tolist() == [5, 5, 5]


def test_results_respect_the_similarity_floor_and_are_rdkit_values(default_run) -> None:
    df = default_run
    assert len(df) > 0 and set(df["start"]) <= set(STARTS)
    sims = [chem.tanimoto(a, b) for a, b in zip(df["start"], df["smiles"])]
    np.testing.assert_allclose(df["similarity"], sims)
    assert (df["similarity"] >= 0.4).all()
    np.testing.assert_allclose(df["plogp_after"], chem.properties(df["smiles"].tolist(), ["plogp"])["plogp"])
    assert not (df["smiles"] == df["start"].map(chem.canonical)).any()
    assert "the 20 whose -log p(start | z) is nearest 2 nats are decoded" in df.attrs["guidance"]


def test_local_density_matches_the_full_mixture_near_the_start(shipped: MolVAE) -> None:
    starts = _starts(shipped, STARTS, 4, 0, 0.5)  # copies at 0.5 posterior std per dimension (4 in norm)
    z = starts.z0[[i for i in range(12) if i % 4]]  # 3 copies per start, away from the mean
    local = log_density_fn(shipped, starts.center[::4], per_start=3)(z)
    full = shipped.density.log_prob(z.double()).float()
    # the 256 components most responsible at the start carry the mixture around it (the rest add < 0.5 nats)
    assert torch.all(local <= full + 1e-3) and torch.all(full - local < 0.5), (full - local)
    assert not torch.allclose(local, local[0])


class _Recorder(Evaluator):
    """An evaluator that keeps the latents it is asked to decode."""

    def evaluate(self, traj, z, step) -> Batch:
        self.latents = z.detach().clone()
        return super().evaluate(traj, z, step)


def _final_latents(vae: MolVAE, density_weight: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    starts = _starts(vae, STARTS, 6, seed, 0.5)
    scorer = Scorer(parse_objectives("plogp"), vae.prop_stats, need_guide=True)
    ev = _Recorder(vae, scorer, Constraints(), starts, None, 6, temperature=0.0)  # 0: greedy (settings.decoding)
    gradient_search(ev, 8, 8, 0.5, density_weight, None, 0.0, seed, per_start=6)
    return ev.latents, starts.center


def test_density_term_keeps_latents_where_the_decoder_was_trained(shipped: MolVAE) -> None:
    free, center = _final_latents(shipped, 0.0)
    held, _ = _final_latents(shipped, 20.0)
    dist = ((free - center) / _starts(shipped, STARTS, 6, 0, 0.5).sigma).norm(dim=1)
    first = dist[[0, 6, 12]]  # the copies that begin at the mean: 8 normalized steps of 0.5 posterior stds
    assert torch.all(first <= 4.0 + 1e-4) and torch.all(first > 3.5), first
    lq_free, lq_held = shipped.log_density(free), shipped.log_density(held)
    assert lq_held.mean() > lq_free.mean() + 5.0, (lq_held.mean(), lq_free.mean())


def test_trust_radius_bounds_every_latent(shipped: MolVAE) -> None:
    starts = _starts(shipped, STARTS, 4, 0, 0.5)
    scorer = Scorer(parse_objectives("plogp"), shipped.prop_stats, need_guide=True)
    ev = _Recorder(shipped, scorer, Constraints(), starts, None, 4, temperature=0.0)  # 0: greedy (settings.decoding)
    gradient_search(ev, 6, 6, 1.0, 0.0, 1.5, 0.5, 0, per_start=4)
    dist = ((ev.latents - starts.center) / starts.sigma).norm(dim=1)
    assert torch.all(dist <= 1.5 + 1e-4) and dist.max() > 1.4


def test_same_seed_same_run_other_seed_other_run(shipped: MolVAE, default_run) -> None:
    again = optimize(shipped, "plogp", start=STARTS, similarity=0.4, seed=0, top_k=3)
    a, b = default_run.attrs["run"].trajectories, again.attrs["run"].trajectories
    assert a["smiles"].tolist() == b["smiles"].tolist()
    assert default_run[["smiles", "score"]].equals(again[["smiles", "score"]])
    other = optimize(shipped, "plogp", start=STARTS, similarity=0.4, seed=1, top_k=3)
    assert other.attrs["run"].trajectories["smiles"].tolist() != a["smiles"].tolist()


def test_bad_settings_are_usage_errors(shipped: MolVAE) -> None:
    for kw, word in (({"temperature": -1.0}, "temperature"), ({"temperature": 11.0}, "temperature"),
                     ({"noise": -0.1}, "noise"), ({"spread": -1.0}, "spread"), ({"density_weight": -1}, "density"),
                     ({"lr": 0.0}, "lr"), ({"n_starts": 0}, "n_starts"), ({"budget": 0}, "budget"),
                     ({"trust_radius": 0.0}, "trust_radius"), ({"noise": float("nan")}, "noise")):
        with pytest.raises(UsageError, match=word):
            optimize(shipped, "plogp", start=STARTS[:1], **kw)


def test_cli_says_the_budget_per_start(run, tmp_path) -> None:
    path = tmp_path / "starts.smi"
    path.write_text("\n".join(STARTS[:2]) + "\n")
    code, out = run("optimize", "--property", "plogp", "--start", path, "--similarity", "0.4", "--device", "cpu",
                    "--n-starts", "3")
    assert code == 0, out
    assert "6 molecules decoded (budget 3 per start, 6 in all)" in out and "Traceback" not in out
    code, out = run("optimize", "--property", "plogp", "--start", path, "--temperature", "-1", "--device", "cpu")
    assert code == 2 and "temperature" in out and "Traceback" not in out
