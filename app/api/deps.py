"""FastAPI dependencies as Annotated aliases, and the one way to resolve a model name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel

from app.core.cache import ByteLRU
from app.core.prometheus import Metrics
from app.core.settings import Settings
from app.serving.catalogue import ModelEntry
from app.serving.registry import Registry


# Accessors are `async def`: FastAPI runs a plain `def` dependency on its thread pool, one hop each.
async def get_registry(request: Request) -> Registry:
    return request.app.state.registry


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_cache(request: Request) -> ByteLRU:
    return request.app.state.cache


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


@dataclass(frozen=True)
class Service:
    """What a hot route needs, in one dependency: the models, the image cache and the metrics."""

    registry: Registry
    cache: ByteLRU
    metrics: Metrics


async def get_service(request: Request) -> Service:
    state = request.app.state
    return Service(state.registry, state.cache, state.metrics)


RegistryDep = Annotated[Registry, Depends(get_registry)]
ServiceDep = Annotated[Service, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
CacheDep = Annotated[ByteLRU, Depends(get_cache)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def resolve_model(registry: Registry, name: str) -> ModelEntry:
    """404 for a name we do not know (listing the ones we do), 503 for a known model that cannot serve."""
    if name not in registry.entries:
        known = ", ".join(f"{n} ({e.status})" for n, e in registry.entries.items())
        raise HTTPException(404, f"unknown model {name!r}; models: {known}")
    entry = registry.get(name)
    if entry.status == "loading":
        raise HTTPException(
            503, f"model {name!r} is still loading; retry in a few seconds", headers={"Retry-After": "5"}
        )
    if entry.status != "ready":
        raise HTTPException(503, f"model {name!r} is unavailable: {entry.reason}")
    return entry


class ErrorOut(BaseModel):
    """Every error: `detail` names the value and what is accepted (a list for request validation errors)."""

    detail: str | list[dict[str, Any]]


_MEANING = {
    304: "not modified (If-None-Match matched the ETag)",
    400: "a request that cannot apply to this model",
    401: "no rater session, or a missing/wrong admin token",
    403: "not yours, or admin disabled",
    404: "no such model, task, rater or file",
    409: "already done (one vote per task) or too late to undo",
    410: "the task expired",
    413: "body over the size limit",
    422: "a parameter or body field out of range or malformed",
    429: "too many votes a minute",
    503: "model unavailable or loading, collection paused, or database unavailable",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error codes, all with the ErrorOut body."""
    return {code: {"model": ErrorOut, "description": _MEANING[code]} for code in codes}
