"""The organisers' routes, behind ARENA_ADMIN_TOKEN: export every vote and every crowd participant, delete a rater or
a participant on request, pause collection."""

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


PARTICIPANT_FIELDS = (
    "campaign",
    "platform",
    "participant_id",
    "study_id",
    "session_id",
    "assignment_id",
    "status",
    "started_at",
    "finished_at",
    "tasks_planned",
    "tasks_done",
    "time_on_task_s",
    "checks_passed",
    "checks_failed",
    "included",
    "why",
)


def participant_rows(ratings, campaign: str | None) -> list[dict[str, Any]]:
    """One row per participant, for paying and for the methods section: ids, progress, time on task (the answers'
    own timings), known-answer checks, and whether their answers count and why not."""
    store = ratings.store
    raters = {r.id: r for r in store.raters()}
    on_task = store.time_on_task_ms()
    rows = []
    for p in store.participants(campaign):
        rater = raters[p.rater_id]
        why = rater.excluded or (
            "flagged: too many known-answer checks failed" if rater.flagged and ratings.settings.exclude_flagged else ""
        )
        rows.append(
            {
                "campaign": p.campaign,
                "platform": p.platform,
                "participant_id": p.participant_id,
                "study_id": p.study_id or "",
                "session_id": p.session_id or "",
                "assignment_id": p.assignment_id or "",
                "status": p.status,
                "started_at": p.started_at.isoformat() + "Z",
                "finished_at": p.finished_at.isoformat() + "Z" if p.finished_at else "",
                "tasks_planned": len(p.steps),
                "tasks_done": store.answered_tasks(p.rater_id),
                "time_on_task_s": round(on_task.get(p.rater_id, 0) / 1000, 1),
                "checks_passed": rater.gold_passed,
                "checks_failed": rater.gold_failed,
                "included": not why,
                "why": why,
            }
        )
    return rows


@router.get(
    "/api/admin/participants",
    summary="Every crowd participant: ids, progress, time on task, checks, included or not and why (CSV or JSON)",
    responses={**ADMIN_ERRORS, 200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def admin_participants(
    _: AdminDep,
    ratings: RatingsDep,
    campaign: Annotated[str | None, Query(max_length=64, description="one campaign's id; all when omitted")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="json or csv")] = "json",
) -> Response:
    if campaign is not None and campaign not in ratings.crowds:
        known = ", ".join(sorted(ratings.crowds)) or "none (set ARENA_CROWD_CAMPAIGNS)"
        raise HTTPException(404, f"campaign={campaign!r} is not a crowd campaign here; known: {known}")
    rows = participant_rows(ratings, campaign)
    if format == "json":
        summary: dict[str, dict[str, int]] = {}
        for row in rows:
            counts = summary.setdefault(row["campaign"], {"participants": 0, "included": 0})
            counts["participants"] += 1
            counts["included"] += row["included"]
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        for cid, counts in summary.items():
            crowd = ratings.crowds.get(cid)
            if crowd is not None:
                counts["places"], counts["places_taken"] = (
                    crowd.places,
                    ratings.store.places_taken(cid, crowd.timeout_s),
                )
        return JSONResponse({"summary": summary, "participants": rows})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, PARTICIPANT_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    name = f"participants-{campaign}.csv" if campaign else "participants.csv"
    return Response(
        buf.getvalue(), media_type="text/csv", headers={"Content-Disposition": f"attachment; filename={name}"}
    )


@router.post(
    "/api/admin/participants/{campaign}/{participant}/delete",
    summary="Delete a crowd participant on request: their ids, answers and tasks",
    responses={**ADMIN_ERRORS, **errors(404)},
)
def admin_delete_participant(
    _: AdminDep,
    ratings: RatingsDep,
    campaign: Annotated[str, PathParam(max_length=64)],
    participant: Annotated[str, PathParam(max_length=64)],
) -> dict[str, Any]:
    found = ratings.store.participant(campaign, participant)
    if found is None:
        raise HTTPException(404, f"no participant {participant!r} in campaign {campaign!r}")
    return {"deleted_answers": ratings.store.delete_rater(found.rater_id)}


@router.post(
    "/api/admin/participants/{campaign}/{participant}/exclude",
    summary="Leave a crowd participant's answers out of every result, saying why (they stay stored and exported)",
    responses={**ADMIN_ERRORS, **errors(404)},
)
def admin_exclude_participant(
    _: AdminDep,
    ratings: RatingsDep,
    campaign: Annotated[str, PathParam(max_length=64)],
    participant: Annotated[str, PathParam(max_length=64)],
    why: Annotated[str, Query(min_length=3, max_length=100, description="the reason, shown in the export")],
) -> dict[str, Any]:
    found = ratings.store.participant(campaign, participant)
    if found is None:
        raise HTTPException(404, f"no participant {participant!r} in campaign {campaign!r}")
    ratings.store.exclude(found.rater_id, f"excluded by the organisers: {why}")
    return {"excluded": participant, "why": why}
