"""`POST /generate` and the cacheable `GET` image routes built on it."""

from __future__ import annotations

import base64
import secrets
from dataclasses import replace
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError, model_validator

from app.api.deps import CacheDep, MetricsDep, RegistryDep, ServiceDep, errors, resolve_model
from app.grids import (
    CLASS_COLUMNS,
    MAX_CLASS_COLUMNS,
    GridSpec,
    class_grid_spec,
    interpolation_spec,
    latents_spec,
    make_grid,
    manifold_spec,
    reconstruct_spec,
    seed_spec,
    seeds_spec,
)
from app.registry import ModelEntry
from arena.latents import CLASSES, MAX_ABS_LATENT, MAX_SEED
from arena.variants import VARIANTS

router = APIRouter(tags=["generate"])

MAX_N = 64
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
LatentValue = Annotated[float, Field(ge=-MAX_ABS_LATENT, le=MAX_ABS_LATENT, allow_inf_nan=False)]
Label = Annotated[int, Field(ge=0, le=CLASSES - 1)]
CONDITIONAL = tuple(v.name for v in VARIANTS.values() if v.classes)  # the table's; imported ones say so too
LABEL_DOC = (
    f"a conditional model's digit, 0 … {CLASSES - 1}: n images of it. Omitted for a conditional model: its class "
    f"grid, one row per digit with the same latents in every row and n columns (1 … {MAX_CLASS_COLUMNS}, default "
    f"{CLASS_COLUMNS}). Unconditional models take no label"
)

MAX_SCALE, MAX_PADDING = 8, 16
GRID_SCALE, GRID_PADDING = 4, 2  # a grid's defaults (POST /generate, grid.png)
ScaleQ = Annotated[
    int, Query(ge=1, le=MAX_SCALE, description=f"nearest-neighbour enlargement of each 28-pixel tile, 1 … {MAX_SCALE}")
]
PaddingQ = Annotated[int, Query(ge=0, le=MAX_PADDING, description=f"pixels between tiles, 0 … {MAX_PADDING}")]
LabelQ = Annotated[
    int | None, Query(ge=0, le=CLASSES - 1, description="conditional models (required there): the digit, 0 … 9")
]


class GenerateBody(BaseModel):
    """Either one image per seed, or explicit latent vectors of the model's size."""

    seeds: list[Seed] | None = Field(
        None, min_length=1, max_length=MAX_N, description="one image per seed (each 0 … 2³²−1)"
    )
    latents: list[Annotated[list[LatentValue], Field(min_length=1, max_length=512)]] | None = Field(
        None,
        min_length=1,
        max_length=MAX_N,
        description="latent vectors, finite, |z| ≤ 10, each of the model's latent size",
    )
    labels: list[Label] | None = Field(
        None,
        min_length=1,
        max_length=MAX_N,
        description=f"conditional models: the digit (0 … {CLASSES - 1}) of each seed or latent, in order",
    )

    @model_validator(mode="after")
    def exactly_one(self) -> "GenerateBody":
        if (self.seeds is None) == (self.latents is None):
            raise ValueError("give exactly one of 'seeds' or 'latents'")
        given, what = (self.seeds, "seed") if self.seeds is not None else (self.latents, "latent")
        if self.labels is not None and len(self.labels) != len(given):
            raise ValueError(f"'labels' has {len(self.labels)} entries; give one per {what} ({len(given)})")
        return self


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


PNG_OR_JSON = {
    200: {
        "content": {"image/png": {}, "application/json": {"schema": GridJSON.model_json_schema()}},
        "description": "the grid",
    }
}
ERRORS = errors(400, 404, 413, 422, 503)


def _layout(nrow: int | None, scale: int, padding: int) -> dict:
    return {"nrow": nrow, "scale": scale, "padding": padding}


def _check_label(entry: ModelEntry, label: int | list[int] | None, what: str = "label") -> None:
    """A label for an unconditional model is refused, naming the models that take one."""
    if label is not None and not entry.classes:
        raise HTTPException(
            400,
            f"{what}={label}: {entry.name} is unconditional; only conditional models take a label "
            f"({', '.join(CONDITIONAL) or 'none in the table'}, or an imported one with classes)",
        )


