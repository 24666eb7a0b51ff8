"""`POST /generate` and the cacheable `GET` image routes built on it."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError, model_validator

from app.api.deps import Service, ServiceDep, errors, resolve_model
from app.serving.catalogue import ModelEntry
from app.serving.encode import IMMUTABLE, NO_STORE, ONE_HOUR, GridJSON, encode
from app.serving.predict import make_grid
from app.serving.specs import (
    CLASS_COLUMNS,
    MAX_CLASS_COLUMNS,
    ClassGrid,
    GridSpec,
    InterpolationGrid,
    LatentGrid,
    MalformedInput,
    ManifoldGrid,
    ReconstructionGrid,
    SeedGrid,
    SeedListGrid,
    UnfitRequest,
    check_label,
    require_label,
)
from arena.latents import CLASSES, MAX_ABS_LATENT, MAX_SEED
from arena.variants import VARIANTS

router = APIRouter(tags=["generate"])

MAX_N = 64
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
LatentValue = Annotated[float, Field(ge=-MAX_ABS_LATENT, le=MAX_ABS_LATENT, allow_inf_nan=False)]
Label = Annotated[int, Field(ge=0, le=CLASSES - 1)]
LABEL_DOC = (
    f"a conditional model's digit, 0 … {CLASSES - 1}: n images of it. Omitted for a conditional model: its class "
    f"grid, one row per digit with the same latents in every row and n columns (1 … {MAX_CLASS_COLUMNS}, default "
    f"{CLASS_COLUMNS}). Unconditional models take no label"
)
ONE_DIGIT_DOC = f"conditional models (required there): the digit, 0 … {CLASSES - 1}"

MAX_SCALE, MAX_PADDING = 8, 16
GRID_SCALE, GRID_PADDING = 4, 2  # a grid's defaults (POST /generate, grid.png)
SCALE_DOC = f"nearest-neighbour enlargement of each 28-pixel tile, 1 … {MAX_SCALE}"
PADDING_DOC = f"pixels between tiles, 0 … {MAX_PADDING}"


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

    def spec(self, entry: ModelEntry, layout: dict) -> GridSpec:
        """Decode: the body's seeds or latents (and labels) as a grid of this model."""
        check_label(entry, self.labels, "labels")
        if entry.classes and self.labels is None:
            raise MalformedInput(
                f"labels: {entry.name} is conditional; give one digit (0 … {CLASSES - 1}) per seed or latent in "
                "'labels'"
            )
        if self.seeds is not None:
            spec = SeedListGrid(tuple(self.seeds), **layout)
        else:
            for i, row in enumerate(self.latents):
                if len(row) != entry.latent_dim:
                    raise MalformedInput(
                        f"latents[{i}] has length {len(row)}; {entry.name} takes vectors of length {entry.latent_dim}"
                    )
            spec = LatentGrid.of(np.asarray(self.latents, np.float32), **layout)
        return replace(spec, labels=tuple(self.labels)) if self.labels else spec


