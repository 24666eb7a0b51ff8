"""A crowd campaign's study link (app/ratings/crowd.py): a participant a platform sends arrives at /study/<id> with
the platform's ids, reads what the study asks and pays, consents, and walks their planned steps — pair tasks,
known-answer checks, "real or generated?" images — to a completion code and the platform's completion URL; failed
checks screen them out politely with a code of their own. A returning participant (same id, any session) continues
where they stopped; after completion the link shows the code again and hands out nothing. Usable without
JavaScript; `/api/study/<id>/...` is the same walk as JSON."""

from __future__ import annotations

import random
import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field, ValidationError

from app.api.deps import MetricsDep, RegistryDep, errors
from app.api.pages import render
from app.api.rate_pages import QUESTION_WORDS
from app.api.rater_session import RatingsDep, rater_id, set_rater_cookie
from app.api.rating_api import VoteIn, cast, task_view
from app.api.refusals import REFUSALS, as_http
from app.ratings.crowd import Crowd, LinkError, completion_link, generated_image, link_ids, plan_steps, real_image
from app.ratings.gold import GOLD, real_digits
from app.ratings.raters import Ratings
from app.ratings.scheduling import RANDOM, choose_task
from app.store import Participant
from arena.latents import MAX_SEED

router = APIRouter(tags=["crowd"], responses=errors(404, 422, 503))
CampaignId = Annotated[str, PathParam(max_length=64, description="the campaign file's id")]
PREVIEW = "preview"  # a researcher walking the campaign: their answers never count, and they see no real code


def campaign(ratings: Ratings, cid: str) -> Crowd:
    crowd = ratings.crowds.get(cid)
    if crowd is None:
        raise HTTPException(404, f"no study {cid[:64]!r} runs here; check the link the platform gave you")
    return crowd


def _no_study(request: Request, e: HTTPException) -> Response:
    """The page a participant gets from a link to no study here (the JSON routes answer 404 as JSON)."""
    return render(request, "error.html", {"title": "No such study", "message": e.detail}, status=e.status_code)


def _page(request: Request, crowd: Crowd, title: str, message: str, status: int = 200, **extra: Any) -> Response:
    return render(
        request, "study_note.html", {"study": crowd, "title": title, "message": message, **extra}, status=status
    )


def _me(request: Request, ratings: Ratings, crowd: Crowd) -> Participant:
    """The participant in the rater cookie, in this campaign (401: open the platform's link first)."""
    rid = rater_id(request, ratings)
    found = ratings.store.participant_of(rid) if rid else None
    if found is None or found.campaign != crowd.id:
        raise HTTPException(401, "no participant session for this study: open the study from the platform's link")
    return found


@router.get("/study/{cid}", response_class=HTMLResponse, include_in_schema=False)
def study_link(request: Request, ratings: RatingsDep, cid: CampaignId) -> Response:
    try:
        crowd = campaign(ratings, cid)
    except HTTPException as e:
        return _no_study(request, e)
    try:
        ids = link_ids(crowd, dict(request.query_params))
    except LinkError as e:
        return _page(request, crowd, e.title, str(e), e.status)
    known = ratings.store.participant(crowd.id, ids["participant"])
    if known is not None:  # a return: any session id continues where they stopped
        ratings.store.seen(known, ids.get("session"))
        return _to_next(request, ratings, crowd, known)
    if ratings.store.places_taken(crowd.id, crowd.timeout_s) >= crowd.places:
        return _page(request, crowd, "This study is full", _full(crowd), 409)
    return render(request, "study_start.html", {"study": crowd, "ids": dict(request.query_params)})


def _full(crowd: Crowd) -> str:
    return (
        f"All {crowd.places} places are taken (a place frees when a session is left for "
        f"{crowd.session_timeout_minutes:g} minutes). Please return the study on the platform; you have not been "
        "charged any time."
    )


@router.post("/study/{cid}/start", include_in_schema=False)
async def study_start(request: Request, ratings: RatingsDep, cid: CampaignId) -> Response:
    try:
        crowd = campaign(ratings, cid)
    except HTTPException as e:
        return _no_study(request, e)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        ids = link_ids(crowd, form)
    except LinkError as e:
        return _page(request, crowd, e.title, str(e), e.status)
    if form.get("consent") != "yes":
        return render(
            request,
            "study_start.html",
            {"study": crowd, "ids": form, "notices": ["Please tick the consent box to take part."]},
            status=400,
        )
    known = ratings.store.participant(crowd.id, ids["participant"])
    if known is None:
        if ratings.store.places_taken(crowd.id, crowd.timeout_s) >= crowd.places:
            return _page(request, crowd, "This study is full", _full(crowd), 409)
        known = ratings.store.join(
            crowd.id, crowd.platform, ids, plan_steps(crowd, random.Random(secrets.randbits(64)))
        )
    return _to_next(request, ratings, crowd, known)


