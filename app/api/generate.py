"""`POST /generate` and the cacheable `GET` image routes built on it."""

from __future__ import annotations

import base64
import secrets
from urllib.parse import parse_qsl
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field, model_validator

from app.api.deps import CacheDep, MetricsDep, RegistryDep, errors, resolve_model
from arena.latents import MAX_ABS_LATENT, MAX_SEED
from app.grids import GridSpec, interpolation_spec, latents_spec, make_grid, manifold_spec, reconstruct_spec, seed_spec, seeds_spec
from app.registry import ModelEntry
from arena.variants import VARIANTS

router = APIRouter(tags=["generate"])

MAX_N = 64
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
LatentValue = Annotated[float, Field(ge=-MAX_ABS_LATENT, le=MAX_ABS_LATENT, allow_inf_nan=False)]

ModelQ = Annotated[str, Query(description=f"model name: {', '.join(VARIANTS)} (or another in the store; GET /api/models lists them)", max_length=64)]
SeedQ = Annotated[int | None, Query(ge=0, le=MAX_SEED, description="integer seed 0 … 2³²−1; image i is row i of default_rng(seed).standard_normal((n, latent_dim)). Omitted: a random seed, returned in X-Seed")]
NQ = Annotated[int | None, Query(ge=1, le=MAX_N, description="number of images, 1 … 64 (default 16)")]
NrowQ = Annotated[int | None, Query(ge=1, le=MAX_N, description="images per row (default ⌈√n⌉)")]
MAX_SCALE, MAX_PADDING = 8, 16
GRID_SCALE, GRID_PADDING = 4, 2  # a grid's defaults (POST /generate, grid.png)
ScaleQ = Annotated[int, Query(ge=1, le=MAX_SCALE, description=f"nearest-neighbour enlargement of each 28-pixel tile, 1 … {MAX_SCALE}")]
PaddingQ = Annotated[int, Query(ge=0, le=MAX_PADDING, description=f"pixels between tiles, 0 … {MAX_PADDING}")]


class GenerateBody(BaseModel):
    """Either one image per seed, or explicit latent vectors of the model's size."""

    seeds: list[Seed] | None = Field(None, min_length=1, max_length=MAX_N, description="one image per seed (each 0 … 2³²−1)")
    latents: list[Annotated[list[LatentValue], Field(min_length=1, max_length=512)]] | None = Field(
        None, min_length=1, max_length=MAX_N, description="latent vectors, finite, |z| ≤ 10, each of the model's latent size"
    )

    @model_validator(mode="after")
    def exactly_one(self) -> "GenerateBody":
        if (self.seeds is None) == (self.latents is None):
            raise ValueError("give exactly one of 'seeds' or 'latents'")
        return self


class GridJSON(BaseModel):
    model: str
    version: str
    seed: int | None = Field(None, description="the seed of the grid (seed mode)")
    seeds: list[int] | None = Field(None, description="one seed per image (seeds mode)")
    n: int
    nrow: int | None
    scale: int
    padding: int
    mode: str
    png_base64: str
    cached: bool
    timing_ms: dict[str, float]


PNG_OR_JSON = {200: {"content": {"image/png": {}, "application/json": {"schema": GridJSON.model_json_schema()}}, "description": "the grid"}}
ERRORS = errors(400, 404, 413, 422, 503)


def _layout(nrow: int | None, scale: int, padding: int) -> dict:
    return {"nrow": nrow, "scale": scale, "padding": padding}


def _spec(entry: ModelEntry, seed: int | None, n: int | None, mode: str, body: GenerateBody | None, layout: dict) -> tuple[GridSpec, int | None]:
    if mode == "reconstruct":
        if body is not None or seed is not None:
            raise HTTPException(400, "mode=reconstruct decodes the shipped test digits; it takes no seed or body")
        if entry.recon_latents is None:
            raise HTTPException(400, f"mode=reconstruct needs a VAE; {entry.name!r} is a {str(entry.family).upper()} (VAEs encode digits, GANs cannot)")
        count = len(entry.recon_latents)
        if (n or count) > count:
            raise HTTPException(400, f"n={n}: mode=reconstruct has {count} shipped test digits; accepted n is 1 … {count}")
        return reconstruct_spec(n or count, **layout), None
    if body is not None:
        if seed is not None or n is not None:
            raise HTTPException(400, "give either seed/n in the query or a JSON body with seeds/latents, not both")
        if body.seeds is not None:
            return seeds_spec(body.seeds, **layout), None
        for i, row in enumerate(body.latents):
            if len(row) != entry.latent_dim:
                raise HTTPException(422, f"latents[{i}] has length {len(row)}; {entry.name} takes vectors of length {entry.latent_dim}")
        return latents_spec(np.asarray(body.latents, np.float32), **layout), None
    seed = secrets.randbelow(MAX_SEED + 1) if seed is None else seed
    return seed_spec(seed, n or 16, **layout), seed