PNG_OR_JSON = {
    200: {
        "content": {"image/png": {}, "application/json": {"schema": GridJSON.model_json_schema()}},
        "description": "the grid",
    }
}
ERRORS = errors(400, 404, 413, 422, 503)


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
    scale: int = Field(GRID_SCALE, ge=1, le=MAX_SCALE, description=SCALE_DOC)
    padding: int = Field(GRID_PADDING, ge=0, le=MAX_PADDING, description=PADDING_DOC)
    mode: Literal["sample", "reconstruct"] = Field(
        "sample",
        description=(
            "sample: decode latents; reconstruct: decode the encodings of 16 fixed MNIST test digits (VAEs only)"
        ),
    )
    view: Literal["samples", "artefacts"] = Field(
        "samples",
        description=(
            "samples: the images; artefacts: each image's period-2 amplitude per 2×2 block of its 8-bit pixels "
            "(where a checkerboard is), black 0 to white 16 grey levels"
        ),
    )

    @property
    def layout(self) -> dict:
        return {"nrow": self.nrow, "scale": self.scale, "padding": self.padding, "view": self.view}

    def spec(self, entry: ModelEntry, body: GenerateBody | None = None) -> GridSpec:
        """Decode: the grid these parameters (and the optional body) ask of this model; a seed left out is drawn."""
        check_label(entry, self.label)
        if self.mode == "reconstruct":
            return self._reconstruction(entry, body)
        if body is not None:
            if self.seed is not None or self.n is not None or self.label is not None:
                raise UnfitRequest(
                    "give either seed/n/label in the query or a JSON body with seeds/latents/labels, not both"
                )
            return body.spec(entry, self.layout)
        seed = secrets.randbelow(MAX_SEED + 1) if self.seed is None else self.seed
        if entry.classes and self.label is None:
            return self._class_grid(entry, seed)
        return SeedGrid(seed, self.n or 16, **self.layout).labelled(self.label)

    def cacheable_spec(self, entry: ModelEntry) -> GridSpec:
        """Decode for `GET grid.png`: the grid of `spec`, which must not depend on a drawn seed."""
        if self.mode == "sample" and self.seed is None:
            raise UnfitRequest("seed is required: a cacheable grid needs a fixed seed (0 … 2³²−1)")
        return (self if self.mode == "sample" else self.model_copy(update={"seed": None})).spec(entry)

    def _reconstruction(self, entry: ModelEntry, body: GenerateBody | None) -> ReconstructionGrid:
        if body is not None or self.seed is not None:
            raise UnfitRequest("mode=reconstruct decodes the shipped test digits; it takes no seed or body")
        if self.label is not None:
            raise UnfitRequest(
                f"label={self.label}: mode=reconstruct decodes the shipped test digits with their own labels"
            )
        if entry.recon_latents is None:
            raise UnfitRequest(
                f"mode=reconstruct needs a VAE; {entry.name!r} is a "
                f"{str(entry.family).upper()} (VAEs encode digits, GANs cannot)"
            )
        count = len(entry.recon_latents)
        if (self.n or count) > count:
            raise UnfitRequest(
                f"n={self.n}: mode=reconstruct has {count} shipped test digits; accepted n is 1 … {count}"
            )
        return ReconstructionGrid(self.n or count, **self.layout)

    def _class_grid(self, entry: ModelEntry, seed: int) -> ClassGrid:
        columns = self.n or CLASS_COLUMNS
        if columns > MAX_CLASS_COLUMNS:
            raise UnfitRequest(
                f"n={self.n}: without a label, {entry.name} draws its class grid, one row per digit; n is its "
                f"columns, 1 … {MAX_CLASS_COLUMNS} (or give label=0 … {CLASSES - 1} for up to {MAX_N} images of one "
                "digit)"
            )
        if self.nrow is not None:
            raise UnfitRequest(f"nrow={self.nrow}: a class grid has one row per digit and n columns; leave nrow out")
        return ClassGrid(seed, columns, scale=self.scale, padding=self.padding, view=self.view)


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

    def draws_seed(self, body: GenerateBody | None) -> bool:
        """Whether the grid is of a seed the server draws, so that the same request gives another image next time."""
        return self.seed is None and self.mode == "sample" and body is None


class InterpolationQuery(BaseModel):
    """The query of `interpolate.png`: two seeds and the steps between them, one row."""

    seed_a: int = Field(ge=0, le=MAX_SEED, description="start seed")
    seed_b: int = Field(ge=0, le=MAX_SEED, description="end seed")
    steps: int = Field(10, ge=2, le=16, description="images in the row, 2 … 16")
    scale: int = Field(3, ge=1, le=MAX_SCALE, description=SCALE_DOC)
    padding: int = Field(2, ge=0, le=MAX_PADDING, description=PADDING_DOC)
    label: int | None = Field(None, ge=0, le=CLASSES - 1, description=ONE_DIGIT_DOC)

    def spec(self, entry: ModelEntry) -> InterpolationGrid:
        """Decode: the row of this model between the two seeds (a conditional model's for one digit)."""
        require_label(entry, self.label)
        grid = InterpolationGrid(self.seed_a, self.seed_b, self.steps, scale=self.scale, padding=self.padding)
        return grid.labelled(self.label)


