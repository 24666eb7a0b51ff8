"""Sample-quality measures for MNIST-sized images, in NumPy/SciPy; each tested on inputs with known answers."""

from __future__ import annotations

import math

import numpy as np
from scipy import linalg

from arena import spectra
from arena.stats import wilson_interval


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (ddof = 1), in float64."""
    f = np.asarray(features, np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False, ddof=1)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative round-off clipped)."""
    w, v = linalg.eigh((matrix + matrix.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 (Σ1^½ Σ2 Σ1^½)^½), using only symmetric square roots."""
    root1 = _sqrt_psd(s1)
    cross = _sqrt_psd(root1 @ s2 @ root1)
    value = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(cross))
    return max(value, 0.0)


def frechet_of(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))


def kid(
    real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance with the cubic polynomial kernel (x·y/d + 1)³: unbiased MMD², mean and std over
    subsets."""
    rng = np.random.default_rng(seed)
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    d, m = real.shape[1], min(subset_size, len(real), len(fake))
    values = []

    def cubic(gram: np.ndarray) -> np.ndarray:  # in place, and t*t*t rather than a float power: half the time
        gram /= d
        gram += 1
        return gram * gram * gram

    for _ in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        kxx, kyy, kxy = cubic(x @ x.T), cubic(y @ y.T), cubic(x @ y.T)
        off = m * (m - 1)
        values.append((kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def _knn_radii(x: np.ndarray, k: int, block: int = 1000) -> np.ndarray:
    """Squared distance from each point to its k-th nearest other point."""
    out = np.empty(len(x))
    for i in range(0, len(x), block):
        d = _sq_dists(x[i : i + block], x)
        out[i : i + block] = np.partition(d, k, axis=1)[:, k]  # index 0 is the point itself
    return out


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5, block: int = 1000) -> dict[str, float]:
    """Precision and recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    r_real, r_fake = _knn_radii(real, k, block), _knn_radii(fake, k, block)
    precise = np.zeros(len(fake), bool)
    density_counts = np.zeros(len(fake))
    covered = np.zeros(len(real), bool)
    recalled = np.zeros(len(real), bool)
    for i in range(0, len(real), block):
        d = _sq_dists(real[i : i + block], fake)  # rows: real, cols: fake
        inside_real = d <= r_real[i : i + block, None]
        precise |= inside_real.any(axis=0)
        density_counts += inside_real.sum(axis=0)
        covered[i : i + block] = d.min(axis=1) <= r_real[i : i + block]
        recalled[i : i + block] = (d <= r_fake[None, :]).any(axis=1)
    return {
        "precision": float(precise.mean()),
        "recall": float(recalled.mean()),
        "density": float(density_counts.sum() / (k * len(fake))),
        "coverage": float(covered.mean()),
    }


def line_energy_share(images: np.ndarray, period: int = 2, crop: int = 2) -> np.ndarray:
    """Per image: the share of non-DC energy on the lines at frequency N/period on either axis."""
    p = spectra.power(images, crop)
    n = p.shape[1]
    ks = sorted({n // period, n - n // period})  # a frequency and its mirror (the same line at Nyquist)
    mask = np.zeros((n, n), bool)
    mask[ks, :] = True
    mask[:, ks] = True
    on_lines = p[:, mask].sum(1)
    total = p.sum(axis=(1, 2)) - p[:, 0, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = on_lines / total
    return share[np.isfinite(share)]


def checkerboard_index(images: np.ndarray, crop: int = 2) -> float:
    """Mean share of non-DC spectral energy on the Nyquist lines: 1 for a pure (−1)^(i+j) pattern, ≈0 for smooth
    images."""
    share = line_energy_share(images, 2, crop)
    return float(share.mean()) if len(share) else float("nan")


def period4_index(images: np.ndarray, crop: int = 2) -> float:
    share = line_energy_share(images, 4, crop)
    return float(share.mean()) if len(share) else float("nan")


def line_power(images: np.ndarray, crop: int = 2) -> np.ndarray:
    """Per image, the mean power per frequency bin on the lines at each frequency k = 0..N/2 of either axis (row k,
    its mirror N−k, and the same columns), divided by the image's own non-DC energy: (images, N/2 + 1). Dividing by
    its own energy makes it blind to contrast."""
    p = spectra.power(images, crop)
    n = p.shape[1]
    total = p.sum(axis=(1, 2)) - p[:, 0, 0]
    out = np.empty((len(p), n // 2 + 1))
    for k in range(n // 2 + 1):
        ks = sorted({k, (n - k) % n})
        mask = np.zeros((n, n), bool)
        mask[ks, :] = True
        mask[:, ks] = True
        out[:, k] = p[:, mask].mean(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return out / total[:, None]


def spectral_prominence(images: np.ndarray, period: int = 2, crop: int = 2) -> float:
    """How far the energy at frequency N/period stands above what the neighbouring frequencies predict, over a set
    of images (the mean of their own-energy-normalised line power, so a few bright images cannot dominate).

    Period 4 (k = N/4) is predicted by the geometric mean of its two neighbours; period 2 (Nyquist, the last
    frequency, about which a sampled spectrum is mirror-symmetric) by the even parabola in (k − N/2) through the log
    power of the two frequencies below it. A spectrum that
    falls smoothly — a sharp digit, or the same digit blurred — is predicted well (≈ 1 for both, whatever the
    blur's slope); a checkerboard adds energy at that one frequency alone and stands out. Contrast changes nothing.
    """
    lp = line_power(images, crop)
    lp = lp[np.all(np.isfinite(lp), axis=1)]
    if not len(lp):
        return float("nan")
    mean = lp.mean(0)
    n2 = len(mean) - 1  # N/2
    k = (2 * n2) // period
    if k == n2:  # the spectrum is mirror-symmetric about Nyquist: an even curve in (k − N/2) through k − 1, k − 2
        predicted = math.exp((4 * math.log(mean[k - 1]) - math.log(mean[k - 2])) / 3)
    else:
        predicted = math.sqrt(mean[k - 1] * mean[k + 1])
    return float(mean[k] / predicted)


def artefact_excess(prominence: float, real_prominence: float) -> float:
    """The artefact score: the prominence's excess over real digits', ln(P / P_real), one-sided (0 when no more
    prominent than real). A model cannot score better than artefact-free by being blurrier. Lower is better."""
    return max(0.0, math.log(prominence / real_prominence))


def radial_spectrum(images: np.ndarray, crop: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Mean power by integer radial frequency (cycles per crop width), normalised to sum to 1 without DC."""
    p = spectra.power(images, crop).mean(0)
    n = p.shape[0]
    f = np.fft.fftfreq(n) * n
    radius = np.rint(np.hypot(*np.meshgrid(f, f, indexing="ij"))).astype(int)
    sums = np.bincount(radius.ravel(), weights=p.ravel())
    sums[0] = 0.0
    return np.arange(len(sums)), sums / sums.sum()


def polyphase_sums(kernel: np.ndarray, stride: int = 2) -> dict[str, object]:
    """For a Conv2DTranspose kernel (kh, kw, out, in): the response of each output phase to an all-ones input.

    Unequal phase sums mean a flat input already comes out as a checkerboard.
    """
    k = np.asarray(kernel, np.float64)
    phases = np.stack(
        [k[a::stride, b::stride].sum(axis=(0, 1, 3)) for a in range(stride) for b in range(stride)]
    )  # (4, out)
    mean = phases.mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = phases.std(0) / np.abs(mean)
    return {
        "phase_sums_total": phases.sum(1).tolist(),
        "cv_flat_input_mean": float(np.nanmean(cv)),
        "cv_flat_input_median": float(np.nanmedian(cv)),
    }


def legibility(probs: np.ndarray, confident: float = 0.9) -> dict[str, float]:
    top = probs.max(1)
    counts = np.bincount(probs.argmax(1), minlength=probs.shape[1]) / len(probs)
    nz = counts[counts > 0]
    return {
        "mean_top_probability": float(top.mean()),
        "share_confident": float((top >= confident).mean()),
        "class_entropy_normalised": float(-(nz * np.log(nz)).sum() / np.log(probs.shape[1])),
        "smallest_class_share": float(counts.min()),
        "class_shares": counts.round(4).tolist(),
    }


# ---- measures that use the label a conditional generator was asked for


def conditional_accuracy(probs: np.ndarray, labels: np.ndarray) -> dict[str, object]:
    """How often the evaluator reads the digit that was asked for: overall with its Wilson interval, and per class."""
    labels = np.asarray(labels)
    hit = probs.argmax(1) == labels
    classes = probs.shape[1]
    per_class = [float(hit[labels == c].mean()) if (labels == c).any() else None for c in range(classes)]
    lo, hi = wilson_interval(int(hit.sum()), len(hit))
    return {"accuracy": float(hit.mean()), "interval": [lo, hi], "samples": int(len(hit)), "per_class": per_class}


def mean_pairwise_distance(features: np.ndarray, limit: int = 1000) -> float:
    """Mean Euclidean distance between distinct points (the first `limit` points): a set's spread."""
    f = np.asarray(features[:limit], np.float64)
    if len(f) < 2:
        return float("nan")
    d = np.sqrt(_sq_dists(f, f))
    return float(d.sum() / (len(f) * (len(f) - 1)))


def per_class(
    samples: np.ndarray,
    feats: np.ndarray,
    labels: np.ndarray,
    real_images: np.ndarray,
    real_feats: np.ndarray,
    real_labels: np.ndarray,
    classes: int = 10,
) -> dict[str, list]:
    """For each digit: the Fréchet distance between the samples asked for it and the real digits of that class,
    the checkerboard index of those samples × the real class's, and intra-class diversity — the samples' mean
    pairwise feature distance ÷ the real class's (< 1: less varied than real digits; a class that collapsed to a few
    modes shows here even when the pooled figures look fine)."""
    out: dict[str, list] = {"frechet": [], "checkerboard_ratio": [], "diversity_ratio": [], "samples": []}
    for c in range(classes):
        mine, real = labels == c, real_labels == c
        out["samples"].append(int(mine.sum()))
        if mine.sum() < 2 or real.sum() < 2:
            for k in ("frechet", "checkerboard_ratio", "diversity_ratio"):
                out[k].append(None)
            continue
        out["frechet"].append(frechet_of(feats[mine], real_feats[real]))
        out["checkerboard_ratio"].append(checkerboard_index(samples[mine]) / checkerboard_index(real_images[real]))
        out["diversity_ratio"].append(mean_pairwise_distance(feats[mine]) / mean_pairwise_distance(real_feats[real]))
    return out