@router.get("/study/{cid}/preview", include_in_schema=False)
def study_preview(request: Request, ratings: RatingsDep, cid: CampaignId) -> Response:
    """The researcher's walk through the campaign as a participant sees it; nothing they answer counts."""
    try:
        crowd = campaign(ratings, cid)
    except HTTPException as e:
        return _no_study(request, e)
    who = {"participant": f"{PREVIEW}-{secrets.token_hex(6)}"}
    steps = plan_steps(crowd, random.Random(secrets.randbits(64)))
    found = ratings.store.join(crowd.id, crowd.platform, who, steps, status=PREVIEW)
    ratings.store.exclude(found.rater_id, "preview: a researcher's walk through the campaign")
    return _to_next(request, ratings, crowd, found)


def _to_next(request: Request, ratings: Ratings, crowd: Crowd, participant: Participant) -> Response:
    response = RedirectResponse(f"/study/{crowd.id}/next", status_code=303)
    set_rater_cookie(request, response, ratings, participant.rater_id)
    return response


def next_step(ratings: Ratings, registry, crowd: Crowd, p: Participant) -> dict[str, Any]:
    """Where the participant stands: their next task (issued now, or the one pending), or the end — completed with
    its code and link, or screened out with its own code. Settles the participant the moment they reach an end."""
    store, rid = ratings.store, p.rater_id
    rater = store.rater(rid)
    if p.status == "active" and crowd.checks and rater.gold_failed >= crowd.screen_out_failures:
        checks = rater.gold_passed + rater.gold_failed
        store.settle(p, "screened_out", f"screened out: {rater.gold_failed} of {checks} known-answer checks failed")
        p = store.participant(p.campaign, p.participant_id)
    done = store.answered_tasks(rid)
    if p.status == "screened_out":
        return _end(crowd, p, "screened_out", crowd.screen_out_code, done)
    if done >= len(p.steps):
        if p.finished_at is None:
            store.settle(p, "completed" if p.status == "active" else p.status)
        code = None if p.status == PREVIEW else crowd.completion_code
        return _end(crowd, p, "completed", code, done)
    if store.paused():
        raise HTTPException(503, "the study is paused by its organisers; please come back in a few minutes")
    store.seen(p)
    task = store.pending_task(rid) or _issue(ratings, registry, crowd, p, p.steps[done])
    return {"step": "task", "done": done, "of": len(p.steps), "task": task_view(ratings, registry, rid, task)}


def _end(crowd: Crowd, p: Participant, how: str, code: str | None, done: int) -> dict[str, Any]:
    link = completion_link(crowd, code, p.participant_id, p.assignment_id) if code else None
    return {"step": how, "done": done, "of": len(p.steps), "code": code, "redirect": link, "preview": code is None}


def _issue(ratings: Ratings, registry, crowd: Crowd, p: Participant, step: str):
    settings, rid = ratings.settings, p.rater_id
    if step == "gold":
        return ratings.store.issue(
            rid, "gold", RANDOM.sample(GOLD, 2), RANDOM.randrange(MAX_SEED), settings.rate_n, settings.task_ttl_s
        )
    if step == "pair":
        kind, models, seed = choose_task(ratings, registry, rid, pairs_only=True)
        return ratings.store.issue(rid, kind, models, seed, settings.rate_n, settings.task_ttl_s)
    served = {m: registry.entries[m].classes for m in registry.available()}
    shown = [(models[0], seed) for models, seed in ratings.store.shown(rid, "real")]
    if step == "generated" and served:
        source, image, digit = generated_image(RANDOM, crowd, served, shown)
    else:
        source, image, digit = real_image(RANDOM, [int(x) for x in real_digits()[1]], served, shown)
    return ratings.store.issue(rid, "real", [source], image, 1, settings.task_ttl_s, digit=digit)