def _require_label(entry: ModelEntry, label: int | None) -> None:
    _check_label(entry, label)
    if entry.classes and label is None:
        raise HTTPException(400, f"label is required: {entry.name} is conditional; give label=0 … {CLASSES - 1}")


def _spec(
    entry: ModelEntry,
    seed: int | None,
    n: int | None,
    mode: str,
    body: GenerateBody | None,
    layout: dict,
    label: int | None = None,
) -> tuple[GridSpec, int | None]:
    _check_label(entry, label)
    if mode == "reconstruct":
        if body is not None or seed is not None:
            raise HTTPException(400, "mode=reconstruct decodes the shipped test digits; it takes no seed or body")
        if label is not None:
            raise HTTPException(
                400, f"label={label}: mode=reconstruct decodes the shipped test digits with their own labels"
            )
        if entry.recon_latents is None:
            raise HTTPException(
                400,
                f"mode=reconstruct needs a VAE; {entry.name!r} is a "
                f"{str(entry.family).upper()} (VAEs encode digits, GANs cannot)",
            )
        count = len(entry.recon_latents)
        if (n or count) > count:
            raise HTTPException(
                400, f"n={n}: mode=reconstruct has {count} shipped test digits; accepted n is 1 … {count}"
            )
        return reconstruct_spec(n or count, **layout), None
    if body is not None:
        if seed is not None or n is not None or label is not None:
            raise HTTPException(
                400, "give either seed/n/label in the query or a JSON body with seeds/latents/labels, not both"
            )
        _check_label(entry, body.labels, "labels")
        if entry.classes and body.labels is None:
            raise HTTPException(
                422,
                f"labels: {entry.name} is conditional; give one digit (0 … {CLASSES - 1}) per seed or latent in "
                "'labels'",
            )
        if body.seeds is not None:
            spec = seeds_spec(body.seeds, **layout)
        else:
            for i, row in enumerate(body.latents):
                if len(row) != entry.latent_dim:
                    raise HTTPException(
                        422,
                        f"latents[{i}] has length {len(row)}; {entry.name} takes vectors of length {entry.latent_dim}",
                    )
            spec = latents_spec(np.asarray(body.latents, np.float32), **layout)
        return (replace(spec, labels=tuple(body.labels)) if body.labels else spec), None
    seed = secrets.randbelow(MAX_SEED + 1) if seed is None else seed
    if entry.classes and label is None:
        columns = n or CLASS_COLUMNS
        if columns > MAX_CLASS_COLUMNS:
            raise HTTPException(
                400,
                f"n={n}: without a label, {entry.name} draws its class grid, one row per digit; n is its columns, "
                f"1 … {MAX_CLASS_COLUMNS} (or give label=0 … {CLASSES - 1} for up to {MAX_N} images of one digit)",
            )
        if layout["nrow"] is not None:
            raise HTTPException(
                400, f"nrow={layout['nrow']}: a class grid has one row per digit and n columns; leave nrow out"
            )
        return class_grid_spec(seed, columns, scale=layout["scale"], padding=layout["padding"]), seed
    return seed_spec(seed, n or 16, **layout).labelled(label), seed


def _labels(spec: GridSpec) -> list[int] | None:
    """The digit asked of each image, in order (None: unconditional, or reconstructions)."""
    if spec.source[0] == "classes":
        return [d for d in range(CLASSES) for _ in range(spec.source[2])]
    return list(spec.labels) if spec.labels is not None else None


