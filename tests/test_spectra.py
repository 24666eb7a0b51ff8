"""The spectral pictures: known answers for arena/spectra.py and for what the service draws of them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.views import spectrum_pictures as views
from arena import spectra
from tests.onnx_generators import checkerboard
from tests.test_pages import layer_values


def smooth_digits(n: int = 40, seed: int = 0) -> np.ndarray:
    """Blurred blobs: a spectrum that falls off smoothly from DC, as digits' does."""
    rng = np.random.default_rng(seed)
    i, j = np.indices((28, 28))
    out = np.zeros((n, 28, 28))
    for k in range(n):
        cy, cx = rng.uniform(9, 19, 2)
        out[k] = np.exp(-((i - cy) ** 2 + (j - cx) ** 2) / (2 * rng.uniform(2, 4) ** 2))
    return out


def peak_beyond(s: np.ndarray, cycles: float = 0.25) -> tuple[int, int]:
    """Where a centred spectrum is highest beyond `cycles` per pixel from DC (the digits' own power is near DC)."""
    far = np.where(spectra.radii(s.shape[0]) >= cycles, s, -np.inf)
    return tuple(int(i) for i in np.unravel_index(np.argmax(far), s.shape))


def test_a_planted_checkerboard_peaks_at_the_nyquist_corner_in_2d_and_in_the_profile():
    clean = spectra.mean_spectrum(smooth_digits())
    planted = spectra.mean_spectrum(smooth_digits() + 0.05 * checkerboard())
    n = clean.shape[0]
    assert n == 24 and np.isclose(clean.sum(), 1.0) and np.isclose(planted.sum(), 1.0)
    # centred: DC at [N/2, N/2]; (−1)^(i+j) is frequency (N/2, N/2), which fftshift puts at [0, 0]
    assert clean[n // 2, n // 2] == 0.0
    assert peak_beyond(planted) == (0, 0) and peak_beyond(clean) != (0, 0)
    assert planted[0, 0] > 1000 * clean[0, 0]
    radius, clean_ring = spectra.azimuthal_average(clean)
    _, planted_ring = spectra.azimuthal_average(planted)
    corner = np.argmin(np.abs(radius - np.hypot(0.5, 0.5)))
    assert np.isclose(radius[corner], 17 / 24)  # the ring of (12, 12): round(12·√2) = 17 bins out
    assert planted_ring[corner] > 100 * clean_ring[corner]
    assert planted_ring[corner] > planted_ring[corner - 1]  # a peak, against the smooth fall of the clean profile
    assert np.all(np.diff(clean_ring[:6]) < 0)  # the blobs fall smoothly from DC


def test_stripes_peak_in_the_middle_of_an_edge_at_exactly_nyquist():
    stripes = np.where(np.arange(28) % 2 == 0, 1.0, -1.0)[:, None] * np.ones((1, 28))
    s = spectra.mean_spectrum(smooth_digits() + 0.05 * stripes)
    n = s.shape[0]
    assert peak_beyond(s) == (0, n // 2)  # N/2 along the rows, 0 along the columns
    radius, ring = spectra.azimuthal_average(s)
    assert radius[np.argmax(ring[8:]) + 8] == 0.5


def test_contrast_changes_nothing_and_blank_images_are_left_out():
    digits = smooth_digits()
    np.testing.assert_allclose(spectra.mean_spectrum(digits), spectra.mean_spectrum(3.0 * digits + 0.2))
    with_blank = np.concatenate([digits, np.full((5, 28, 28), 0.5)])
    np.testing.assert_allclose(spectra.mean_spectrum(with_blank), spectra.mean_spectrum(digits))
    with pytest.raises(ValueError, match="blank"):
        spectra.mean_spectrum(np.zeros((3, 28, 28)))
    assert np.isnan(spectra.log_spectrum(spectra.mean_spectrum(digits))[12, 12])


def section(images: np.ndarray, real: np.ndarray) -> dict:
    """A metrics.json spectrum section as evaluation writes it, without the evaluator
    (training/evaluation/evaluate.py)."""
    from training.evaluation.evaluate import spectrum_section

    return spectrum_section(images, {"mean_spectrum": spectra.mean_spectrum(real)})


def decoded(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_the_drawn_heat_map_is_hottest_at_the_planted_corner_and_grey_at_dc():
    real = smooth_digits(seed=1)
    planted = section(smooth_digits() + 0.3 * checkerboard(), real)
    clean = section(smooth_digits(), real)
    scale = views.colour_scale([planted, clean])
    image = decoded(views.spectrum_png(views.picture(planted, "model"), scale))
    zoom = views.ZOOM
    assert image.shape == (24 * zoom, 24 * zoom, 3)
    assert tuple(image[0, 0]) == views.VIRIDIS[-1]  # the top of the one scale: the planted peak
    assert tuple(image[12 * zoom, 12 * zoom]) == views.DC_GREY
    clean_image = decoded(views.spectrum_png(views.picture(clean, "model"), scale))
    assert tuple(clean_image[0, 0]) != views.VIRIDIS[-1]
    difference = views.picture(planted, "difference")
    reach = views.colour_scale([planted, clean], "difference")
    assert reach[0] == -reach[1] and np.nanargmax(difference) == 0  # the corner stands out most against real digits
    assert tuple(decoded(views.spectrum_png(difference, reach, "difference"))[0, 0]) == views.DIVERGING[-1]


def test_the_profile_chart_draws_every_model_and_real_digits_with_nyquist_marked():
    real = smooth_digits(seed=1)
    chart = views.profile_chart({"a": section(smooth_digits(), real), "b": section(smooth_digits(seed=2), real)}, "GAN")
    assert {r[0] for r in chart.rows} == {"a", "b", "real digits"}
    layers = chart.spec["layer"]
    assert layers[0]["encoding"]["y"]["scale"]["type"] == "log"
    assert layer_values(chart.spec, 1) == [{"Nyquist": 0.5}]
    assert views.profile_chart({"a": None}, "GAN") is None
