"""The learned latent density (molvae.model.density): mixture fitting, exact log-density, sampling,
storage as plain arrays."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from molvae.errors import CheckpointError
from molvae.model.density import DENSITY_FILE, LatentDensity, fit_mixture, select_mixture


def _two_clusters(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal([4.0, 0.0, 0.0], [0.5, 1.0, 0.2], size=(n // 2, 3))
    b = rng.normal([-4.0, 1.0, 0.0], [1.0, 0.3, 0.2], size=(n - n // 2, 3))
    return np.concatenate([a, b])


def test_log_prob_matches_scikit_learn_and_a_single_gaussian() -> None:
    from sklearn.mixture import GaussianMixture

    z = _two_clusters(2000, 0)
    density = fit_mixture(z, 2, seed=0)
    gm = GaussianMixture(2, covariance_type="full", reg_covar=1e-4, max_iter=200, random_state=0).fit(z)
    np.testing.assert_allclose(density.log_prob(torch.from_numpy(z)).numpy(), gm.score_samples(z), rtol=1e-6)
    # one component with identity covariance is N(0, I)
    single = LatentDensity(torch.ones(1, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64),
                           torch.eye(3, dtype=torch.float64)[None])
    x = torch.randn(5, 3, dtype=torch.float64)
    expected = -0.5 * (x * x).sum(1) - 1.5 * math.log(2 * math.pi)
    torch.testing.assert_close(single.log_prob(x), expected)


def test_samples_follow_the_mixture_and_a_seed_fixes_them() -> None:
    density = fit_mixture(_two_clusters(4000, 1), 2, seed=0)
    a = density.sample(4000, torch.Generator().manual_seed(3))
    b = density.sample(4000, torch.Generator().manual_seed(3))
    assert a.dtype == torch.float32 and a.shape == (4000, 3)
    torch.testing.assert_close(a, b)
    share_right = float((a[:, 0] > 0).double().mean())
    assert 0.45 < share_right < 0.55  # the two clusters have equal weight
    # draws score far higher under the density than points between the clusters
    assert float(density.log_prob(a.double()).mean()) > float(density.log_prob(torch.zeros(10, 3).double()).mean()) + 3


def test_log_prob_is_differentiable_and_points_uphill() -> None:
    density = fit_mixture(_two_clusters(1000, 2), 2, seed=0)
    z = torch.tensor([[3.0, 0.5, 0.1]], dtype=torch.float64, requires_grad=True)
    density.log_prob(z).sum().backward()
    assert z.grad is not None and z.grad[0, 0] > 0  # toward the cluster centre at x = 4


def test_selection_prefers_the_true_component_count() -> None:
    z = _two_clusters(3000, 4)
    density, rows = select_mixture(z[:2500], z[2500:], [1, 2], seed=0)
    assert [r["n_components"] for r in rows] == [1, 2]
    assert density.n_components == 2 and rows[1]["heldout_loglik"] > rows[0]["heldout_loglik"]
    assert density.info["heldout_loglik"] == pytest.approx(rows[1]["heldout_loglik"])


def test_save_and_load_round_trip_without_pickles(tmp_path) -> None:
    density = fit_mixture(_two_clusters(500, 5), 2, seed=0)
    density.save(tmp_path)
    assert LatentDensity.load(tmp_path / "missing") is None
    loaded = LatentDensity.load(tmp_path)
    x = torch.randn(7, 3, dtype=torch.float64)
    torch.testing.assert_close(loaded.log_prob(x), density.log_prob(x), rtol=1e-5, atol=1e-5)  # float32 storage
    info = json.loads((tmp_path / "density.json").read_text())
    assert info["kind"] == "gaussian-mixture" and info["n_components"] == 2 and info["dim"] == 3
    (tmp_path / DENSITY_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="unreadable latent density"):
        LatentDensity.load(tmp_path)


def test_posterior_mixture_is_the_average_of_its_posteriors(tmp_path) -> None:
    from molvae.model.density import posterior_mixture

    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(size=(5, 3)), rng.normal(-1.0, 0.3, size=(5, 3))
    density = posterior_mixture(mu, logvar)
    assert density.kind == "posterior-mixture" and density.n_components == 5
    x = rng.normal(size=(4, 3))
    sd = np.exp(0.5 * logvar)
    comp = (-0.5 * (((x[:, None, :] - mu[None]) / sd[None]) ** 2).sum(-1) - np.log(sd).sum(-1)[None]
            - 1.5 * math.log(2 * math.pi))
    expected = np.log(np.exp(comp).mean(1))
    np.testing.assert_allclose(density.log_prob(torch.from_numpy(x)).numpy(), expected, rtol=1e-9)
    draws = density.sample(20000, torch.Generator().manual_seed(0)).double().numpy()
    np.testing.assert_allclose(draws.mean(0), mu.mean(0), atol=0.05)
    density.save(tmp_path)
    loaded = LatentDensity.load(tmp_path)
    assert loaded.kind == "posterior-mixture"
    np.testing.assert_allclose(loaded.log_prob(torch.from_numpy(x)).numpy(), expected, rtol=2e-3)


def test_components_are_resampled_systematically_without_repeats_beyond_their_share() -> None:
    k = 1000
    weights = torch.full((k,), 1.0 / k, dtype=torch.float64)
    weights[:10] *= 5.0  # ten components of 5x the weight
    weights /= weights.sum()
    density = LatentDensity(weights, torch.arange(k, dtype=torch.float64)[:, None].repeat(1, 2),
                            scales=torch.full((k, 2), 1e-6, dtype=torch.float64))
    z = density.sample(2 * k, torch.Generator().manual_seed(0))
    counts = torch.bincount(z[:, 0].round().long(), minlength=k).double()
    expected = 2 * k * weights
    assert bool(((counts - expected).abs() < 1.0 + 1e-9).all())  # floor or ceil of n w_k, never more
    uniform = LatentDensity(torch.full((k,), 1.0 / k, dtype=torch.float64), density.means, scales=density.scales)
    half = uniform.sample(k // 2, torch.Generator().manual_seed(1))[:, 0].round().long()
    assert len(set(half.tolist())) == k // 2  # fewer draws than components: no component twice
    assert 400 < float(half.double().mean()) < 600  # spread over all components, not the first ones
