"""Builds the FastAPI app: lifespan (model loading), routers, middleware, error format."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from app.api import admin, download, generate, health, model_info, pages, rate_pages, rating_api, refusals, study_pages
from app.core.cache import ByteLRU
from app.core.middleware import BodyLimit, ImmutableResponses, Observe
from app.core.prometheus import Metrics
from app.core.settings import Settings
from app.ratings.analysis import keep_results_fresh
from app.ratings.raters import Ratings
from app.serving.catalogue import KNOWN_MODELS
from app.serving.registry import Registry

VERSION = "0.1.0"


def _validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's error list, with each message naming the parameter and the value that was sent."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        where = ".".join(loc[1:]) if len(loc) > 1 else ".".join(loc)
        # a missing field has no value; a query model's error carries the whole query there instead
        value = None if err.get("type") == "missing" else err.get("input")
        shown = (
            value
            if isinstance(value, str)
            else repr(value)
            if not isinstance(value, (dict, list))
            else f"{type(value).__name__} of {len(value)}"
        )
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        msg = f"{where}={shown}: {err.get('msg')}" if "input" in err else f"{where}: {err.get('msg')}"
        out.append({"loc": err.get("loc"), "msg": msg, "type": err.get("type")})
    return jsonable_encoder(out)


def _open_ratings(settings: Settings) -> Ratings:
    """Migrate and open the vote store; raises what the database raised."""
    from app.store import VoteStore, migrate

    migrate(settings.database_url)
    result = Ratings(settings, VoteStore(settings.database_url))
    if result.ephemeral_key:
        logging.getLogger("arena").warning(
            json.dumps(
                {"event": "ephemeral_secret_key", "hint": "set ARENA_SECRET_KEY so rater cookies survive restarts"}
            )
        )
    return result


RATINGS_RETRY_MAX_S = 30.0


def _keep_opening_ratings(
    app: FastAPI, settings: Settings, stop: threading.Event, tried: threading.Event, first_delay_s: float = 1.0
) -> None:
    """Until the vote store opens: try again with a growing pause, and say in app.state why rating is off.

    A database that is not reachable when an instance starts (PostgreSQL still starting, a network blip) must
    not disable rating for the instance's whole life; generation serves meanwhile.
    """
    log, delay, attempt = logging.getLogger("arena"), first_delay_s, 0
    while True:
        attempt += 1
        try:
            app.state.ratings = _open_ratings(settings)
        except Exception as e:  # a bad URL, an unreachable server, a read-only folder
            reason = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            app.state.ratings_problem = (
                f"{reason} (attempt {attempt}; retrying every {min(delay, RATINGS_RETRY_MAX_S):.0f} s)"
            )
            log.error(
                json.dumps({"event": "ratings_unavailable", "attempt": attempt, "retry_in_s": delay, "reason": reason})
            )
        else:
            if attempt > 1:
                log.warning(json.dumps({"event": "ratings_available", "attempt": attempt}))
            app.state.ratings_problem = None
            tried.set()
            return
        tried.set()
        if stop.wait(delay):
            return
        delay = min(delay * 2, RATINGS_RETRY_MAX_S)


def _load_and_freeze(registry: Registry) -> None:
    """Load the models, then move everything alive into the collector's permanent generation.

    TensorFlow and Keras leave ~360,000 Python objects; a full collection over them stalls every request for
    ~230 ms (it was the p99 under load). Frozen, they are never scanned again; new garbage still is.
    """
    registry.load_all()
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, registry: Registry | None = None) -> FastAPI:
    """The service. With `registry`, an already built one is served (several apps can share one loaded registry, as
    the tests do); the app then neither loads nor closes it. Without, the lifespan builds, loads and closes its own."""
    settings = settings or Settings()
    metrics = Metrics()
    app = FastAPI(
        title="deconv-arena",
        version=VERSION,
        description=(
            "Transposed vs resize-convolution generators on MNIST: sample grids, comparisons and human ratings."
        ),
        lifespan=_lifespan(settings, metrics, registry),
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings, app.state.metrics = settings, metrics
    app.state.cache = ByteLRU(settings.cache_bytes)
    _add_error_handlers(app)
    _add_routes(app)
    known = set(KNOWN_MODELS)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ImmutableResponses, max_bytes=settings.response_cache_bytes)
    app.add_middleware(Observe, metrics=metrics, known_models=known)
    return app


def _lifespan(settings: Settings, metrics: Metrics, registry: Registry | None):
    """The app's lifespan: the registry (built, loaded and closed here unless given), and the vote store opened."""
    owned = registry is None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        nonlocal registry
        if owned:
            registry = Registry(
                settings.models_store,
                settings.batch_shapes,
                settings.batch_window_ms / 1000,
                settings.max_batch,
                decoders=settings.decode_threads,
            )
        observer = lambda m, n: metrics.batch_size.labels(m).observe(n)  # noqa: E731
        registry.observers.append(observer)
        app.state.registry = registry
        # Load in the background so /healthz answers and /readyz can say 503 while models warm up.
        loop = asyncio.get_running_loop()
        loading = loop.run_in_executor(registry.executor, _load_and_freeze, registry) if owned else loop.create_future()
        if not owned:
            loading.set_result(None)
        app.state.models_loaded = False
        loading.add_done_callback(lambda f: setattr(app.state, "models_loaded", f.exception() is None))
        # the first visitor of the comparison page should not wait for its hundred charts to be built
        warm = threading.Thread(target=pages.warm_charts, args=(registry,), name="warm-charts", daemon=True)
        loading.add_done_callback(lambda f: f.exception() is None and warm.start())
        # The first attempt runs before serving (so a healthy start has rating on at once); later ones in a thread.
        stop, tried = threading.Event(), threading.Event()
        app.state.ratings, app.state.ratings_problem = None, "opening the vote store"
        threading.Thread(
            target=_keep_opening_ratings, args=(app, settings, stop, tried), name="ratings-open", daemon=True
        ).start()
        await asyncio.get_running_loop().run_in_executor(None, tried.wait)
        if settings.results_ttl_s > 0:  # the results page serves the latest analysis; this thread keeps it fresh
            threading.Thread(
                target=keep_results_fresh,
                args=(app.state, stop, settings.results_ttl_s),
                name="results-refresh",
                daemon=True,
            ).start()
        try:
            yield
        finally:
            stop.set()
            await loading
            registry.observers.remove(observer)
            if owned:
                registry.close()

    return lifespan