class GridQuery(BaseModel):
    """Which images and how they are laid out: the query of a grid, validated as a whole."""

    seed: int | None = Field(
        None,
        ge=0,
        le=MAX_SEED,
        description=(
            "integer seed 0 … 2³²−1; image i is row i of default_rng(seed).standard_normal((n, latent_dim)). "
            "Omitted: a random seed, returned in X-Seed (GET grid.png requires it unless mode=reconstruct)"
        ),
    )
    n: int | None = Field(
        None, ge=1, le=MAX_N, description="number of images, 1 … 64 (default 16); a class grid's columns"
    )
    label: int | None = Field(None, ge=0, le=CLASSES - 1, description=LABEL_DOC)
    nrow: int | None = Field(None, ge=1, le=MAX_N, description="images per row (default ⌈√n⌉)")
    scale: int = Field(
        GRID_SCALE,
        ge=1,
        le=MAX_SCALE,
        description=f"nearest-neighbour enlargement of each 28-pixel tile, 1 … {MAX_SCALE}",
    )
    padding: int = Field(GRID_PADDING, ge=0, le=MAX_PADDING, description=f"pixels between tiles, 0 … {MAX_PADDING}")
    mode: Literal["sample", "reconstruct"] = Field(
        "sample",
        description=(
            "sample: decode latents; reconstruct: decode the encodings of 16 fixed MNIST test digits (VAEs only)"
        ),
    )


class ModelChoice(BaseModel):
    model: str = Field(
        max_length=64,
        description=f"model name: {', '.join(VARIANTS)} (or another in the store; GET /api/models lists them)",
    )


class GenerateQuery(GridQuery, ModelChoice):
    """The query of `POST /generate`: a grid of one model (named first), as a PNG or as JSON."""

    format: Literal["png", "json"] = Field(
        "png", description="png: the image; json: the image base64-encoded with its seed(s) and timing"
    )


BODY_DOC = {
    "requestBody": {
        "required": False,
        "description": "optional: {'seeds': [...]} or {'latents': [[...], ...]} instead of a seed in the query",
        "content": {
            "application/json": {"schema": GenerateBody.model_json_schema(ref_template="#/components/schemas/{model}")}
        },
    }
}


async def _body(request: Request) -> GenerateBody | None:
    """The optional JSON body, parsed by GenerateBody only when the request has one (the plain query path reads none);
    errors are FastAPI's 422 with the body's locations."""
    headers = request.headers
    if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
        return None
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return GenerateBody.model_validate_json(raw)
    except ValidationError as e:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)]
        ) from None


@router.post(
    "/generate", responses={**PNG_OR_JSON, **ERRORS}, summary="Generate a grid of samples", openapi_extra=BODY_DOC
)
async def generate(request: Request, service: ServiceDep, q: Annotated[GenerateQuery, Query()]) -> Response:
    """An n-image grid from a seed, a list of seeds, explicit latents, or (VAEs) reconstructions."""
    entry = resolve_model(service.registry, q.model)
    body = await _body(request)
    return await _respond(
        entry, service.cache, service.metrics, q.seed, q.n, q.nrow, q.scale, q.padding, q.mode, q.format, body, q.label
    )


async def _respond(
    entry: ModelEntry,
    cache,
    metrics,
    seed: int | None,
    n: int | None,
    nrow: int | None,
    scale: int,
    padding: int,
    mode: str,
    format: str,
    body: GenerateBody | None,
    label: int | None = None,
) -> Response:
    """The answer to a validated `POST /generate`."""
    spec, used_seed = _spec(entry, seed, n, mode, body, _layout(nrow, scale, padding), label)
    grid = await make_grid(entry, spec, cache, metrics)
    headers = {
        "X-Model": entry.name,
        "X-Model-Version": entry.version,
        "ETag": spec.etag(entry),
        "Server-Timing": grid.server_timing(),
        "Cache-Control": "no-store" if seed is None and mode == "sample" and body is None else "public, max-age=3600",
    }
    if used_seed is not None:
        headers["X-Seed"] = str(used_seed)
    elif spec.source[0] == "seeds":
        headers["X-Seed"] = ",".join(map(str, spec.source[1]))
    if format == "json":
        payload = GridJSON(
            model=entry.name,
            version=entry.version,
            seed=used_seed,
            seeds=list(spec.source[1]) if spec.source[0] == "seeds" else None,
            labels=_labels(spec),
            n=spec.count,
            nrow=spec.nrow,
            scale=scale,
            padding=padding,
            mode=mode,
            png_base64=base64.b64encode(grid.png).decode(),
            cached=grid.cached,
            timing_ms={"decode": round(grid.decode_ms, 3), "render": round(grid.render_ms, 3)},
        )
        return Response(payload.model_dump_json(), media_type="application/json", headers=headers)
    return Response(grid.png, media_type="image/png", headers=headers)


