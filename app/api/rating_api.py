"""The rating JSON API: issue a task, vote, undo, the task's images, the results; the steps the HTML forms reuse."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app.api.deps import CacheDep, MetricsDep, RegistryDep, errors, resolve_model
from app.api.rater_session import RatingsDep, require_rater
from app.api.refusals import REFUSALS, as_http
from app.ratings.analysis import cached_campaign, cached_results
from app.ratings.crowd import REAL
from app.ratings.gold import GOLD, real_digits
from app.ratings.raters import Ratings, ua_family
from app.ratings.scheduling import answers_for, choose_task, task_digit
from app.serving.predict import make_grid
from app.serving.specs import SeedGrid
from app.store import QUESTIONS
from arena.images import png_bytes, render_grid

router = APIRouter(tags=["rating"], responses=errors(401, 413, 422, 503))
REAL_ANSWERS = ("real", "generated")  # a "real or generated?" task's answers
REAL_SCALE = 8  # one 28-pixel digit shown at 224 pixels
Answer = Literal["A", "B", "C", "D", "tie", "both_bad", "all_bad"]


class VoteIn(BaseModel):
    task_id: str = Field(
        min_length=1, max_length=64, pattern=r"^[0-9a-f]+$", description="the id of a task issued to you"
    )
    overall: Answer = Field(description="which looks better overall")
    legibility: Answer = Field(description="which digits are more legible")
    noise: Answer = Field(description="which has less noise / fewer artefacts")
    elapsed_ms: int = Field(0, ge=0, le=86_400_000, description="milliseconds the rater spent on the task")


class VoteOut(BaseModel):
    vote_id: int
    votes_so_far: int


def issue_task(ratings: Ratings, registry, rid: str) -> dict[str, Any]:
    """The rater's pending task, else a new one, as the API and the /rate page show it (503 while collection is
    paused)."""
    if ratings.store.paused():
        raise HTTPException(503, "vote collection is paused by the organisers; please come back later")
    task = ratings.store.pending_task(rid)
    if task is None:
        campaign = cached_campaign(ratings, registry) if ratings.settings.scheduler == "adaptive" else None
        kind, models, seed = choose_task(ratings, registry, rid, campaign)
        task = ratings.store.issue(rid, kind, models, seed, ratings.settings.rate_n, ratings.settings.task_ttl_s)
    return task_view(ratings, registry, rid, task)


def task_view(ratings: Ratings, registry, rid: str, task) -> dict[str, Any]:
    """A stored task as the API and the pages show it: a pair or four grids to compare, or one image to call real
    or generated (its source never shown)."""
    if task.kind == "real":
        named = task.digit is not None
        return {
            "task_id": task.id,
            "kind": "real",
            "n": 1,
            "digit": task.digit,
            "prompt": f"This image should show a {task.digit}." if named else None,
            "images": [{"label": "A", "src": f"/rate/tasks/{task.id}/A.png", "alt": "one handwritten digit"}],
            "answers": list(REAL_ANSWERS),
            "questions": ["real"],
            "expires_at": task.expires_at.isoformat() + "Z",
            "votes_so_far": ratings.store.vote_count(rid),
        }
    kind, models, seed = task.kind, list(task.models), task.seed
    labels = "ABCD"[: len(models)]
    digit = task_digit(registry, models, seed)
    return {
        "task_id": task.id,
        "kind": "pair" if kind == "gold" else kind,
        "n": task.n,
        "digit": digit,
        "prompt": (
            f"Every image was asked to be a {digit}: judge which grid draws the better {digit}s."
            if digit is not None
            else None
        ),
        "images": [
            {
                "label": side,
                "src": f"/rate/tasks/{task.id}/{side}.png",
                "alt": f"grid {side}: {task.n} generated {'digits' if digit is None else f'{digit}s'}",
            }
            for side in labels
        ],
        "answers": list(answers_for(kind)),
        "questions": list(QUESTIONS),
        "expires_at": task.expires_at.isoformat() + "Z",
        "votes_so_far": ratings.store.vote_count(rid),
    }


def real_png(index: int, scale: int) -> bytes:
    """One shipped real digit as a PNG, at the scale a generated image of a real task is shown."""
    images, _ = real_digits()
    return png_bytes(render_grid(images[index : index + 1], 1, scale, 0))


def cast(request: Request, ratings: Ratings, metrics, body: VoteIn) -> VoteOut:
    """Store the vote of the rater in the cookie; the store's refusals are counted by status, then passed on."""
    rid = require_rater(request, ratings)
    if ratings.store.paused():
        raise HTTPException(503, "vote collection is paused by the organisers; your vote was not stored")
    task = ratings.store.task(body.task_id)
    if task is not None and task.rater_id == rid and task.kind == "real":
        raise HTTPException(422, "this task asks 'real or generated?': answer it at POST /api/study/<id>/real")
    if task is not None and task.rater_id == rid:
        allowed = answers_for(task.kind)
        for q in QUESTIONS:
            if getattr(body, q) not in allowed:
                raise HTTPException(
                    422,
                    f"{q}={getattr(body, q)!r} does not fit a "
                    f"{'four-model' if task.kind == 'four' else 'pair'} task; accepted: {', '.join(allowed)}",
                )
    answers = {q: getattr(body, q) for q in QUESTIONS}
    try:
        browser = ua_family(request.headers.get("user-agent", ""))
        vote = ratings.store.cast(
            rid, body.task_id, answers, body.elapsed_ms, browser, request.app.version, ratings.settings.votes_per_minute
        )
    except REFUSALS as e:
        metrics.votes.labels(str(as_http(e).status_code)).inc()
        raise
    metrics.votes.labels("stored").inc()
    return VoteOut(vote_id=vote.id, votes_so_far=ratings.store.vote_count(rid))


