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