def _add_error_handlers(app: FastAPI) -> None:
    """The error format: validation errors naming the value sent, HTML 404 pages, and the domain refusals."""

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException):
        if (
            exc.status_code == 404
            and "text/html" in request.headers.get("accept", "")
            and not request.url.path.startswith("/api")
        ):
            return pages.render(
                request,
                "error.html",
                {"nav": "", "title": "Page not found", "message": f"Nothing lives at {request.url.path[:100]}."},
                status=404,
            )
        return await http_exception_handler(request, exc)

    for refusal in refusals.REFUSALS:  # the domain's refusals, answered as their HTTP statuses
        app.add_exception_handler(refusal, refusals.handle)


def _add_routes(app: FastAPI) -> None:
    for router in (
        generate.router,
        model_info.router,
        model_info.replicates_router,
        health.router,
        pages.router,
        download.router,
        rate_pages.router,
        rating_api.router,
        study_pages.router,
        admin.router,
    ):
        app.include_router(router)
    app.mount("/static/apidocs", StaticFiles(packages=[("fastapi_offline", "static")]), name="apidocs")
    # the charts' scripts (823 KB) travel gzipped (277 KB); nothing else is compressed (the grids are PNG already)
    vendor = StaticFiles(directory=Path(__file__).parent / "static" / "vendor")
    app.mount("/static/vendor", GZipMiddleware(vendor, minimum_size=1024), name="vendor")
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
