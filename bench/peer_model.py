"""What every server in bench/serve.py decodes with: the service's own compiled function, shape check and PNG writer.

The peers (LitServe, Ray Serve) get exactly the service's arithmetic, so the benchmark compares serving machinery
only, and a grid requested alone has the same bytes from every server (the bench checks that).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from app.core.settings import DEFAULT_BUCKETS
from app.serving.shapes import compile_shapes, run_planned, settle_shapes
from arena.images import png_bytes, render_grid, to_unit
from arena.latents import latents_from_seed
from arena.records import SERVED, read_manifest

MODEL = "gan_transpose"
MAX_BATCH, BATCH_WAIT_S = 64, 0.012  # the service's defaults (ARENA_MAX_BATCH, ARENA_BATCH_WINDOW_MS)


class GridDecoder:
    """Seeds and counts → PNG grids, through the shapes `settle_shapes` keeps on this CPU (as the service does);
    `threads`: each model call's intra-op threads (0: one per core, 1: as the service's decode threads)."""

    def __init__(self, store: Path, model: str = MODEL, threads: int = 0):
        manifest = read_manifest(Path(store) / model)
        self.latent_dim, self.output = int(manifest["latent_dim"]), manifest["output"]
        fns = compile_shapes(Path(store) / model / SERVED, self.latent_dim, set(DEFAULT_BUCKETS), threads)
        self.shapes = settle_shapes(fns, self.latent_dim).serving
        self.fns = {s: fns[s] for s in self.shapes}

    def decode(self, latents: np.ndarray) -> np.ndarray:
        return run_planned(self.fns, self.shapes, latents, self.latent_dim)

    def pngs(self, requests: list[tuple[int, int]]) -> list[bytes]:
        """One batched decode for all requests, then each request's grid (the service's default layout)."""
        latents = [latents_from_seed(seed, n, self.latent_dim) for seed, n in requests]
        images = to_unit(self.decode(np.concatenate(latents)), self.output)
        out, start = [], 0
        for z in latents:
            out.append(png_bytes(render_grid(images[start : start + len(z)], None, 4, 2)))
            start += len(z)
        return out
