"""The accelerator's measures (training/evaluation/measures_jax.py, float32) against the reference
(training/evaluation/measures.py, NumPy float64), on JAX's CPU here: the tolerances its docstring states. Features are
drawn from two Gaussians with different means and scales, 2,000 each, so that KID and PRDC are far from their trivial
values (PRDC in 16 dimensions, where precision, recall and coverage all lie inside (0, 1))."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require_jax
from training.evaluation import measures as metrics


@pytest.fixture(autouse=True)
def _needs_jax():
    require_jax()


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(3)
    real = rng.standard_normal((2000, 64)).astype(np.float32) * 2.0
    fake = (rng.standard_normal((2000, 64)) * 1.6 + 0.4).astype(np.float32)
    return real, fake


def test_gaussian_stats_and_frechet_match_the_reference(features):
    from training.evaluation import measures_jax as metrics_jax

    real, fake = features
    mu, cov = metrics_jax.gaussian_stats(fake)
    mu_ref, cov_ref = metrics.gaussian_stats(fake)
    np.testing.assert_allclose(mu, mu_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cov, cov_ref, rtol=1e-4, atol=1e-5)
    fd = metrics.frechet_distance(mu, cov, *metrics.gaussian_stats(real))
    ref = metrics.frechet_of(fake, real)
    assert ref > 10 and fd == pytest.approx(ref, rel=1e-5)


def test_kid_matches_the_reference_subset_by_subset(features):
    from training.evaluation import measures_jax as metrics_jax

    real, fake = features
    got = metrics_jax.kid(real, fake, subsets=20, subset_size=500, seed=4)
    ref = metrics.kid(real, fake, subsets=20, subset_size=500, seed=4)
    assert ref[0] > 0.05
    assert got[0] == pytest.approx(ref[0], abs=1e-5) and got[1] == pytest.approx(ref[1], abs=1e-5)
    other = metrics_jax.kid(real, fake, subsets=20, subset_size=500, seed=5)  # the draws follow the seed
    assert other[0] != got[0]


def test_prdc_matches_the_reference(features):
    from training.evaluation import measures_jax as metrics_jax

    rng = np.random.default_rng(3)  # 16 dimensions: precision and recall away from 0 and 1
    real = rng.standard_normal((2000, 16)).astype(np.float32)
    fake = (rng.standard_normal((2000, 16)) * 0.85 + 0.2).astype(np.float32)
    got, ref = metrics_jax.prdc(real, fake, k=5, block=700), metrics.prdc(real, fake, k=5, block=700)
    assert 0.05 < ref["precision"] < 0.99 and 0.05 < ref["recall"] < 0.95 and ref["coverage"] < 0.99, ref
    for key in ref:
        assert got[key] == pytest.approx(ref[key], abs=2e-4 * max(1, ref[key])), key


def test_eval_on_setting_is_checked(monkeypatch):
    from training.evaluation import measures_jax as metrics_jax

    monkeypatch.setenv("ARENA_EVAL_ON", "gpu")
    with pytest.raises(ValueError, match="ARENA_EVAL_ON='gpu': choose one of auto, jax, numpy"):
        metrics_jax.wanted()
    monkeypatch.setenv("ARENA_EVAL_ON", "numpy")
    assert metrics_jax.wanted() is False
    monkeypatch.setenv("ARENA_EVAL_ON", "jax")
    assert metrics_jax.wanted() is True
