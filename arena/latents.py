"""The one place latents are made from a seed: training, evaluation and the service all call it."""

from __future__ import annotations

import numpy as np

MAX_SEED = 2**32 - 1
MAX_ABS_LATENT = 10.0


def latents_from_seed(seed: int, n: int, latent_dim: int) -> np.ndarray:
    """Row i is latent i of `seed`; the first k rows do not depend on n."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed {seed} is outside 0..{MAX_SEED}")
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, latent_dim), dtype=np.float32)


def latents_from_seeds(seeds: list[int], latent_dim: int) -> np.ndarray:
    """One latent per seed: the first latent of each seed."""
    rows = [latents_from_seed(s, 1, latent_dim)[0] for s in seeds]
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, latent_dim), np.float32)


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Spherical interpolation, the path that keeps Gaussian latents at a typical norm."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float64)[:, None]
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    cos = np.dot(a64, b64) / (np.linalg.norm(a64) * np.linalg.norm(b64) + 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return ((1 - t) * a64 + t * b64).astype(np.float32)
    out = (np.sin((1 - t) * omega) * a64 + np.sin(t * omega) * b64) / np.sin(omega)
    return out.astype(np.float32)


def lerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Straight-line interpolation."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return ((1 - t) * a + t * b).astype(np.float32)


CLASSES = 10  # MNIST's digits: the labels a conditional generator is asked for


def one_hot(labels: np.ndarray | list[int], classes: int = CLASSES) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"labels must lie in 0..{classes - 1}, got {sorted(set(labels.tolist()))}")
    return np.eye(classes, dtype=np.float32)[labels]


def with_labels(latents: np.ndarray, labels: np.ndarray | list[int], classes: int = CLASSES) -> np.ndarray:
    """A conditional generator's input rows: each latent followed by the one-hot code of its label (the Keras
    conditional-GAN example's input), so everything that batches latents batches these rows alike."""
    return np.concatenate([np.asarray(latents, np.float32), one_hot(labels, classes)], axis=1)


def balanced_labels(n: int, classes: int = CLASSES) -> np.ndarray:
    """0, 1, …, 9, 0, 1, …: the labels of n samples that cover every class (evenly when n is a multiple)."""
    return np.arange(n) % classes


def every_digit(latents: np.ndarray, classes: int) -> np.ndarray:
    """Input rows that ask a model of `classes` labels for every digit in turn (row i: digit i mod classes); an
    unconditional model's (classes 0) are the latents themselves."""
    return with_labels(latents, balanced_labels(len(latents), classes), classes) if classes else latents


def class_grid(latents: np.ndarray, classes: int = CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """(rows, labels) for a class grid: one row per digit, the same latents in every row, so a column shows one
    style across digits. Row-major: digit d, column j is latents[j] with label d."""
    k = len(latents)
    labels = np.repeat(np.arange(classes), k)
    return with_labels(np.tile(latents, (classes, 1)), labels, classes), labels
