"""The gold (control) images: real test digits and untrained-GAN noise, shipped as data, and their grids; and the real
digits that "real or generated?" tasks mix with generated ones."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from arena.images import png_bytes, render_grid

GOLD = ("real_mnist", "untrained_noise")
DATA = Path(__file__).resolve().parents[1] / "data"


def gold_images(file: str, key: str) -> np.ndarray:
    """Shipped gold images as floats in [0, 1]: real test digits, or untrained-GAN samples
    (training/interchange/gold_noise.py)."""
    with np.load(DATA / file) as f:
        return f[key].astype(np.float32) / 255.0


@functools.lru_cache(maxsize=1)
def real_digits() -> tuple[np.ndarray, np.ndarray]:
    """The shipped real digits of "real or generated?" tasks (training/interchange/real_digits.py): images as floats
    in [0, 1] and their labels, read once and read-only (callers share the cached arrays)."""
    with np.load(DATA / "real_digits.npz") as f:
        images, labels = f["digits"].astype(np.float32) / 255.0, f["labels"].astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def gold_png(digits: np.ndarray, noise: np.ndarray, model: str, seed: int, n: int) -> bytes:
    """The grid of `n` gold images shown for `model` in a task with this seed (the same seed, the same picks)."""
    pool = digits if model == "real_mnist" else noise
    pick = np.random.default_rng(seed).choice(len(pool), n, replace=False)
    return png_bytes(render_grid(pool[pick], 3, 3, 2))
