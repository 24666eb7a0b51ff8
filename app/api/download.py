"""Take the comparison with you: the shown grids as one labelled PNG figure, and the page's figures as CSV — the
same seed, image count, zoom, view and models as the comparison page's URL."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from PIL import Image, ImageDraw, ImageFont

from app.api.deps import ServiceDep, errors
from app.api.pages import class_columns, families_shown, parse_models
from app.serving.predict import make_grid
from app.serving.specs import ClassGrid, SeedGrid
from app.views.key_figures import figures_for
from arena.latents import MAX_SEED

router = APIRouter(tags=["pages"], responses=errors(422, 503))
MARGIN, GAP = 16, 12


def _chosen(registry, models: list[str]) -> list[str]:
    """The page's models in its order: every shown family's, or the `models` subset (unknown names dropped)."""
    every = [n for *_, names in families_shown(registry) for n in names]
    return parse_models(models, every, []) or every


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow before 10.1: one fixed size
        return ImageFont.load_default()


@router.get(
    "/compare.png",
    responses={200: {"content": {"image/png": {}}}},
    summary="The comparison page's grids as one labelled figure (for a paper or a slide)",
)
async def comparison_figure(
    request: Request,
    service: ServiceDep,
    seed: Annotated[int, Query(ge=0, le=MAX_SEED, description="the page's seed")] = 2023,
    n: Annotated[int, Query(ge=1, le=64, description="images per model (a conditional model: its class grid)")] = 16,
    zoom: Annotated[int, Query(ge=1, le=8, description="pixels per MNIST pixel")] = 3,
    view: Annotated[Literal["samples", "artefacts"], Query(description="the images, or the artefact view")] = "samples",
    models: Annotated[list[str], Query(description="the page's model subset (default: every model)")] = [],  # noqa: B006
) -> Response:
    """Every chosen model's grid under its name, side by side in rows of four, and a footer that says what it rests
    on: seed, images, view, the app's version, and each model's version and training commit."""
    registry = service.registry
    tiles = []
    for name in _chosen(registry, models):
        entry = registry.entries[name]
        if entry.status != "ready":
            continue
        spec = (
            ClassGrid(seed, class_columns(n), scale=zoom, view=view)
            if entry.classes
            else SeedGrid(seed, n, scale=zoom, view=view)
        )
        grid = await make_grid(entry, spec, service.cache, service.metrics)
        commit = ((entry.manifest or {}).get("git_commit") or "")[:8] or "unknown commit"
        about = f"{name}: model version {entry.version[:8]}, trained at commit {commit}"
        tiles.append((name, Image.open(io.BytesIO(grid.png)).convert("L"), about))
    figure = _figure(tiles, seed, n, view, request.app.version)
    return Response(figure, media_type="image/png", headers=_download("comparison", seed, "png"))


def _figure(tiles: list[tuple[str, Image.Image, str]], seed: int, n: int, view: str, version: str) -> bytes:
    """Rows of at most four grids, each row as tall as its tallest, names above, the footer below."""
    title_font, label_font, small = _font(18), _font(14), _font(11)
    per_row = min(4, max(1, len(tiles)))
    cell_w = max((t.width for _, t, _ in tiles), default=100)
    rows = [tiles[i : i + per_row] for i in range(0, len(tiles), per_row)]
    heights = [max(t.height for _, t, _ in row) + 22 for row in rows]
    width = max(MARGIN * 2 + per_row * cell_w + (per_row - 1) * GAP, 560)
    height = MARGIN * 2 + 30 + sum(h + GAP for h in heights) + 14 * (len(tiles) + 1)
    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    what = "artefact view (signed checkerboard coefficient per 2x2 block)" if view == "artefacts" else "samples"
    draw.text((MARGIN, MARGIN), f"Transposed vs resize-convolution: seed {seed}, {n} images, {what}", 0, title_font)
    y = MARGIN + 30
    for row, h in zip(rows, heights):
        for i, (name, tile, _) in enumerate(row):
            x = MARGIN + i * (cell_w + GAP)
            draw.text((x, y), name, 0, label_font)
            canvas.paste(tile, (x, y + 20))
        y += h + GAP
    lines = [
        f"deconv-arena {version}; every grid decodes the same seed's latents (a conditional model: its class grid)"
    ]
    for k, line in enumerate([*lines, *(v for _, _, v in tiles)]):
        draw.text((MARGIN, y + 14 * k), line, 90, small)
    out = io.BytesIO()
    canvas.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _download(what: str, seed: int, ext: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="deconv-arena-{what}-seed_{seed}.{ext}"'}


@router.get(
    "/compare.csv",
    responses={200: {"content": {"text/csv": {}}}},
    summary="The comparison page's figures per model as CSV",
)
async def comparison_table(
    service: ServiceDep,
    models: Annotated[list[str], Query(description="the page's model subset (default: every model)")] = [],  # noqa: B006
) -> Response:
    """One row per chosen model: its family, operator and every figure the page shows under its grid, as numbers."""
    registry = service.registry
    names = _chosen(registry, models)
    rows, columns = [], ["model", "family", "operator", "version"]
    for name in names:
        entry = registry.entries[name]
        operator = (entry.manifest or {}).get("upsampling")
        row = {"model": name, "family": entry.family, "operator": operator, "version": entry.version[:12]}
        for f in figures_for(entry.manifest, entry.metrics) if entry.manifest else []:
            if f["label"] not in columns:
                columns.append(f["label"])
            row[f["label"]] = f["raw"] if f.get("raw") is not None else f["value"]
        rows.append(row)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        buf.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="deconv-arena-figures.csv"'},
    )