@router.get("/study/{cid}/next", response_class=HTMLResponse, include_in_schema=False)
def study_next(request: Request, ratings: RatingsDep, registry: RegistryDep, cid: CampaignId) -> Response:
    try:
        crowd = campaign(ratings, cid)
    except HTTPException as e:
        return _no_study(request, e)
    try:
        p = _me(request, ratings, crowd)
        step = next_step(ratings, registry, crowd, p)
    except (HTTPException, *REFUSALS) as e:
        err = as_http(e)
        return _page(request, crowd, "This study cannot continue right now", err.detail, err.status_code)
    context = {"study": crowd, "step": step}
    if step["step"] != "task":
        return render(request, "study_end.html", context)
    task = step["task"]
    if task["kind"] == "real":
        return render(request, "study_real.html", context)
    return render(request, "rate.html", {**context, "task": task, "undo_window": 0, **question_words()})


def question_words() -> dict[str, Any]:
    return {"questions_pair": QUESTION_WORDS["pair"], "questions_four": QUESTION_WORDS["four"]}


@router.post("/study/{cid}/vote", include_in_schema=False)
def study_vote(
    request: Request,
    ratings: RatingsDep,
    metrics: MetricsDep,
    cid: CampaignId,
    task_id: Annotated[str, Form(max_length=64)],
    overall: Annotated[str, Form(max_length=10)],
    legibility: Annotated[str, Form(max_length=10)],
    noise: Annotated[str, Form(max_length=10)],
    elapsed_ms: Annotated[int, Form(ge=0, le=86_400_000)] = 0,
) -> Response:
    try:
        crowd = campaign(ratings, cid)
    except HTTPException as e:
        return _no_study(request, e)
    try:
        _me(request, ratings, crowd)
        body = VoteIn(task_id=task_id, overall=overall, legibility=legibility, noise=noise, elapsed_ms=elapsed_ms)
        cast(request, ratings, metrics, body)
    except (ValidationError, HTTPException, *REFUSALS) as e:
        return _not_stored(request, crowd, e)
    return RedirectResponse(f"/study/{cid}/next", status_code=303)


class RealIn(BaseModel):
    task_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$", description="a task issued to you")
    answer: Literal["real", "generated"] = Field(description="what you took the image for")
    elapsed_ms: int = Field(0, ge=0, le=86_400_000, description="milliseconds you looked at it")


def answer_real(request: Request, ratings: Ratings, crowd: Crowd, body: RealIn) -> int:
    p = _me(request, ratings, crowd)
    if ratings.store.paused():
        raise HTTPException(503, "the study is paused by its organisers; your answer was not stored")
    ratings.store.answer_real(p.rater_id, body.task_id, body.answer == "real", body.elapsed_ms)
    return ratings.store.answered_tasks(p.rater_id)


@router.post("/study/{cid}/real", include_in_schema=False)
def study_real(
    request: Request,
    ratings: RatingsDep,
    cid: CampaignId,
    task_id: Annotated[str, Form(max_length=64)],
    answer: Annotated[str, Form(max_length=10)],
    elapsed_ms: Annotated[int, Form(ge=0, le=86_400_000)] = 0,
) -> Response:
    try:
        crowd = campaign(ratings, cid)
    except HTTPException as e:
        return _no_study(request, e)
    try:
        answer_real(request, ratings, crowd, RealIn(task_id=task_id, answer=answer, elapsed_ms=elapsed_ms))
    except (ValidationError, HTTPException, *REFUSALS) as e:
        return _not_stored(request, crowd, e)
    return RedirectResponse(f"/study/{cid}/next", status_code=303)


def _not_stored(request: Request, crowd: Crowd, e: Exception) -> Response:
    """The page a form answer the study refused gets: why, and the way back to the participant's next step."""
    status, why = (422, _words(e)) if isinstance(e, ValidationError) else (as_http(e).status_code, as_http(e).detail)
    return _page(request, crowd, "Your answer was not stored", why, status, next=f"/study/{crowd.id}/next")


def _words(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())


@router.get("/api/study/{cid}/next", summary="Your next step in a crowd study: a task, or the end with its code")
def api_study_next(request: Request, ratings: RatingsDep, registry: RegistryDep, cid: CampaignId) -> dict[str, Any]:
    crowd = campaign(ratings, cid)
    return next_step(ratings, registry, crowd, _me(request, ratings, crowd))


@router.post(
    "/api/study/{cid}/real",
    status_code=201,
    summary="Answer a 'real or generated?' task issued to you",
    responses=errors(401, 403, 404, 409, 410, 422, 503),
)
def api_study_real(request: Request, ratings: RatingsDep, cid: CampaignId, body: RealIn) -> dict[str, int]:
    return {"answered": answer_real(request, ratings, campaign(ratings, cid), body)}
