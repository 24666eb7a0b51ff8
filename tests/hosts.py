"""Simulated CPUs: compiled generators that round like hosts we may not be running on.

On some hosts of this project's machine kind, a GEMM micro-kernel computes a batch in blocks of 6 rows and the
last 1–2 rows past the last whole block with another kernel, and a batch of one with a matrix-vector kernel: a
latent's row then depends on its position in the batch. Real differences are ~6e-8 and flip a pixel only now and
then; the simulation makes them large enough to flip pixels every time, so a test that must catch them cannot
pass by the luck of the CPU it runs on.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

BLOCK, TAILS, SKEW = 6, (1, 2), np.float32(0.05)


def tail_kernel(fn: Callable, shape: int) -> Callable:
    """`fn` as a tail-kernel CPU computes it for batch `shape`."""
    tail = shape % BLOCK if shape % BLOCK in TAILS and shape > 1 else 0

    def call(z: np.ndarray) -> np.ndarray:
        out = np.array(fn(z), np.float32)
        if shape == 1:
            out += SKEW / 2  # the matrix-vector kernel rounds its own way
        if tail:
            out[shape - tail :] += SKEW
        return out

    return call


def tail_kernel_compile(compile_shapes: Callable) -> Callable:
    """A drop-in for `app.serving.shapes.compile_shapes` (patched where app.serving.registry uses it), on the simulated
    CPU."""

    def compile(path, latent_dim: int, shapes: set[int], **options) -> dict[int, Callable]:
        return {
            shape: tail_kernel(fn, shape) for shape, fn in compile_shapes(path, latent_dim, shapes, **options).items()
        }

    return compile