@router.post("/generate", responses={**PNG_OR_JSON, **ERRORS}, summary="Generate a grid of samples")
async def generate(
    registry: RegistryDep,
    cache: CacheDep,
    metrics: MetricsDep,
    model: ModelQ,
    seed: SeedQ = None,
    n: NQ = None,
    nrow: NrowQ = None,
    scale: ScaleQ = GRID_SCALE,
    padding: PaddingQ = GRID_PADDING,
    mode: Annotated[Literal["sample", "reconstruct"], Query(description="sample: decode latents; reconstruct: decode the encodings of 16 fixed MNIST test digits (VAEs only)")] = "sample",
    format: Annotated[Literal["png", "json"], Query(description="png: the image; json: the image base64-encoded with its seed(s) and timing")] = "png",
    body: Annotated[GenerateBody | None, Body(description="optional: {'seeds': [...]} or {'latents': [[...], ...]}")] = None,
) -> Response:
    """An n-image grid from a seed, a list of seeds, explicit latents, or (VAEs) reconstructions."""
    entry = resolve_model(registry, model)
    return await _respond(entry, cache, metrics, seed, n, nrow, scale, padding, mode, format, body)


async def _respond(entry: ModelEntry, cache, metrics, seed: int | None, n: int | None, nrow: int | None, scale: int, padding: int, mode: str, format: str, body: GenerateBody | None) -> Response:
    """The answer to a validated `POST /generate` (the route and FastGenerate both end here, so they cannot differ)."""
    spec, used_seed = _spec(entry, seed, n, mode, body, _layout(nrow, scale, padding))
    grid = await make_grid(entry, spec, cache, metrics)
    headers = {
        "X-Model": entry.name, "X-Model-Version": entry.version, "ETag": spec.etag(entry), "Server-Timing": grid.server_timing(),
        "Cache-Control": "no-store" if seed is None and mode == "sample" and body is None else "public, max-age=3600",
    }
    if used_seed is not None:
        headers["X-Seed"] = str(used_seed)
    elif spec.source[0] == "seeds":
        headers["X-Seed"] = ",".join(map(str, spec.source[1]))
    if format == "json":
        payload = GridJSON(
            model=entry.name, version=entry.version, seed=used_seed, seeds=list(spec.source[1]) if spec.source[0] == "seeds" else None,
            n=spec.count, nrow=nrow, scale=scale, padding=padding, mode=mode, png_base64=base64.b64encode(grid.png).decode(), cached=grid.cached,
            timing_ms={"decode": round(grid.decode_ms, 3), "render": round(grid.render_ms, 3)},
        )
        return Response(payload.model_dump_json(), media_type="application/json", headers=headers)
    return Response(grid.png, media_type="image/png", headers=headers)


# Query values FastGenerate takes itself: canonical decimal digits within the route's bounds. Anything else (a sign,
# spaces, a float, a repeated or unknown key, a body) goes to the route, which accepts or rejects it as documented.
_FAST_INTS = {"seed": (10, 0, MAX_SEED), "n": (2, 1, MAX_N), "nrow": (2, 1, MAX_N), "scale": (1, 1, MAX_SCALE), "padding": (2, 0, MAX_PADDING)}
_FAST_CHOICES = {"mode": ("sample",), "format": ("png", "json")}


def fast_query(query_string: bytes) -> dict | None:
    """The validated arguments of a `POST /generate` query that needs nothing FastAPI does, else None."""
    args: dict = {}
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if key in args:
            return None
        if key in _FAST_INTS:
            digits, low, high = _FAST_INTS[key]
            if not (0 < len(value) <= digits and value.isascii() and value.isdigit()) or not low <= int(value) <= high:
                return None
            args[key] = int(value)
        elif key in _FAST_CHOICES:
            if value not in _FAST_CHOICES[key]:
                return None
            args[key] = value
        elif key == "model":
            args[key] = value
        else:
            return None
    return args if "model" in args else None


