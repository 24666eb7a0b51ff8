"""The evaluation measures on inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation import measures as metrics


@pytest.fixture(scope="module")
def feats():
    rng = np.random.default_rng(0)
    return rng.normal(size=(2000, 16)) @ rng.normal(size=(16, 16))


def test_frechet_of_a_set_with_itself_is_zero_and_symmetric(feats):
    assert metrics.frechet_of(feats, feats) == pytest.approx(0.0, abs=1e-6)
    other = feats[::-1] * 1.3 + 0.5
    assert metrics.frechet_of(feats, other) == pytest.approx(metrics.frechet_of(other, feats), rel=1e-9)


def test_frechet_grows_with_noise(feats):
    rng = np.random.default_rng(1)
    values = [metrics.frechet_of(feats, feats + rng.normal(scale=s, size=feats.shape)) for s in (0.1, 0.5, 1.0, 2.0)]
    assert values == sorted(values) and values[0] > 0


def test_frechet_matches_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 9.0])
    expected = 5.0 + sum((np.sqrt(a) - np.sqrt(b)) ** 2 for a, b in [(1, 4), (4, 1), (9, 9)])
    assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected)


def test_kid_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(3000, 8)), rng.normal(size=(3000, 8))
    same, _ = metrics.kid(a, b, subsets=20, subset_size=500)
    diff, _ = metrics.kid(a, b + 1.0, subsets=20, subset_size=500)
    assert abs(same) < 0.01 and diff > 0.1


def test_kid_is_the_unbiased_mmd_with_the_cubic_kernel():
    """One subset holding every row (a permutation: MMD² does not depend on order) against the textbook sums."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(12, 3)), rng.normal(size=(12, 3)) + 0.5
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    n = len(x)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(n)) / (n * n)
    mean, std = metrics.kid(x, y, subsets=1, subset_size=n)
    assert mean == pytest.approx(xx + yy - 2 * xy, rel=1e-12) and std == 0.0