class ManifoldQuery(BaseModel):
    """The query of `manifold.png`: how many decodings per side of a 2-d latent plane."""

    size: int = Field(15, ge=2, le=20, description="decodings per side, 2 … 20")
    scale: int = Field(1, ge=1, le=MAX_SCALE, description=SCALE_DOC)
    padding: int = Field(0, ge=0, le=MAX_PADDING, description=PADDING_DOC)
    label: int | None = Field(None, ge=0, le=CLASSES - 1, description=ONE_DIGIT_DOC)

    def spec(self, entry: ModelEntry) -> ManifoldGrid:
        """Decode: this model's latent plane (a conditional VAE's for one digit); only 2-d latents make a plane."""
        require_label(entry, self.label)
        if entry.latent_dim != 2:
            raise UnfitRequest(
                f"the latent manifold needs a 2-d latent space; {entry.name!r} has {entry.latent_dim} (VAEs have 2)"
            )
        return ManifoldGrid(self.size, scale=self.scale, padding=self.padding).labelled(self.label)


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
    spec = q.spec(entry, body)
    grid = await make_grid(entry, spec, service.cache, service.metrics)
    return encode(entry, spec, grid, NO_STORE if q.draws_seed(body) else ONE_HOUR, q.format, tell_seed=True)


async def _cached(request: Request, service: Service, entry: ModelEntry, spec: GridSpec) -> Response:
    """An immutable PNG: 304 when the client holds this ETag, else predicted and encoded."""
    if spec.etag(entry) in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return encode(entry, spec, None, IMMUTABLE)
    return encode(entry, spec, await make_grid(entry, spec, service.cache, service.metrics), IMMUTABLE)


NameP = Annotated[str, Path(description="model name", max_length=64)]
PNG = {
    200: {"content": {"image/png": {}}, "description": "the grid"},
    304: {"description": "not modified (If-None-Match matched the ETag)"},
}


@router.get("/models/{name}/grid.png", responses={**PNG, **ERRORS}, summary="A seed's grid as a cacheable image")
async def grid_png(request: Request, service: ServiceDep, name: NameP, q: Annotated[GridQuery, Query()]) -> Response:
    """The same image `POST /generate` returns for these parameters, for `<img>` tags; immutable per model version."""
    entry = resolve_model(service.registry, name)
    return await _cached(request, service, entry, q.cacheable_spec(entry))


@router.get(
    "/models/{name}/interpolate.png",
    responses={**PNG, **ERRORS},
    summary="Decodings along the path between two seeds' latents",
)
async def interpolate_png(
    request: Request, service: ServiceDep, name: NameP, q: Annotated[InterpolationQuery, Query()]
) -> Response:
    """One row: slerp between the first latents of two seeds for GANs, a straight line for the 2-d VAEs; a
    conditional model's for one digit."""
    entry = resolve_model(service.registry, name)
    return await _cached(request, service, entry, q.spec(entry))


@router.get(
    "/models/{name}/manifold.png", responses={**PNG, **ERRORS}, summary="A VAE's 2-d latent plane decoded on a grid"
)
async def manifold_png(
    request: Request, service: ServiceDep, name: NameP, q: Annotated[ManifoldQuery, Query()]
) -> Response:
    """Decodings at the Gaussian quantiles 5 % … 95 % on each latent axis, as the CVAE tutorial plots them; a
    conditional VAE's for one digit."""
    entry = resolve_model(service.registry, name)
    return await _cached(request, service, entry, q.spec(entry))
