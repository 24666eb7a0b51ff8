"""The artefact measure of what a person sees: the stride-periodic component of the 8-bit images the service renders.

An upsampling layer of stride 2 that overlaps unevenly (a transposed convolution whose kernel the stride does not
divide) leaves a pattern locked to the 2×2 grid of its output: a checkerboard, or stripes along rows or columns.
The period-2 component of an image is its projection on the three non-constant 2×2 patterns

    checkerboard (−1)^(i+j),   row stripes (−1)^i,   column stripes (−1)^j,

each coefficient the image's mean against that pattern, in grey levels (0–255). Its **amplitude** is the root of the
sum of their squares: a pure checkerboard ±a over the whole image scores a; one on the strokes alone scores a times
the share of the image the strokes cover, which is what the eye integrates over a grid cell. It is measured on the
image after it is rounded to 8 bits (what the service serves and a person sees), so a pattern the 8-bit image
cannot show does not count; and it is unclamped (no max(0, ·) against real digits): real digits score their own
amplitude beside it. The **relative** form divides by the image's own contrast (its standard deviation in grey
levels), so a faint pattern on faint digits counts like a strong one on strong digits.

The same 2×2 decomposition, kept per 2×2 block instead of averaged, is the artefact *map*: where in the image the
checkerboard lives (the pages' artefact view). One home for both: the evaluation, the model pages and the tests.
"""

from __future__ import annotations

import numpy as np

from arena.images import to_uint8

STRIDE = 2  # every upsampling layer of the variant table doubles the resolution


def as_8bit(images: np.ndarray) -> np.ndarray:
    """Images in [0, 1] (…, H, W) as the service renders them (arena/images.py `to_uint8`), as floats."""
    return to_uint8(np.asarray(images)).astype(np.float64)


def _blocks(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four phases of each 2×2 block of (…, H, W) grey images (H and W cut to even)."""
    h, w = grey.shape[-2] // STRIDE * STRIDE, grey.shape[-1] // STRIDE * STRIDE
    g = grey[..., :h, :w]
    return g[..., 0::2, 0::2], g[..., 0::2, 1::2], g[..., 1::2, 0::2], g[..., 1::2, 1::2]


def periodic_map(grey: np.ndarray) -> np.ndarray:
    """(…, H/2, W/2, 3): per 2×2 block, its checkerboard, row-stripe and column-stripe coefficients in grey levels;
    their mean over the blocks is the image's period-2 component."""
    a, b, c, d = _blocks(grey)
    checker = (a - b - c + d) / 4
    rows = (a + b - c - d) / 4
    cols = (a - b + c - d) / 4
    return np.stack([checker, rows, cols], axis=-1)


def periodic_amplitude(grey: np.ndarray) -> np.ndarray:
    """(…,) the amplitude, in grey levels, of each 8-bit image's period-2 component (see the module docstring)."""
    coefficients = periodic_map(grey).mean(axis=(-3, -2))
    return np.sqrt(np.sum(coefficients**2, axis=-1))


def relative_amplitude(grey: np.ndarray) -> np.ndarray:
    """(…,) the amplitude over the image's own contrast (its standard deviation in grey levels; 0 for a flat image)."""
    contrast = grey.reshape(*grey.shape[:-2], -1).std(axis=-1)
    amplitude = periodic_amplitude(grey)
    return np.divide(amplitude, contrast, out=np.zeros_like(amplitude), where=contrast > 0)


def phase_locked_amplitude(grey: np.ndarray) -> float:
    """The amplitude, in grey levels, of the period-2 component the images share: the mean of their coefficients
    before the norm. The edges of strokes fall on the 2×2 grid at every phase and cancel over many images; a
    pattern a generator lays on its output grid keeps its sign and stays. Real digits: 0.04 over 10,000."""
    coefficients = periodic_map(grey).mean(axis=tuple(range(grey.ndim - 2)) + (-3, -2))
    return float(np.sqrt(np.sum(coefficients**2)))


def artefact_scores(images: np.ndarray) -> dict[str, float]:
    """A set of generated (or real) images in [0, 1], (N, H, W) or (N, H, W, 1): the mean per-image amplitude in
    grey levels (edges included), its relative form, the phase-locked amplitude (the grid-locked pattern alone), and
    how many images they rest on."""
    x = np.asarray(images)
    if x.ndim == 4:
        x = x[..., 0]
    grey = as_8bit(x)
    return {
        "amplitude_grey_levels": float(periodic_amplitude(grey).mean()),
        "relative": float(relative_amplitude(grey).mean()),
        "phase_locked_grey_levels": phase_locked_amplitude(grey),
        "images": int(len(grey)),
    }


PICTURE_FULL_SCALE = 16.0  # grey levels of checkerboard coefficient drawn as full white (+) or full black (−)


def artefact_picture(images: np.ndarray, full_scale: float = PICTURE_FULL_SCALE) -> np.ndarray:
    """(N, H, W) in [0, 1] → (N, H, W) in [0, 1]: each 2×2 block painted with its signed checkerboard coefficient in
    the 8-bit image, mid-grey for none, white +`full_scale` grey levels, black −`full_scale`, one fixed scale for
    every model. A checkerboard the generator lays over a region is one even tint there (its sign is locked to the
    stride grid); the edges of strokes show as scattered light and dark blocks, in every model alike."""
    x = np.asarray(images)
    blocks = periodic_map(as_8bit(x))[..., 0]
    picture = np.full(x.shape, 0.5)
    h, w = blocks.shape[-2] * STRIDE, blocks.shape[-1] * STRIDE
    picture[..., :h, :w] = 0.5 + np.repeat(np.repeat(blocks, STRIDE, axis=-2), STRIDE, axis=-1) / (2 * full_scale)
    return np.clip(picture, 0.0, 1.0)
