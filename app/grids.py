"""From a grid request to PNG bytes: latents, batched decode, render, cache. Used by the API and the pages."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace

import numpy as np
from fastapi import HTTPException

from app.core.cache import ByteLRU
from app.core.metrics import Metrics
from app.registry import ModelEntry
from arena.images import png_bytes, render_grid
from arena.latents import CLASSES, class_grid, latents_from_seed, latents_from_seeds, lerp, slerp, with_labels
from arena.variants import FAMILIES

MAX_CLASS_COLUMNS = 6  # a class grid: one row per digit, at most 6 columns (60 images)
CLASS_COLUMNS = 4


@dataclass(frozen=True)
class GridSpec:
    """What to draw; `source` (and `labels`, a conditional model's digit for each image) is hashable and fully
    determines the generator's input rows."""

    source: tuple
    nrow: int | None = None
    scale: int = 4
    padding: int = 2
    latents: np.ndarray | None = field(default=None, compare=False, hash=False)
    labels: tuple[int, ...] | None = None

    @property
    def count(self) -> int:
        """How many images the source yields."""
        kind, *args = self.source
        return {
            "seed": lambda: args[1],
            "seeds": lambda: len(args[0]),
            "latents": lambda: args[1][0],
            "reconstruct": lambda: args[0],
            "interpolate": lambda: args[2],
            "manifold": lambda: args[0] ** 2,
            "classes": lambda: args[1] * CLASSES,
        }[kind]()

    def labelled(self, label: int | None) -> "GridSpec":
        """The same images asked of a conditional model for one digit (None: unlabelled, as before)."""
        return self if label is None else replace(self, labels=(label,) * self.count)

    def key(self, entry: ModelEntry) -> tuple:
        key = (entry.name, entry.version, self.source, self.nrow, self.scale, self.padding)
        return key if self.labels is None else (*key, self.labels)

    def etag(self, entry: ModelEntry) -> str:
        return '"' + hashlib.sha256(repr(self.key(entry)).encode()).hexdigest()[:32] + '"'


def seed_spec(seed: int, n: int, **layout) -> GridSpec:
    return GridSpec(("seed", seed, n), **layout)


def seeds_spec(seeds: list[int], **layout) -> GridSpec:
    return GridSpec(("seeds", tuple(seeds)), **layout)


def latents_spec(latents: np.ndarray, **layout) -> GridSpec:
    digest = hashlib.sha256(np.ascontiguousarray(latents, np.float32).tobytes()).hexdigest()
    return GridSpec(("latents", digest, latents.shape), latents=latents, **layout)


def class_grid_spec(seed: int, columns: int, **layout) -> GridSpec:
    """A conditional model's class grid: row d asks for digit d, with the same `columns` latents of `seed` in every
    row, so a column shows one style across the digits."""
    return GridSpec(("classes", seed, columns), nrow=columns, **layout)


def reconstruct_spec(n: int, **layout) -> GridSpec:
    return GridSpec(("reconstruct", n), **layout)


def interpolation_spec(seed_a: int, seed_b: int, steps: int, **layout) -> GridSpec:
    return GridSpec(("interpolate", seed_a, seed_b, steps), nrow=steps, **layout)


def manifold_spec(size: int, **layout) -> GridSpec:
    return GridSpec(("manifold", size), nrow=size, **layout)


def latents_for(entry: ModelEntry, spec: GridSpec) -> np.ndarray:
    """The generator's input rows: the latents, and for a conditional model each followed by its label's one-hot
    code (the API has checked that a conditional model's spec has labels, and an unconditional one's none)."""
    kind, *args = spec.source
    if kind == "classes":
        return class_grid(latents_from_seed(args[0], args[1], entry.latent_dim), entry.classes)[0]
    rows = _latents(entry, spec)
    if spec.labels is not None and kind != "reconstruct":  # reconstructions ship with their digits' own labels
        return with_labels(rows, list(spec.labels), entry.classes)
    return rows


def _latents(entry: ModelEntry, spec: GridSpec) -> np.ndarray:
    kind, *args = spec.source
    d = entry.latent_dim
    if kind == "seed":
        return latents_from_seed(args[0], args[1], d)
    if kind == "seeds":
        return latents_from_seeds(list(args[0]), d)
    if kind == "latents":
        return spec.latents
    if kind == "reconstruct":  # the API checked that this model ships reconstruction latents
        return entry.recon_latents[: args[0]]
    if kind == "interpolate":
        a, b = latents_from_seed(args[0], 1, d)[0], latents_from_seed(args[1], 1, d)[0]
        # Gaussian latents in 100-d live near a sphere: slerp keeps the norm; the 2-d VAE plane uses a line.
        return (slerp if FAMILIES[entry.family].interpolation == "slerp" else lerp)(a, b, args[2])
    if kind == "manifold":
        from scipy.stats import norm

        if d != 2:
            raise HTTPException(400, f"the latent manifold needs a 2-d latent space; {entry.name!r} has {d}")
        g = norm.ppf(np.linspace(0.05, 0.95, args[0]))  # as the CVAE tutorial plots it
        return np.array([[x, y] for y in g[::-1] for x in g], np.float32)
    raise ValueError(kind)


@dataclass
class Grid:
    png: bytes
    cached: bool
    decode_ms: float
    render_ms: float
    latents: np.ndarray | None

    def server_timing(self) -> str:
        """The Server-Timing header: browsers' developer tools show where the time went."""
        if self.cached:
            return 'cache;desc="hit"'
        return (
            f'decode;desc="batched model call";dur={self.decode_ms:.2f}, '
            f'render;desc="render and PNG";dur={self.render_ms:.2f}'
        )


async def make_grid(entry: ModelEntry, spec: GridSpec, cache: ByteLRU, metrics: Metrics) -> Grid:
    key = spec.key(entry)
    hit = cache.get(key)
    metrics.cache.labels("hit" if hit is not None else "miss").inc()
    if hit is not None:
        return Grid(hit, True, 0.0, 0.0, None)
    latents = latents_for(entry, spec)

    def finish(images: np.ndarray) -> tuple[bytes, float]:  # runs on the model thread, right after the decode
        t = time.perf_counter()
        return png_bytes(render_grid(images, spec.nrow, spec.scale, spec.padding)), time.perf_counter() - t

    t0 = time.perf_counter()
    png, render_s = await entry.batcher.decode(latents, finish)
    total_s = time.perf_counter() - t0
    cache.put(key, png)
    return Grid(png, False, (total_s - render_s) * 1000, render_s * 1000, latents)
