"""`GET /api/models` and `GET /api/models/{name}`: what is served, how it was made, how it scores."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from app.api.deps import RegistryDep, errors

router = APIRouter(prefix="/api/models", tags=["models"], responses=errors(413, 422))


@router.get("", summary="Every model with its status, manifest summary and metrics")
def list_models(registry: RegistryDep) -> list[dict[str, Any]]:
    return [e.summary() for e in registry.entries.values()]


@router.get("/{name}", summary="One model's whole manifest", responses=errors(404))
def get_model(registry: RegistryDep, name: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    if name not in registry.entries:
        raise HTTPException(404, f"unknown model {name!r}; models: {', '.join(registry.entries)}")
    entry = registry.get(name)
    return {**entry.summary(), "manifest": entry.manifest or None}


replicates_router = APIRouter(prefix="/api", tags=["models"], responses=errors(413))


@replicates_router.get(
    "/replicates",
    summary="Across training seeds: each metric's mean (95 % interval), each comparison's estimate, a plan's verdict",
    responses=errors(404),
)
def replicate_statistics(registry: RegistryDep) -> dict[str, Any]:
    if not registry.replicate_statistics:
        raise HTTPException(
            404, "no replicate runs in this models store; `deconv-arena train --variant NAME --seeds 1,2,3` makes them"
        )
    return registry.replicate_statistics
