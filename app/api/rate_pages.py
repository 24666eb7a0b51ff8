"""The rating pages, usable without JavaScript: consent, the task form, vote and undo by form post, the results."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from app.api.deps import MetricsDep, RegistryDep, errors
from app.api.pages import render
from app.api.rater_session import RatingsDep, rater_id, set_rater_cookie
from app.api.rating_api import VoteIn, cast, issue_task, undo
from app.api.refusals import REFUSALS, as_http
from app.ratings.analysis import cached_results
from app.ratings.ranking import MIN_COMPARISONS, MIN_MODELS_FOR_CORRELATION, MIN_RATERS
from app.views.charts import rating_chart
from arena.stats import METRIC

router = APIRouter(tags=["rating"], responses=errors(401, 413, 422, 503))
# what a task asks, by its kind: a pair asks which is better, four ask which is best
QUESTION_WORDS = {
    "pair": {
        "overall": "Which looks better overall?",
        "legibility": "Which digits are more legible?",
        "noise": "Which has less noise / fewer artefacts?",
    },
    "four": {
        "overall": "Which looks best overall?",
        "legibility": "Which has the most legible digits?",
        "noise": "Which has the least noise / fewest artefacts?",
    },
}
QUESTION_LABELS = {
    "overall": "Better overall",
    "legibility": "More legible digits",
    "noise": "Less noise / fewer artefacts",
}


@router.get("/rate", response_class=HTMLResponse, include_in_schema=False)
def rate_page(request: Request, ratings: RatingsDep, registry: RegistryDep) -> Response:
    rid = rater_id(request, ratings)
    if rid is None:
        return render(request, "rate_start.html", {"nav": "rate"})
    notices = {
        "voted": ["Vote saved."],
        "undone": ["Your last vote was undone; answer this task again or move on."],
    }.get(request.query_params.get("done", ""), [])
    try:
        task = issue_task(ratings, registry, rid)
    except (HTTPException, *REFUSALS) as e:
        err = as_http(e)
        return render(
            request,
            "error.html",
            {"nav": "rate", "title": "No task right now", "message": err.detail},
            status=err.status_code,
        )
    return render(
        request,
        "rate.html",
        {
            "nav": "rate",
            "task": task,
            "notices": notices,
            "undo_window": ratings.settings.undo_window_s,
            "questions_pair": QUESTION_WORDS["pair"],
            "questions_four": QUESTION_WORDS["four"],
        },
    )


@router.post("/rate/start", include_in_schema=False)
def rate_start(
    request: Request,
    ratings: RatingsDep,
    consent: Annotated[str | None, Form()] = None,
    display_name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if consent != "yes":
        return render(
            request,
            "rate_start.html",
            {"nav": "rate", "notices": ["Please tick the consent box to take part."]},
            status=400,
        )
    name = display_name.strip()[:40] or None
    rid = ratings.store.new_rater(name)
    response = RedirectResponse("/rate", status_code=303)
    set_rater_cookie(request, response, ratings, rid)
    return response


@router.post("/rate/vote", include_in_schema=False)
def rate_vote_form(
    request: Request,
    ratings: RatingsDep,
    metrics: MetricsDep,
    task_id: Annotated[str, Form(max_length=64)],
    overall: Annotated[str, Form(max_length=10)],
    legibility: Annotated[str, Form(max_length=10)],
    noise: Annotated[str, Form(max_length=10)],
    elapsed_ms: Annotated[int, Form(ge=0, le=86_400_000)] = 0,
) -> Response:
    try:
        body = VoteIn.model_validate(
            {"task_id": task_id, "overall": overall, "legibility": legibility, "noise": noise, "elapsed_ms": elapsed_ms}
        )
        cast(request, ratings, metrics, body)
    except ValidationError as e:
        return _form_error(request, 422, "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()))
    except (HTTPException, *REFUSALS) as e:
        err = as_http(e)
        return _form_error(request, err.status_code, err.detail)
    return RedirectResponse("/rate?done=voted", status_code=303)


def _form_error(request: Request, status: int, detail: str) -> Response:
    return render(
        request,
        "error.html",
        {"nav": "rate", "title": "Your vote was not stored", "message": detail, "next": "/rate"},
        status=status,
    )


@router.post("/rate/undo", include_in_schema=False)
def rate_undo_form(request: Request, ratings: RatingsDep) -> Response:
    try:
        undo(request, ratings)
    except (HTTPException, *REFUSALS) as e:
        err = as_http(e)
        return _form_error(request, err.status_code, err.detail)
    return RedirectResponse("/rate?done=undone", status_code=303)


@router.get("/results", response_class=HTMLResponse, include_in_schema=False)
def results_page(request: Request, ratings: RatingsDep, registry: RegistryDep) -> Response:
    results = cached_results(ratings, registry)
    return render(
        request,
        "results.html",
        {
            "nav": "results",
            "r": results,
            "rule": {"raters": MIN_RATERS, "comparisons": MIN_COMPARISONS, "models": MIN_MODELS_FOR_CORRELATION},
            "metric_labels": {k: METRIC[k].label for k in METRIC},
            "ttl": ratings.settings.results_ttl_s,
            "labels": QUESTION_LABELS,
            "charts": {  # built once per analysis (app/views/charts.py memoizes each chart by its data)
                (q, g["label"]): rating_chart(f"{QUESTION_LABELS[q]} ({g['label'].upper()})", g["ratings"])
                for q, data in results["questions"].items()
                for g in data["groups"]
                if g["comparisons"]
            },
        },
    )