IMMUTABLE = "public, max-age=31536000, immutable"
NameP = Annotated[str, Path(description="model name", max_length=64)]


async def _cached_png(request: Request, entry: ModelEntry, spec: GridSpec, cache, metrics) -> Response:
    etag = spec.etag(entry)
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE, "X-Model": entry.name, "X-Model-Version": entry.version}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    grid = await make_grid(entry, spec, cache, metrics)
    return Response(grid.png, media_type="image/png", headers={**headers, "Server-Timing": grid.server_timing()})


PNG = {
    200: {"content": {"image/png": {}}, "description": "the grid"},
    304: {"description": "not modified (If-None-Match matched the ETag)"},
}


@router.get("/models/{name}/grid.png", responses={**PNG, **ERRORS}, summary="A seed's grid as a cacheable image")
async def grid_png(request: Request, service: ServiceDep, name: NameP, q: Annotated[GridQuery, Query()]) -> Response:
    """The same image `POST /generate` returns for these parameters, for `<img>` tags; immutable per model version."""
    entry = resolve_model(service.registry, name)
    if q.mode == "sample" and q.seed is None:
        raise HTTPException(400, "seed is required: a cacheable grid needs a fixed seed (0 … 2³²−1)")
    spec, _ = _spec(
        entry, q.seed if q.mode == "sample" else None, q.n, q.mode, None, _layout(q.nrow, q.scale, q.padding), q.label
    )
    return await _cached_png(request, entry, spec, service.cache, service.metrics)


@router.get(
    "/models/{name}/interpolate.png",
    responses={**PNG, **ERRORS},
    summary="Decodings along the path between two seeds' latents",
)
async def interpolate_png(
    request: Request,
    registry: RegistryDep,
    cache: CacheDep,
    metrics: MetricsDep,
    name: NameP,
    seed_a: Annotated[int, Query(ge=0, le=MAX_SEED, description="start seed")],
    seed_b: Annotated[int, Query(ge=0, le=MAX_SEED, description="end seed")],
    steps: Annotated[int, Query(ge=2, le=16, description="images in the row, 2 … 16")] = 10,
    scale: ScaleQ = 3,
    padding: PaddingQ = 2,
    label: LabelQ = None,
) -> Response:
    """One row: slerp between the first latents of two seeds for GANs, a straight line for the 2-d VAEs; a
    conditional model's for one digit."""
    entry = resolve_model(registry, name)
    _require_label(entry, label)
    spec = interpolation_spec(seed_a, seed_b, steps, scale=scale, padding=padding).labelled(label)
    return await _cached_png(request, entry, spec, cache, metrics)


@router.get(
    "/models/{name}/manifold.png", responses={**PNG, **ERRORS}, summary="A VAE's 2-d latent plane decoded on a grid"
)
async def manifold_png(
    request: Request,
    registry: RegistryDep,
    cache: CacheDep,
    metrics: MetricsDep,
    name: NameP,
    size: Annotated[int, Query(ge=2, le=20, description="decodings per side, 2 … 20")] = 15,
    scale: ScaleQ = 1,
    padding: PaddingQ = 0,
    label: LabelQ = None,
) -> Response:
    """Decodings at the Gaussian quantiles 5 % … 95 % on each latent axis, as the CVAE tutorial plots them; a
    conditional VAE's for one digit."""
    entry = resolve_model(registry, name)
    _require_label(entry, label)
    if entry.latent_dim != 2:
        raise HTTPException(
            400, f"the latent manifold needs a 2-d latent space; {name!r} has {entry.latent_dim} (VAEs have 2)"
        )
    spec = manifold_spec(size, scale=scale, padding=padding).labelled(label)
    return await _cached_png(request, entry, spec, cache, metrics)
