"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import MetricsDep, RegistryDep, errors

router = APIRouter(tags=["health"], responses=errors(413))


@router.get("/healthz", summary="200 while the process lives")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="503 until every loadable model is warm, then 200",
    responses={503: {"description": "still loading"}},
)
async def readyz(request: Request, registry: RegistryDep) -> JSONResponse:
    """Answered on the event loop, so it stays quick when the thread pool is busy.

    Readiness is about the models; whether rating is on (and why not) is reported beside them.
    """
    models: dict[str, Any] = {
        n: {
            "status": e.status,
            "reason": e.reason,
            "batch_shapes": list(e.decoder.buckets) if e.decoder else None,
            "rejected_batch_shapes": e.decoder.rejected_shapes if e.decoder else None,
            "batch_shapes_pending": e.decoder.pending_shapes if e.decoder else [],
        }
        for n, e in registry.entries.items()
    }
    ready = registry.ready
    state = request.app.state
    rating = (
        {"status": "ready"}
        if getattr(state, "ratings", None) is not None
        else {"status": "unavailable", "reason": getattr(state, "ratings_problem", None)}
    )
    return JSONResponse({"ready": ready, "models": models, "rating": rating}, status_code=200 if ready else 503)


@router.get(
    "/metrics", summary="Prometheus metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}}
)
def metrics(registry: RegistryDep, m: MetricsDep) -> Response:
    for status in ("loading", "ready", "unavailable"):
        m.models.labels(status).set(sum(e.status == status for e in registry.entries.values()))
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
