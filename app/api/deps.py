"""FastAPI dependencies as Annotated aliases, and the one way to resolve a model name."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from app.core.cache import ByteLRU
from app.core.metrics import Metrics
from app.core.settings import Settings
from app.registry import ModelEntry, Registry


def get_registry(request: Request) -> Registry:
    return request.app.state.registry


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_cache(request: Request) -> ByteLRU:
    return request.app.state.cache


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


RegistryDep = Annotated[Registry, Depends(get_registry)]
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
        raise HTTPException(503, f"model {name!r} is still loading; retry in a few seconds", headers={"Retry-After": "5"})
    if entry.status != "ready":
        raise HTTPException(503, f"model {name!r} is unavailable: {entry.reason}")
    return entry
