"""The one place where refusals from below the API (the grids', the vote store's, the scheduler's) become HTTP
statuses."""

from __future__ import annotations

from fastapi import HTTPException, Request, Response
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.ratings.scheduling import NoTaskPossible
from app.serving.specs import GridRefusal, MalformedInput, UnfitRequest
from app.store import (
    DuplicateVote,
    NotYourTask,
    NoVoteToUndo,
    RateLimited,
    StoreError,
    StoreUnavailable,
    TaskExpired,
    UndoTooLate,
    UnknownRater,
    UnknownTask,
)

STATUS: dict[type[Exception], int] = {
    UnfitRequest: 400,
    MalformedInput: 422,
    UnknownRater: 404,
    UnknownTask: 404,
    NoVoteToUndo: 404,
    NotYourTask: 403,
    DuplicateVote: 409,
    UndoTooLate: 409,
    TaskExpired: 410,
    RateLimited: 429,
    StoreUnavailable: 503,
    NoTaskPossible: 503,
}
REFUSALS = (
    GridRefusal,
    StoreError,
    StoreUnavailable,
    NoTaskPossible,
)  # what a route may let through for `handle` to answer


def as_http(exc: Exception) -> HTTPException:
    """The HTTP error a refusal is answered with (an HTTPException as it is)."""
    if isinstance(exc, HTTPException):
        return exc
    if isinstance(exc, StoreUnavailable):
        why = f"the database refused the write: {exc}"
        return HTTPException(503, f"votes cannot be stored right now ({why}); image generation still works")
    # the nearest class with a row; a refusal class without one is a bug, so StopIteration fails it loudly
    status = next(STATUS[c] for c in type(exc).__mro__ if c in STATUS)
    return HTTPException(status, getattr(exc, "detail", str(exc)))


async def handle(request: Request, exc: Exception) -> Response:
    """Exception handler for REFUSALS: answered exactly as the HTTPException of `as_http`, by the app's own handler."""
    on_http_error = request.app.exception_handlers.get(StarletteHTTPException, http_exception_handler)
    return await on_http_error(request, as_http(exc))
