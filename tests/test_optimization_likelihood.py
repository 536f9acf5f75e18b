"""The decoder's likelihood of the start molecule (molvae.optimization.likelihood) and the gradient search's
selection of which copies to decode, on the shipped default model (moses-smiles) with a few starts."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from molvae import chem
from molvae.errors import UsageError
from molvae.generation.api import MolVAE
from molvae.optimization.likelihood import StartLikelihood, nearest_to_target
from molvae.optimization.run import _starts, optimize
from molvae.optimization.settings import resolve_settings

pytestmark = pytest.mark.usefixtures("one_thread")

# different lengths in one batch: the shorter ones are padded (PAD after EOS must not count)
STARTS = ["CC(=O)Nc1ccc(O)cc1", "O=C(NCC1CCCO1)N1CC2CC3CC(C2)CC1C3", "Cc1ccc(C(=O)Nc2ccccc2)cc1"]


@pytest.fixture(scope="module")
def refined(shipped: MolVAE):
    starts = _starts(shipped, STARTS, 1, 0, 0.0)
    lk = StartLikelihood(shipped, starts.smiles)
    return lk, starts, lk.refine(starts.center, starts.sigma, 30)


def test_refine_climbs_the_likelihood_of_the_start(refined) -> None:
    lk, starts, z_star = refined
    group = np.arange(3)
    at_mean, at_star = lk.nll(starts.center, group), lk.nll(z_star, group)
    assert np.isfinite(at_mean).all() and np.isfinite(at_star).all(), (at_mean, at_star)
    # the first two are poorly reconstructed at the mean (several nats); the third already is (0.05)
    assert np.all(at_star < at_mean) and np.all(at_star[:2] < at_mean[:2] - 1.0) and np.all(at_star > 0), (
        at_mean, at_star)
    # the model's parameters are left trainable and untouched
    assert all(p.requires_grad and p.grad is None for p in lk.net.parameters())


def test_exp_minus_nll_is_the_chance_that_sampling_returns_the_start(shipped: MolVAE, refined) -> None:
    lk, starts, z_star = refined
    t = 0.7
    # the latent on the segment from the mean to z* where the start is about as likely as not (chosen by
    # the likelihood itself, no decoding), then the frequency of the start among samples there
    line = torch.linspace(0.0, 1.0, 21)[:, None]
    z_line = starts.center[:1] + line * (z_star[:1] - starts.center[:1])
    p_line = np.exp(-lk.nll(z_line, np.zeros(21, dtype=np.int64), t))
    k = int(np.argmin(np.abs(p_line - 0.5)))
    p = float(p_line[k])
    n = 400
    out = shipped.decode(z_line[k:k + 1].repeat(n, 1), method="multinomial", temperature=t, seed=3)
    freq = np.mean([chem.canonical(s) == starts.canonical[0] for s in out])
    se = np.sqrt(p * (1 - p) / n)
    assert 0.2 < p < 0.8 and abs(freq - p) < 4 * se + 0.02, (p, freq)


def test_nearest_to_target_picks_k_per_start_on_a_log_scale() -> None:
    nll = np.array([1.0, 2.0, 4.0, 8.0, 0.5, 2.2, 3.0, 50.0])
    group = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    pick = nearest_to_target(nll, group, 2, 2.0)
    assert pick.tolist() == [0, 1, 5, 6]  # nll 1 and 4 are equally far from 2 on a log scale: the earlier wins
    assert nearest_to_target(nll, group, 10, 2.0).tolist() == list(range(8))
    assert nearest_to_target(np.array([3.0, 0.0]), np.array([0, 0]), 1, 1e-9).tolist() == [1]


def test_optimize_decodes_the_copies_nearest_the_target(shipped: MolVAE) -> None:
    kw = dict(start=STARTS[:2], similarity=0.4, seed=0, n_starts=4, candidates=12, refine_steps=10, steps=2,
              decode_every=2, lr=0.2, target_nll=2.0)
    df = optimize(shipped, "plogp", **kw)
    att = df.attrs
    traj = att["run"].trajectories
    assert att["budget_per_start"] == 4 and traj.groupby("start_id").size().tolist() == [4, 4]
    assert traj["traj"].between(0, 23).all() and traj.groupby("start_id")["traj"].nunique().tolist() == [4, 4]
    assert "nearest 2 nats are decoded" in att["guidance"] and "reconstructs the start (10 steps" in att["guidance"]
    assert att["settings"]["candidates"] == 12 and att["settings"]["refine_steps"] == 10
    far = optimize(shipped, "plogp", **{**kw, "target_nll": 40.0})
    # decoding the copies nearest 40 nats (far from the start) instead changes which copies are decoded
    assert set(far.attrs["run"].trajectories["traj"]) != set(traj["traj"])


def test_candidates_need_a_target_and_belong_to_the_gradient_search(shipped: MolVAE) -> None:
    with pytest.raises(UsageError, match="at least n_starts"):
        optimize(shipped, "plogp", start=STARTS[:1], n_starts=5, candidates=4)
    with pytest.raises(UsageError, match="target_nll"):
        resolve_settings("gradient", False, {"n_starts": 2, "candidates": 4})
    # more copies decoded than the default candidates: every copy is decoded, none is left out
    assert resolve_settings("gradient", True, {"n_starts": 500}).candidates == 500
    with pytest.raises(UsageError, match="gradient search from start molecules"):
        optimize(shipped, "plogp", start=STARTS[:1], method="random", refine_steps=5)
    with pytest.raises(UsageError, match="gradient search from start molecules"):
        optimize(shipped, "logp", n_starts=2, candidates=4, target_nll=2.0)
    with pytest.raises(UsageError, match="refine_steps"):
        optimize(shipped, "plogp", start=STARTS[:1], refine_steps=-1)
    assert torch.get_num_threads() == 1


def test_cli_passes_the_selection_settings(run, tmp_path) -> None:
    import json

    out = tmp_path / "opt.csv"
    code, text = run("optimize", "--property", "plogp", "--start", STARTS[0], "--similarity", "0.4", "--device", "cpu",
                     "--n-starts", "3", "--candidates", "9", "--refine-steps", "4", "--target-nll", "3", "--steps", "1",
                     "--decode-every", "1", "-o", out)
    assert code == 0, text
    assert "budget 3 per start" in text
    record = json.loads((tmp_path / "opt.config.json").read_text())
    assert (record["settings"]["candidates"], record["settings"]["refine_steps"], record["settings"]["target_nll"]) \
        == (9, 4, 3.0)
    code, text = run("optimize", "--property", "plogp", "--start", STARTS[0], "--device", "cpu", "--n-starts", "5",
                     "--candidates", "4")
    assert code == 2 and "at least n_starts" in text