def undo(request: Request, ratings: Ratings) -> dict[str, Any]:
    rid = require_rater(request, ratings)
    vote = ratings.store.undo_last(rid, ratings.settings.undo_window_s)
    return {"undone_task_id": vote.task_id, "votes_so_far": ratings.store.vote_count(rid)}


@router.get("/rate/tasks/{task_id}/{label}.png", responses={200: {"content": {"image/png": {}}}, **errors(404)})
async def task_image(
    request: Request,
    ratings: RatingsDep,
    registry: RegistryDep,
    cache: CacheDep,
    metrics: MetricsDep,
    task_id: Annotated[str, PathParam(max_length=64)],
    label: Literal["A", "B", "C", "D"],
) -> Response:
    """The anonymised grid shown as `label` in one of your tasks."""
    rid = require_rater(request, ratings)
    task = ratings.store.task(task_id)
    labels = "ABCD"[: len(task.models)] if task else ""
    if task is None or task.rater_id != rid or label not in labels:
        raise HTTPException(404, "no such image in your tasks")
    model = task.models[labels.index(label)]
    headers = {"Cache-Control": "private, max-age=3600"}
    if model == REAL:
        png = await run_in_threadpool(real_png, task.seed, REAL_SCALE)
        return Response(png, media_type="image/png", headers=headers)
    if model in GOLD:
        # Sampling and encoding are CPU work: never on the event loop.
        png = await run_in_threadpool(ratings.gold_png, model, task.seed, task.n)
        return Response(png, media_type="image/png", headers=headers)
    entry = resolve_model(registry, model)
    if task.kind == "real":  # one image, large; a conditional model's asked for the digit the task names
        spec = SeedGrid(task.seed, 1, nrow=1, scale=REAL_SCALE, padding=0)
        spec = spec.labelled(task.digit) if entry.classes else spec
    else:
        spec = SeedGrid(task.seed, task.n, nrow=3, scale=3, padding=2)
    if entry.classes and task.kind != "real":  # both sides of a conditional task: the same digit from the same seed
        spec = spec.labelled(task_digit(registry, task.models, task.seed))
    grid = await make_grid(entry, spec, cache, metrics)
    return Response(grid.png, media_type="image/png", headers=headers)


@router.post("/api/rate/tasks", summary="Issue a rating task to the rater in the cookie", responses=errors(401, 503))
def api_task(request: Request, ratings: RatingsDep, registry: RegistryDep) -> dict[str, Any]:
    return issue_task(ratings, registry, require_rater(request, ratings))


@router.post(
    "/api/rate/votes",
    status_code=201,
    summary="Vote on a task issued to you",
    responses=errors(401, 403, 404, 409, 410, 422, 429, 503),
)
def api_vote(request: Request, ratings: RatingsDep, metrics: MetricsDep, body: VoteIn) -> VoteOut:
    return cast(request, ratings, metrics, body)


@router.post(
    "/api/rate/undo", summary="Undo your own last vote (within the undo window)", responses=errors(401, 404, 409, 503)
)
def api_undo(request: Request, ratings: RatingsDep) -> dict[str, Any]:
    return undo(request, ratings)


@router.get(
    "/api/results", summary="Bradley–Terry ratings with 95% bootstrap intervals, agreement, and metric correlation"
)
def api_results(ratings: RatingsDep, registry: RegistryDep) -> dict[str, Any]:
    return cached_results(ratings, registry)


@router.get(
    "/api/campaign",
    summary="The rating campaign: its plan, and per question its standing, people's verdict and the votes it needs",
)
def api_campaign(ratings: RatingsDep, registry: RegistryDep) -> dict[str, Any]:
    return cached_campaign(ratings, registry)
