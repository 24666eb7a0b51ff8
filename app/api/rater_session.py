"""The rater behind a request: the shared Ratings as a dependency (503 without a database), the signed cookie (401)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response

from app.ratings.raters import Ratings

COOKIE = "arena_rater"
COOKIE_MAX_AGE_S = 180 * 24 * 3600


async def get_ratings(request: Request) -> Ratings:
    ratings = getattr(request.app.state, "ratings", None)
    if ratings is None:
        problem = getattr(request.app.state, "ratings_problem", None) or "see the server log"
        raise HTTPException(503, f"the rating database is not available: {problem}; image generation still works")
    return ratings


RatingsDep = Annotated[Ratings, Depends(get_ratings)]


def rater_id(request: Request, ratings: Ratings) -> str | None:
    return ratings.rater_in(request.cookies.get(COOKIE))


def require_rater(request: Request, ratings: Ratings) -> str:
    rid = rater_id(request, ratings)
    if rid is None:
        raise HTTPException(401, "no rater session: open /rate and accept the instructions first")
    return rid


def set_rater_cookie(request: Request, response: Response, ratings: Ratings, rid: str) -> None:
    cookie, secure = ratings.sign(rid), request.url.scheme == "https"
    response.set_cookie(COOKIE, cookie, max_age=COOKIE_MAX_AGE_S, httponly=True, samesite="lax", secure=secure)
