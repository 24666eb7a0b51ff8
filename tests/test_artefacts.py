"""The artefact measure of what a person sees (arena/artefacts.py), against known answers: a pattern the 8-bit image
barely shows scores next to nothing, and stronger checkerboards score strictly more, on sharp digits and on digits
blurred with σ 1 and 2 — the old index read blurred digits backwards and saturated on sharp ones."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from arena.artefacts import (
    artefact_picture,
    artefact_scores,
    as_8bit,
    periodic_amplitude,
    periodic_map,
    relative_amplitude,
)

CHECKER = np.indices((28, 28)).sum(0) % 2 * 2 - 1  # +1 / −1, locked to the 2×2 grid
MODULATIONS = (0.02, 0.05, 0.10, 0.25, 0.50, 1.00)


def digits(x_uint8: np.ndarray, sigma: float) -> np.ndarray:
    """Digits in [0, 1], blurred with σ (0: as they are) and brought back to a peak of 1, as a blurry generator
    draws full-contrast strokes."""
    x = x_uint8.astype(np.float64) / 255
    if sigma:
        x = np.stack([gaussian_filter(im, sigma) for im in x])
    return x / np.maximum(x.max(axis=(1, 2), keepdims=True), 1e-9)


def amplitude(images: np.ndarray, kind: str = "amplitude_grey_levels") -> float:
    return artefact_scores(images)[kind]


KINDS = ("amplitude_grey_levels", "phase_locked_grey_levels")  # per image (edges included), and shared by the set


def test_a_pure_checkerboard_scores_its_amplitude_and_a_flat_image_zero():
    flat = np.full((1, 28, 28), 100.0)
    assert periodic_amplitude(flat)[0] == 0 and relative_amplitude(flat)[0] == 0
    board = 100.0 + 10.0 * CHECKER[None]
    assert periodic_amplitude(board)[0] == pytest.approx(10.0)
    rows = 100.0 + 6.0 * (np.indices((28, 28))[0] % 2 * 2 - 1)[None]
    assert periodic_amplitude(rows)[0] == pytest.approx(6.0)
    # the map says where: a checkerboard in the top-left quarter only lights the top-left blocks
    half = np.full((28, 28), 100.0)
    half[:14, :14] += 10.0 * CHECKER[:14, :14]
    m = periodic_map(half)[..., 0]
    assert np.abs(m[:7, :7]).min() == pytest.approx(10.0) and np.abs(m[7:, 7:]).max() == 0


def test_the_measure_is_taken_on_the_8_bit_image():
    """A checkerboard of 0.4 grey levels on a flat grey disappears when the image is rounded to 8 bits."""
    faint = (100.0 + 0.4 * CHECKER[None]) / 255
    assert as_8bit(faint).max() == as_8bit(faint).min() == 100 and amplitude(faint) == 0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sigma", [0, 1, 2])
def test_known_answers_on_sharp_and_blurred_digits(tiny_data, sigma, kind):
    """On synthetic digits (the real ones in the next test): a pattern under one grey level (0.9 at full ink, on the
    strokes) adds under 0.25 to the digits' own amplitude; modulations of 2-100 % score in strictly increasing order
    whether the digits are sharp or blurred."""
    base = digits(tiny_data.x_test, sigma)
    own = amplitude(base, kind)
    faint = np.clip(base + 0.9 / 255 * CHECKER * (base > 0.2), 0, 1)
    assert amplitude(faint, kind) - own < 0.25
    scores = [amplitude(np.clip(base * (1 + m * CHECKER), 0, 1), kind) for m in MODULATIONS]
    assert own < scores[0] and all(a < b for a, b in zip(scores, scores[1:])), scores


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sigma", [0, 1, 2])
def test_known_answers_on_real_digits(real_mnist, sigma, kind):
    base = digits(real_mnist.x_test[:2000], sigma)
    own = amplitude(base, kind)
    for faint in (
        np.clip(base + 0.9 / 255 * CHECKER * (base > 0.2), 0, 1),  # 0.9 grey levels on the strokes
        np.clip(base * (1 + 0.9 / 255 * CHECKER), 0, 1),  # 0.9 grey levels at full ink, less on fainter ink
    ):
        assert amplitude(faint, kind) - own < 0.25
    scores = [amplitude(np.clip(base * (1 + m * CHECKER), 0, 1), kind) for m in MODULATIONS]
    assert own < scores[0] and all(a < b for a, b in zip(scores, scores[1:])), scores
    # no saturation: doubling the modulation from 50 % to 100 % still adds more than half again
    assert scores[-1] > 1.5 * scores[-2]


def test_the_edges_of_real_digits_cancel_in_the_phase_locked_amplitude(real_mnist):
    """Per image, sharp strokes carry period-2 content of their own (about 0.9 grey levels); over 2,000 images the
    phase-locked amplitude of the same digits is under 0.05: what stays is a pattern locked to the grid."""
    base = digits(real_mnist.x_test[:2000], 0)
    assert amplitude(base) > 0.5 and amplitude(base, "phase_locked_grey_levels") < 0.05


def test_the_artefact_view_tints_a_checkerboard_evenly_and_leaves_a_flat_image_mid_grey():
    flat = np.full((1, 28, 28), 0.4)
    assert np.all(artefact_picture(flat) == 0.5)
    board = np.clip(0.4 - 8 / 255 * CHECKER[None], 0, 1)  # ±8 grey levels, + at (0, 0): half of full scale
    picture = artefact_picture(board)
    assert np.allclose(picture, 0.75, atol=0.02)  # one even tint, the same sign everywhere
    assert np.allclose(artefact_picture(np.clip(0.4 + 8 / 255 * CHECKER[None], 0, 1)), 0.25, atol=0.02)