def test_prdc_identical_and_far_apart(feats):
    same = metrics.prdc(feats[:500], feats[:500], k=5)
    assert (
        same["precision"] == 1 and same["recall"] == 1 and same["coverage"] == 1 and same["density"] >= 1.0
    )  # each point also counts itself: (k + 1) / k at most
    far = metrics.prdc(feats[:500], feats[:500] + 1e4, k=5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_checkerboard_index_of_pure_checkerboard_and_smooth_blob():
    i, j = np.mgrid[0:28, 0:28]
    board = ((-1.0) ** (i + j) + 1) / 2
    assert metrics.checkerboard_index(board[None]) == pytest.approx(1.0)
    blob = np.exp(-((i - 14) ** 2 + (j - 14) ** 2) / 30.0)
    assert metrics.checkerboard_index(blob[None]) < 1e-3


def test_nearest_neighbour_upsampled_noise_has_no_nyquist_energy():
    noise = np.random.default_rng(3).random((50, 14, 14))
    up = noise.repeat(2, axis=1).repeat(2, axis=2)
    assert metrics.checkerboard_index(up) == pytest.approx(0.0, abs=1e-12)
    assert metrics.checkerboard_index(np.random.default_rng(3).random((50, 28, 28))) > 0.05


def test_period4_lines_and_radial_spectrum_sum_to_one():
    i, j = np.mgrid[0:28, 0:28]
    stripes = np.cos(2 * np.pi * j / 4)[None]
    assert metrics.period4_index(stripes) == pytest.approx(1.0)
    freqs, spectrum = metrics.radial_spectrum(np.random.default_rng(4).random((10, 28, 28)))
    assert spectrum.sum() == pytest.approx(1.0) and spectrum[0] == 0 and len(freqs) == len(spectrum)


def test_polyphase_sums_detect_uneven_kernels():
    even = np.ones((4, 4, 1, 1))
    assert metrics.polyphase_sums(even)["cv_flat_input_mean"] == pytest.approx(0.0)
    odd = np.ones((5, 5, 1, 1))  # 5×5 at stride 2: phases get 9, 6, 6, 4 taps
    result = metrics.polyphase_sums(odd)
    assert sorted(result["phase_sums_total"]) == [4, 6, 6, 9] and result["cv_flat_input_mean"] > 0.2


def test_legibility_and_coverage():
    confident = np.eye(10)[np.arange(1000) % 10]
    r = metrics.legibility(confident)
    assert (
        r["mean_top_probability"] == 1
        and r["share_confident"] == 1
        and r["class_entropy_normalised"] == pytest.approx(1.0)
        and r["smallest_class_share"] == pytest.approx(0.1)
    )
    collapsed = np.full((100, 10), 0.01)
    collapsed[:, 3] = 0.91
    r = metrics.legibility(collapsed)
    assert r["class_entropy_normalised"] == 0 and r["smallest_class_share"] == 0


# ---- the artefact score blur cannot move (spectral prominence) -----------------------------------------------------


def _digits(n=400, seed=0):
    from training.loop.data import synthetic_mnist

    return synthetic_mnist(n, 10, seed).x_train.astype(np.float64) / 255


def _blur(x, sigma):
    from scipy.ndimage import gaussian_filter

    return np.stack([gaussian_filter(i, sigma) for i in x])


CHECKER = (-1.0) ** np.add.outer(np.arange(28), np.arange(28))


def test_a_blurred_digit_without_artefact_scores_as_real():
    real = _digits()
    p_real = metrics.spectral_prominence(real, 2)
    for sigma in (0.7, 1.0, 1.5):
        blurred = metrics.spectral_prominence(_blur(real, sigma), 2)
        assert metrics.artefact_excess(blurred, p_real) < 0.05, sigma
    # the old index calls the same blur 50x less checkerboard than real digits: |ln ratio| then rewards artefacts
    assert metrics.checkerboard_index(_blur(real, 1.0)) < 0.1 * metrics.checkerboard_index(real)


def test_a_faint_checkerboard_on_a_blurred_digit_stands_out_and_the_old_index_called_it_better():
    real = _digits()
    p_real = metrics.spectral_prominence(real, 2)
    blurred = _blur(real, 1.0)
    marked = blurred + (2 / 255) * CHECKER * (blurred > 0.1)  # two grey levels on the strokes
    assert metrics.artefact_excess(metrics.spectral_prominence(marked, 2), p_real) > 0.2
    assert metrics.artefact_excess(metrics.spectral_prominence(blurred, 2), p_real) < 0.05
    # the |ln ratio| score of the old index: the checkerboarded blur looks *closer to real* than the clean blur
    old = lambda x: abs(np.log(metrics.checkerboard_index(x) / metrics.checkerboard_index(real)))
    assert old(marked) < old(blurred)


def test_contrast_scaling_changes_nothing():
    x = _blur(_digits(), 1.0) + (2 / 255) * CHECKER
    for p in (2, 4):
        assert metrics.spectral_prominence(0.3 * x, p) == pytest.approx(metrics.spectral_prominence(x, p), rel=1e-9)


def test_period_four_prominence_finds_a_period_four_pattern_and_not_a_checkerboard():
    blurred = _blur(_digits(), 1.0)
    p4 = np.cos(np.pi / 2 * np.arange(28))[None, :] * np.ones((28, 1))
    base = metrics.spectral_prominence(blurred, 4)
    assert metrics.spectral_prominence(blurred + 0.03 * p4 * (blurred > 0.1), 4) > 1.05 * base
    assert metrics.spectral_prominence(blurred + (2 / 255) * CHECKER * (blurred > 0.1), 4) == pytest.approx(
        base, rel=0.05
    )


def test_the_excess_is_one_sided():
    assert metrics.artefact_excess(0.5, 1.0) == 0.0
    assert metrics.artefact_excess(2.0, 1.0) == pytest.approx(np.log(2.0))
