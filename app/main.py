"""Builds the FastAPI app: lifespan (model loading), routers, middleware, error format."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pathlib import Path

from app.api import generate, health, models, pages, ratings
from app.core.cache import ByteLRU
from app.core.metrics import Metrics
from app.core.middleware import BodyLimit, ImmutableResponses, Observe
from app.core.settings import Settings
from app.registry import Registry

VERSION = "0.1.0"


def _validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's error list, with each message naming the parameter and the value that was sent."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        where = ".".join(loc[1:]) if len(loc) > 1 else ".".join(loc)
        value = err.get("input")
        shown = value if isinstance(value, str) else repr(value) if not isinstance(value, (dict, list)) else f"{type(value).__name__} of {len(value)}"
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        msg = f"{where}={shown}: {err.get('msg')}" if "input" in err else f"{where}: {err.get('msg')}"
        out.append({"loc": err.get("loc"), "msg": msg, "type": err.get("type")})
    return jsonable_encoder(out)


def _open_ratings(settings: Settings) -> ratings.Ratings | None:
    """Migrate and open the vote store; if that fails, rating answers 503 and everything else still serves."""
    from app.store import VoteStore, migrate

    try:
        migrate(settings.database_url)
        store = VoteStore(settings.database_url)
    except Exception as e:  # a bad URL, an unreachable server, a read-only folder
        logging.getLogger("arena").error(json.dumps({"event": "ratings_disabled", "reason": f"{type(e).__name__}: {str(e)[:200]}"}))
        return None
    result = ratings.Ratings(settings, store)
    if result.ephemeral_key:
        logging.getLogger("arena").warning(json.dumps({"event": "ephemeral_secret_key", "hint": "set ARENA_SECRET_KEY so rater cookies survive restarts"}))
    return result


def _load_and_freeze(registry: Registry) -> None:
    """Load the models, then move everything alive into the collector's permanent generation.

    TensorFlow and Keras leave ~360,000 Python objects; a full collection over them stalls every request for
    ~230 ms (it was the p99 under load). Frozen, they are never scanned again; new garbage still is.
    """
    registry.load_all()
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        registry = Registry(settings.models_store, settings.batch_shapes, settings.batch_window_ms / 1000, settings.max_batch, observe=lambda m, n: metrics.batch_size.labels(m).observe(n))
        app.state.registry = registry
        # Load in the background so /healthz answers and /readyz can say 503 while models warm up.
        loading = asyncio.get_running_loop().run_in_executor(registry.executor, _load_and_freeze, registry)
        app.state.ratings = _open_ratings(settings)
        try:
            yield
        finally:
            await loading
            registry.close()

    app = FastAPI(
        title="deconv-arena",
        version=VERSION,
        description="Transposed vs resize-convolution generators on MNIST: sample grids, comparisons and human ratings.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings, app.state.metrics = settings, metrics
    app.state.cache = ByteLRU(settings.cache_bytes)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404 and "text/html" in request.headers.get("accept", "") and not request.url.path.startswith("/api"):
            return pages.render(request, "error.html", {"nav": "", "title": "Page not found", "message": f"Nothing lives at {request.url.path[:100]}."}, status=404)
        return await http_exception_handler(request, exc)

    for router in (generate.router, models.router, health.router, pages.router, ratings.router):
        app.include_router(router)
    app.mount("/static/apidocs", StaticFiles(packages=[("fastapi_offline", "static")]), name="apidocs")
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    known = {"gan_transpose", "gan_upsample", "vae_transpose", "vae_upsample"}
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ImmutableResponses, max_bytes=settings.response_cache_bytes)
    app.add_middleware(Observe, metrics=metrics, known_models=known)
    return app