class FastGenerate:
    """`POST /generate` with its parameters in the query and no body — the single-image and grid traffic — without
    FastAPI's dependency solving and validation, which cost about a third of the event loop's time per request.

    It answers only a query that `fast_query` accepts for a model that is ready, through the route's own `_respond`,
    with the route set on the scope (metrics and access log name it as usual); every other request, valid or not,
    goes to the route unchanged. tests/test_service.py checks both give the same status, headers and bytes.
    """

    def __init__(self, app, enabled: bool = True):
        self.app, self.enabled = app, enabled
        self.route = next(r for r in router.routes if r.path == "/generate" and "POST" in r.methods)

    async def __call__(self, scope, receive, send) -> None:
        if not (self.enabled and scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/generate"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        args = fast_query(scope["query_string"]) if headers.get(b"content-length", b"0") == b"0" and b"transfer-encoding" not in headers else None
        state = scope["app"].state
        registry = getattr(state, "registry", None)  # set by the lifespan
        entry = registry.entries.get(args["model"]) if args and registry else None
        if entry is None or entry.status != "ready":
            return await self.app(scope, receive, send)
        scope["route"] = self.route
        response = await _respond(
            entry, state.cache, state.metrics, args.get("seed"), args.get("n"), args.get("nrow"), args.get("scale", GRID_SCALE),
            args.get("padding", GRID_PADDING), args.get("mode", "sample"), args.get("format", "png"), None,
        )
        await response(scope, receive, send)


IMMUTABLE = "public, max-age=31536000, immutable"
NameP = Annotated[str, Path(description="model name", max_length=64)]


async def _cached_png(request: Request, entry: ModelEntry, spec: GridSpec, cache, metrics) -> Response:
    etag = spec.etag(entry)
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE, "X-Model": entry.name, "X-Model-Version": entry.version}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    grid = await make_grid(entry, spec, cache, metrics)
    return Response(grid.png, media_type="image/png", headers={**headers, "Server-Timing": grid.server_timing()})


PNG = {200: {"content": {"image/png": {}}, "description": "the grid"}, 304: {"description": "not modified (If-None-Match matched the ETag)"}}


@router.get("/models/{name}/grid.png", responses={**PNG, **ERRORS}, summary="A seed's grid as a cacheable image")
async def grid_png(
    request: Request, registry: RegistryDep, cache: CacheDep, metrics: MetricsDep, name: NameP,
    seed: Annotated[int | None, Query(ge=0, le=MAX_SEED, description="integer seed 0 … 2³²−1 (required unless mode=reconstruct)")] = None,
    n: NQ = None, nrow: NrowQ = None, scale: ScaleQ = GRID_SCALE, padding: PaddingQ = GRID_PADDING,
    mode: Annotated[Literal["sample", "reconstruct"], Query(description="sample or (VAEs) reconstruct")] = "sample",
) -> Response:
    """The same image `POST /generate` returns for these parameters, for `<img>` tags; immutable per model version."""
    entry = resolve_model(registry, name)
    if mode == "sample" and seed is None:
        raise HTTPException(400, "seed is required: a cacheable grid needs a fixed seed (0 … 2³²−1)")
    spec, _ = _spec(entry, seed if mode == "sample" else None, n, mode, None, _layout(nrow, scale, padding))
    return await _cached_png(request, entry, spec, cache, metrics)


@router.get("/models/{name}/interpolate.png", responses={**PNG, **ERRORS}, summary="Decodings along the path between two seeds' latents")
async def interpolate_png(
    request: Request, registry: RegistryDep, cache: CacheDep, metrics: MetricsDep, name: NameP,
    seed_a: Annotated[int, Query(ge=0, le=MAX_SEED, description="start seed")],
    seed_b: Annotated[int, Query(ge=0, le=MAX_SEED, description="end seed")],
    steps: Annotated[int, Query(ge=2, le=16, description="images in the row, 2 … 16")] = 10,
    scale: ScaleQ = 3, padding: PaddingQ = 2,
) -> Response:
    """One row: slerp between the first latents of two seeds for GANs, a straight line for the 2-d VAEs."""
    entry = resolve_model(registry, name)
    return await _cached_png(request, entry, interpolation_spec(seed_a, seed_b, steps, scale=scale, padding=padding), cache, metrics)


@router.get("/models/{name}/manifold.png", responses={**PNG, **ERRORS}, summary="A VAE's 2-d latent plane decoded on a grid")
async def manifold_png(
    request: Request, registry: RegistryDep, cache: CacheDep, metrics: MetricsDep, name: NameP,
    size: Annotated[int, Query(ge=2, le=20, description="decodings per side, 2 … 20")] = 15,
    scale: ScaleQ = 1, padding: PaddingQ = 0,
) -> Response:
    """Decodings at the Gaussian quantiles 5 % … 95 % on each latent axis, as the CVAE tutorial plots them."""
    entry = resolve_model(registry, name)
    if entry.latent_dim != 2:
        raise HTTPException(400, f"the latent manifold needs a 2-d latent space; {name!r} has {entry.latent_dim} (VAEs have 2)")
    return await _cached_png(request, entry, manifold_spec(size, scale=scale, padding=padding), cache, metrics)
