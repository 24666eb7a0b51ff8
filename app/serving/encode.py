"""The encode stage: the one writer of a grid's response — the PNG or its JSON, with the model, ETag, cache, timing
and seed headers — and of the 304 for a matched If-None-Match."""

from __future__ import annotations

import base64

from fastapi import Response
from pydantic import BaseModel, Field

from app.serving.catalogue import ModelEntry
from app.serving.predict import Grid
from app.serving.specs import ClassGrid, GridSpec, SeedGrid, SeedListGrid


class GridJSON(BaseModel):
    model: str
    version: str
    seed: int | None = Field(None, description="the seed of the grid (seed mode)")
    seeds: list[int] | None = Field(None, description="one seed per image (seeds mode)")
    labels: list[int] | None = Field(None, description="conditional models: the digit asked of each image, in order")
    n: int
    nrow: int | None
    scale: int
    padding: int
    mode: str
    png_base64: str
    cached: bool
    timing_ms: dict[str, float]


NO_STORE, ONE_HOUR, IMMUTABLE = "no-store", "public, max-age=3600", "public, max-age=31536000, immutable"


def encode(
    entry: ModelEntry, spec: GridSpec, grid: Grid | None, cache_control: str, format: str = "png", tell_seed=False
) -> Response:
    """The one writer of a grid's response: the PNG or its JSON, with the model, ETag, cache and timing headers, and
    (`tell_seed`) the seed(s) in X-Seed; without a `grid`, the 304 of a matched If-None-Match."""
    headers = {
        "ETag": grid.etag if grid is not None else spec.etag(entry),
        "Cache-Control": cache_control,
        "X-Model": entry.name,
        "X-Model-Version": entry.version,
    }
    if grid is None:
        return Response(status_code=304, headers=headers)
    headers["Server-Timing"] = grid.server_timing
    seed, seeds = _seeds(spec)
    if tell_seed and seed is not None:
        headers["X-Seed"] = str(seed)
    elif tell_seed and seeds is not None:
        headers["X-Seed"] = ",".join(map(str, seeds))
    if format == "json":
        payload = GridJSON(
            model=entry.name,
            version=entry.version,
            seed=seed,
            seeds=seeds,
            labels=spec.asked_labels(),
            n=spec.count,
            nrow=spec.nrow,
            scale=spec.scale,
            padding=spec.padding,
            mode=spec.mode,
            png_base64=base64.b64encode(grid.png).decode(),
            cached=grid.cached,
            timing_ms={"decode": round(grid.decode_ms, 3), "render": round(grid.render_ms, 3)},
        )
        return Response(payload.model_dump_json(), media_type="application/json", headers=headers)
    return Response(grid.png, media_type="image/png", headers=headers)


def _seeds(spec: GridSpec) -> tuple[int | None, list[int] | None]:
    """The grid's one seed, or its list of seeds (neither for latents, reconstructions and the GET-only kinds)."""
    if isinstance(spec, (SeedGrid, ClassGrid)):
        return spec.seed, None
    if isinstance(spec, SeedListGrid):
        return None, list(spec.seeds)
    return None, None
