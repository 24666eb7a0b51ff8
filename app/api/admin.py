"""The organisers' routes, behind ARENA_ADMIN_TOKEN: export every vote, delete a rater, pause collection."""

from __future__ import annotations

import csv
import hmac
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from app.api.deps import SettingsDep, errors
from app.api.rater_session import RatingsDep

router = APIRouter(tags=["rating"], responses=errors(401, 413, 422, 503))


async def require_admin(
    settings: SettingsDep, authorization: Annotated[str | None, Header(description="Bearer ARENA_ADMIN_TOKEN")] = None
) -> None:
    token = settings.admin_token.get_secret_value() if settings.admin_token else ""
    if not token:
        raise HTTPException(403, "admin actions are disabled: set ARENA_ADMIN_TOKEN on the server")
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(
            401,
            "admin token missing or wrong (send Authorization: Bearer <ARENA_ADMIN_TOKEN>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


AdminDep = Annotated[None, Depends(require_admin)]
ADMIN_ERRORS = errors(401, 403)
EXPORT_FIELDS = (
    "id",
    "task_id",
    "rater_id",
    "kind",
    "models",
    "seed",
    "n",
    "overall",
    "legibility",
    "noise",
    "elapsed_ms",
    "user_agent",
    "app_version",
    "created_at",
    "rater_flagged",
)


@router.get(
    "/api/admin/export",
    summary="Every vote with its task details (CSV or JSON)",
    responses={**ADMIN_ERRORS, 200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def admin_export(
    _: AdminDep,
    ratings: RatingsDep,
    format: Annotated[Literal["json", "csv"], Query(description="json or csv")] = "json",
) -> Response:
    flagged = {r.id for r in ratings.store.raters() if r.flagged}
    rows = [
        {f: (getattr(v, f) if f != "rater_flagged" else v.rater_id in flagged) for f in EXPORT_FIELDS}
        for v in ratings.store.votes()
    ]
    for row in rows:
        row["created_at"] = row["created_at"].isoformat() + "Z"
    if format == "json":
        return JSONResponse({"votes": rows, "labels": "models[i] was shown as 'ABCD'[i], left to right"})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, EXPORT_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "models": "|".join(row["models"])})
    return Response(
        buf.getvalue(), media_type="text/csv", headers={"Content-Disposition": "attachment; filename=votes.csv"}
    )


@router.post(
    "/api/admin/raters/{rid}/delete",
    summary="Delete a rater and all their votes",
    responses={**ADMIN_ERRORS, **errors(404)},
)
def admin_delete_rater(
    _: AdminDep, ratings: RatingsDep, rid: Annotated[str, PathParam(max_length=64)]
) -> dict[str, Any]:
    return {"deleted_votes": ratings.store.delete_rater(rid)}


@router.post("/api/admin/pause", summary="Pause or resume vote collection", responses=ADMIN_ERRORS)
def admin_pause(
    _: AdminDep, ratings: RatingsDep, paused: Annotated[bool, Query(description="true to pause, false to resume")]
) -> dict[str, bool]:
    ratings.store.set_paused(paused)
    return {"paused": paused}
