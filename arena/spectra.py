"""Power spectra of a set of images, as the spectral literature on upsampling artefacts draws them (Durall et al.
2020, "Watch your up-convolution"; Frank et al. 2020; Chandrasegaran et al. 2021): the mean 2-D power spectrum and
its azimuthal average. NumPy only; evaluation computes them (training/evaluation/evaluate.py) and the service draws
them.

Each image is cropped by CROP pixels a side (even, so the 2×2 blocks of a stride-2 layer stay aligned; the
borders' zero padding would add energy of its own), its mean removed, and its power |FFT2|² divided by its own
non-DC energy, so contrast changes nothing and a few bright images cannot dominate the mean. A stride-2
checkerboard puts energy at Nyquist: frequency N/2 on one axis, (N/2, N/2) for a (−1)^(i+j) pattern."""

from __future__ import annotations

import numpy as np

CROP = 2


def power(images: np.ndarray, crop: int = CROP) -> np.ndarray:
    """|FFT2|² of each image after cropping `crop` pixels a side and removing the mean: (n, N, N), DC at [0, 0]."""
    x = np.asarray(images, np.float64)
    if x.ndim == 4:
        x = x[..., 0]
    x = x[:, crop : x.shape[1] - crop, crop : x.shape[2] - crop]
    x = x - x.mean(axis=(1, 2), keepdims=True)
    return np.abs(np.fft.fft2(x)) ** 2


def mean_spectrum(images: np.ndarray, crop: int = CROP) -> np.ndarray:
    """The mean over images of each one's power as a share of its own non-DC energy, centred (np.fft.fftshift: DC
    at [N//2, N//2], Nyquist at row and column 0): (N, N), summing to 1. Blank images (no energy) are left out."""
    p = power(images, crop)
    total = p.sum(axis=(1, 2)) - p[:, 0, 0]
    kept = total > 0
    if not kept.any():
        raise ValueError("every image is blank (constant): a spectrum needs some contrast")
    shares = p[kept] / total[kept, None, None]
    shares[:, 0, 0] = 0.0
    return np.fft.fftshift(shares.mean(0))


def log_spectrum(spectrum: np.ndarray) -> np.ndarray:
    """log10 of a centred mean spectrum, DC (zero by construction) as NaN."""
    s = np.asarray(spectrum, np.float64)
    out = np.full(s.shape, np.nan)
    positive = s > 0
    out[positive] = np.log10(s[positive])
    return out


def radii(n: int) -> np.ndarray:
    """Each bin's distance from DC of a centred N×N spectrum, in cycles per pixel (0.5 on the Nyquist lines)."""
    f = np.fft.fftshift(np.fft.fftfreq(n))
    return np.hypot(*np.meshgrid(f, f, indexing="ij"))


def azimuthal_average(spectrum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean power over each ring of a centred spectrum, rings one bin (1/N cycles per pixel) wide, from the first
    ring out to the corner: (ring radius in cycles per pixel, mean power). Rings past Nyquist (0.5) are only partly
    inside the square."""
    s = np.asarray(spectrum, np.float64)
    n = s.shape[0]
    ring = np.rint(radii(n) * n).astype(int)
    sums = np.bincount(ring.ravel(), weights=s.ravel())
    counts = np.bincount(ring.ravel())
    return np.arange(1, len(sums)) / n, sums[1:] / counts[1:]
