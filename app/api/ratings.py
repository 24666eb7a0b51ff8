"""Rating: anonymised pair (and best-of-four) tasks, votes in the database, Bradley–Terry results, admin."""

from __future__ import annotations

import csv
from pathlib import Path
import datetime as dt
import hmac
import io
import itertools
import random
import threading
import time
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Form, Header, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, ValidationError

from app.api.deps import CacheDep, MetricsDep, RegistryDep, SettingsDep, errors
from app.api.pages import render
from arena.images import png_bytes, render_grid
from arena.latents import MAX_SEED
from arena.figures import dig
from app.grids import make_grid, seed_spec
from app.ranking import comparisons_from_vote, krippendorff_alpha_nominal, percent_agreement, rank_correlation, rank_table, win_matrix
from app.store import QUESTIONS, StoreError, StoreUnavailable, VoteStore
from arena.variants import VARIANTS, comparisons

router = APIRouter(tags=["rating"], responses=errors(401, 413, 422, 503))
COOKIE = "arena_rater"
PAIR_ANSWERS = ("A", "B", "tie", "both_bad")
FOUR_ANSWERS = ("A", "B", "C", "D", "tie", "all_bad")
WEIGHTED_PAIRS = [frozenset((v.name, ref.name)) for v, ref in comparisons()]  # the report's pairs and every control vs its reference
GOLD = ("real_mnist", "untrained_noise")
Answer = Literal["A", "B", "C", "D", "tie", "both_bad", "all_bad"]


class Ratings:
    """Everything the rating routes share: the store, the cookie signer, gold images, the results cache."""

    def __init__(self, settings, store: VoteStore):
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        self.ephemeral_key = secret is None
        self.signer = URLSafeSerializer(secret or np.random.default_rng().bytes(32).hex(), salt="rater")
        self.settings, self.store = settings, store
        self._results: dict[str, Any] | None = None
        self._results_at = 0.0
        self._results_lock = threading.Lock()
        self.gold_digits = _gold_images("gold_digits.npz", "digits")
        self.gold_noise = _gold_images("gold_noise.npz", "images")


def _gold_images(file: str, key: str) -> np.ndarray:
    """Shipped gold images (uint8) in [0, 1]: real test digits, and samples of an untrained GAN (training/gold_noise.py)."""
    with np.load(Path(__file__).resolve().parents[1] / "data" / file) as f:
        return f[key].astype(np.float32) / 255.0


async def get_ratings(request: Request) -> Ratings:
    ratings = getattr(request.app.state, "ratings", None)
    if ratings is None:
        problem = getattr(request.app.state, "ratings_problem", None) or "see the server log"
        raise HTTPException(503, f"the rating database is not available: {problem}; image generation still works")
    return ratings


RatingsDep = Annotated[Ratings, Depends(get_ratings)]


def rater_id(request: Request, ratings: Ratings) -> str | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        rid = ratings.signer.loads(raw)
    except BadSignature:
        return None
    return rid if isinstance(rid, str) and ratings.store.rater(rid) is not None else None


def require_rater(request: Request, ratings: Ratings) -> str:
    rid = rater_id(request, ratings)
    if rid is None:
        raise HTTPException(401, "no rater session: open /rate and accept the instructions first")
    return rid


def ua_family(ua: str) -> str:
    ua = ua or ""
    for needle, name in (("HeadlessChrome", "headless-chrome"), ("Edg/", "edge"), ("Chrome/", "chrome"), ("Firefox/", "firefox"), ("Safari/", "safari"), ("python-httpx", "httpx"), ("curl/", "curl"), ("testclient", "testclient")):
        if needle in ua:
            return name
    return "other"


def _store_call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except StoreError as e:
        raise HTTPException(e.status, e.detail) from None
    except StoreUnavailable as e:
        raise HTTPException(503, f"votes cannot be stored right now (the database refused the write: {e}); image generation still works") from None


def metric_values(registry, key: str, path: str) -> tuple[dict[str, float], dict[str, int]]:
    """Each model's figure for the people-vs-numbers table: the mean over replicate seeds of the served run's budget
    where replicates exist (with how many seeds), else its single evaluated run."""
    values, seeds = {}, {}
    for name, e in registry.entries.items():
        profile = ((e.manifest or {}).get("config") or {}).get("profile")
        iv = (((e.replicates or {}).get(profile or "") or {}).get("metrics") or {}).get(key)
        if iv and iv.get("mean") is not None and iv.get("n", 0) >= 2:
            values[name], seeds[name] = iv["mean"], iv["n"]
        elif dig(e.metrics, path) is not None:
            values[name] = dig(e.metrics, path)
    return values, seeds


# ---------------------------------------------------------------- scheduling


def families_of(registry, names: list[str]) -> dict[str, list[str]]:
    """Ready models by family (a GAN against a VAE teaches nothing): the manifest's family, else the table's."""
    out: dict[str, list[str]] = {}
    for name in names:
        entry = registry.entries.get(name)
        family = (entry.manifest.get("family") if entry is not None and entry.manifest else None) or (VARIANTS[name].family if name in VARIANTS else "other")
        out.setdefault(family, []).append(name)
    return out


def choose_task(ratings: Ratings, registry, rid: str) -> tuple[str, list[str], int]:
    """Gold pairs, best-of-four within one family, repeats of another rater's pair, else the pair within a family
    with the fewest votes per weight (the report's pairs and each control against its reference weighted up)."""
    s, rng = ratings.settings, random.SystemRandom()
    ready = registry.available()
    if len(ready) < 2:
        raise HTTPException(503, f"rating needs at least two ready models; ready: {', '.join(ready) or 'none'}")
    if rng.random() < s.gold_rate:
        return "gold", rng.sample(GOLD, 2), rng.randrange(MAX_SEED)
    families = families_of(registry, ready)
    if rng.random() < s.four_rate:
        big = [f for f in families.values() if len(f) >= 4]
        if big:
            return "four", rng.sample(rng.choice(big), 4), rng.randrange(MAX_SEED)
    if rng.random() < s.repeat_rate:
        repeats = [(m, seed) for m, seed, n in ratings.store.items_seen_by_others(rid) if set(m) <= set(ready) and n == s.rate_n]
        if repeats:
            models, seed = rng.choice(repeats)
            return "pair", rng.sample(models, 2), seed
    counts = ratings.store.pair_counts()
    pairs = [tuple(sorted(p)) for members in families.values() for p in itertools.combinations(members, 2)]
    if not pairs:  # no family has two ready models: compare across families rather than not at all
        pairs = [tuple(sorted(p)) for p in itertools.combinations(ready, 2)]
    weight = {p: s.report_pair_weight if set(p) in WEIGHTED_PAIRS else 1.0 for p in pairs}
    need = {p: counts.get(p, 0) / weight[p] for p in pairs}
    fewest = min(need.values())
    pair = rng.choice([p for p in pairs if need[p] == fewest])
    return "pair", rng.sample(list(pair), 2), rng.randrange(MAX_SEED)


def issue_task(ratings: Ratings, registry, rid: str) -> dict[str, Any]:
    if _store_call(ratings.store.paused):
        raise HTTPException(503, "vote collection is paused by the organisers; please come back later")
    kind, models, seed = choose_task(ratings, registry, rid)
    task = _store_call(ratings.store.issue, rid, kind, models, seed, ratings.settings.rate_n, ratings.settings.task_ttl_s)
    labels = "ABCD"[: len(models)]
    return {
        "task_id": task.id, "kind": "pair" if kind == "gold" else kind, "n": task.n,
        "images": [{"label": l, "src": f"/rate/tasks/{task.id}/{l}.png", "alt": f"grid {l}: {task.n} generated digits"} for l in labels],
        "answers": list(FOUR_ANSWERS if kind == "four" else PAIR_ANSWERS), "questions": list(QUESTIONS),
        "expires_at": task.expires_at.isoformat() + "Z", "votes_so_far": ratings.store.vote_count(rid),
    }


# ---------------------------------------------------------------- rater pages


@router.get("/rate", response_class=HTMLResponse, include_in_schema=False)
def rate_page(request: Request, ratings: RatingsDep, registry: RegistryDep) -> Response:
    rid = rater_id(request, ratings)
    if rid is None:
        return render(request, "rate_start.html", {"nav": "rate"})
    notices = {"voted": ["Vote saved."], "undone": ["Your last vote was undone; answer this task again or move on."]}.get(request.query_params.get("done", ""), [])
    try:
        task = issue_task(ratings, registry, rid)
    except HTTPException as e:
        return render(request, "error.html", {"nav": "rate", "title": "No task right now", "message": e.detail}, status=e.status_code)
    return render(request, "rate.html", {"nav": "rate", "task": task, "notices": notices, "undo_window": ratings.settings.undo_window_s})


@router.post("/rate/start", include_in_schema=False)
def rate_start(request: Request, ratings: RatingsDep, consent: Annotated[str | None, Form()] = None, display_name: Annotated[str, Form(max_length=200)] = "") -> Response:
    if consent != "yes":
        return render(request, "rate_start.html", {"nav": "rate", "notices": ["Please tick the consent box to take part."]}, status=400)
    name = display_name.strip()[:40] or None
    rid = _store_call(ratings.store.new_rater, name)
    response = RedirectResponse("/rate", status_code=303)
    response.set_cookie(COOKIE, ratings.signer.dumps(rid), max_age=180 * 24 * 3600, httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return response


@router.post("/rate/vote", include_in_schema=False)
def rate_vote_form(
    request: Request, ratings: RatingsDep, metrics: MetricsDep,
    task_id: Annotated[str, Form(max_length=64)], overall: Annotated[str, Form(max_length=10)],
    legibility: Annotated[str, Form(max_length=10)], noise: Annotated[str, Form(max_length=10)],
    elapsed_ms: Annotated[int, Form(ge=0, le=86_400_000)] = 0,
) -> Response:
    try:
        body = VoteIn.model_validate({"task_id": task_id, "overall": overall, "legibility": legibility, "noise": noise, "elapsed_ms": elapsed_ms})
        cast(request, ratings, metrics, body)
    except ValidationError as e:
        return _form_error(request, 422, "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()))
    except HTTPException as e:
        return _form_error(request, e.status_code, e.detail)
    return RedirectResponse("/rate?done=voted", status_code=303)


def _form_error(request: Request, status: int, detail: str) -> Response:
    return render(request, "error.html", {"nav": "rate", "title": "Your vote was not stored", "message": detail, "next": "/rate"}, status=status)


@router.post("/rate/undo", include_in_schema=False)
def rate_undo_form(request: Request, ratings: RatingsDep) -> Response:
    try:
        undo(request, ratings)
    except HTTPException as e:
        return _form_error(request, e.status_code, e.detail)
    return RedirectResponse("/rate?done=undone", status_code=303)


@router.get("/rate/tasks/{task_id}/{label}.png", responses={200: {"content": {"image/png": {}}}, **errors(404)})
async def task_image(request: Request, ratings: RatingsDep, registry: RegistryDep, cache: CacheDep, metrics: MetricsDep, task_id: Annotated[str, PathParam(max_length=64)], label: Literal["A", "B", "C", "D"]) -> Response:
    """The anonymised grid shown as `label` in one of your tasks."""
    rid = require_rater(request, ratings)
    task = ratings.store.task(task_id)
    labels = "ABCD"[: len(task.models)] if task else ""
    if task is None or task.rater_id != rid or label not in labels:
        raise HTTPException(404, "no such image in your tasks")
    model = task.models[labels.index(label)]
    headers = {"Cache-Control": "private, max-age=3600"}
    if model in GOLD:
        # Building the untrained generator and encoding take TensorFlow time: never on the event loop.
        png = await run_in_threadpool(_gold_png, ratings, model, task.seed, task.n)
        return Response(png, media_type="image/png", headers=headers)
    from app.api.deps import resolve_model

    entry = resolve_model(registry, model)
    grid = await make_grid(entry, seed_spec(task.seed, task.n, nrow=3, scale=3, padding=2), cache, metrics)
    return Response(grid.png, media_type="image/png", headers=headers)


def _gold_png(ratings: Ratings, model: str, seed: int, n: int) -> bytes:
    pool = ratings.gold_digits if model == "real_mnist" else ratings.gold_noise
    pick = np.random.default_rng(seed).choice(len(pool), n, replace=False)
    return png_bytes(render_grid(pool[pick], 3, 3, 2))


# ---------------------------------------------------------------- rater API


class VoteIn(BaseModel):
    task_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$", description="the id of a task issued to you")
    overall: Answer = Field(description="which looks better overall")
    legibility: Answer = Field(description="which digits are more legible")
    noise: Answer = Field(description="which has less noise / fewer artefacts")
    elapsed_ms: int = Field(0, ge=0, le=86_400_000, description="milliseconds the rater spent on the task")


class VoteOut(BaseModel):
    vote_id: int
    votes_so_far: int


@router.post("/api/rate/tasks", summary="Issue a rating task to the rater in the cookie", responses=errors(401, 503))
def api_task(request: Request, ratings: RatingsDep, registry: RegistryDep) -> dict[str, Any]:
    return issue_task(ratings, registry, require_rater(request, ratings))


def cast(request: Request, ratings: Ratings, metrics, body: VoteIn) -> VoteOut:
    rid = require_rater(request, ratings)
    if _store_call(ratings.store.paused):
        raise HTTPException(503, "vote collection is paused by the organisers; your vote was not stored")
    task = ratings.store.task(body.task_id)
    if task is not None and task.rater_id == rid:
        allowed = FOUR_ANSWERS if task.kind == "four" else PAIR_ANSWERS
        for q in QUESTIONS:
            if getattr(body, q) not in allowed:
                raise HTTPException(422, f"{q}={getattr(body, q)!r} does not fit a {'four-model' if task.kind == 'four' else 'pair'} task; accepted: {', '.join(allowed)}")
    answers = {q: getattr(body, q) for q in QUESTIONS}
    try:
        vote = _store_call(ratings.store.cast, rid, body.task_id, answers, body.elapsed_ms, ua_family(request.headers.get("user-agent", "")), request.app.version, ratings.settings.votes_per_minute)
    except HTTPException as e:
        metrics.votes.labels(str(e.status_code)).inc()
        raise
    metrics.votes.labels("stored").inc()
    return VoteOut(vote_id=vote.id, votes_so_far=ratings.store.vote_count(rid))


@router.post("/api/rate/votes", status_code=201, summary="Vote on a task issued to you", responses=errors(401, 403, 404, 409, 410, 422, 429, 503))
def api_vote(request: Request, ratings: RatingsDep, metrics: MetricsDep, body: VoteIn) -> VoteOut:
    return cast(request, ratings, metrics, body)


def undo(request: Request, ratings: Ratings) -> dict[str, Any]:
    rid = require_rater(request, ratings)
    vote = _store_call(ratings.store.undo_last, rid, ratings.settings.undo_window_s)
    return {"undone_task_id": vote.task_id, "votes_so_far": ratings.store.vote_count(rid)}


@router.post("/api/rate/undo", summary="Undo your own last vote (within the undo window)", responses=errors(401, 404, 409, 503))
def api_undo(request: Request, ratings: RatingsDep) -> dict[str, Any]:
    return undo(request, ratings)


# ---------------------------------------------------------------- results


def _normalised(vote, question: str) -> str:
    """An answer in model terms (not sides), so raters who saw other sides can agree."""
    answer = getattr(vote, question)
    labels = "ABCD"[: len(vote.models)]
    return vote.models[labels.index(answer)] if answer in labels else answer


def compute_results(ratings: Ratings, registry) -> dict[str, Any]:
    """The analysis, recomputed at most every `results_ttl_s` by one thread; others get the last one meanwhile."""
    now = time.monotonic()
    cached = ratings._results
    if cached is not None and now - ratings._results_at < ratings.settings.results_ttl_s:
        return cached
    if not ratings._results_lock.acquire(blocking=cached is None):
        return cached  # another thread is recomputing; the previous result is at most a few seconds old
    try:
        result = _analyse(ratings, registry)
        ratings._results, ratings._results_at = result, time.monotonic()
        return result
    finally:
        ratings._results_lock.release()


def _analyse(ratings: Ratings, registry) -> dict[str, Any]:
    votes = ratings.store.votes()
    raters = {r.id: r for r in ratings.store.raters()}
    flagged = {rid for rid, r in raters.items() if r.flagged}
    counted = [v for v in votes if v.kind != "gold" and not (ratings.settings.exclude_flagged and v.rater_id in flagged)]
    models = [n for n in registry.entries if any(n in v.models for v in counted)] or list(registry.entries)
    per_question = {}
    for q in QUESTIONS:
        comps = [c for v in counted for c in comparisons_from_vote(v.models, v.kind, getattr(v, q))]
        per_question[q] = {"ratings": rank_table(comps, models, ratings.settings.bootstrap_resamples, seed=0), "win_matrix": win_matrix(comps, models), "comparisons": len(comps)}
    items: dict[tuple, dict[str, list[str]]] = {}
    for v in counted:
        if v.kind == "pair":
            items.setdefault((tuple(sorted(v.models)), v.seed, v.n), {q: [] for q in QUESTIONS})
            for q in QUESTIONS:
                items[(tuple(sorted(v.models)), v.seed, v.n)][q].append(_normalised(v, q))
    shared = {k: u for k, u in items.items() if len(u["overall"]) >= 2}
    agreement = {q: {"percent": percent_agreement(u[q] for u in shared.values()), "krippendorff_alpha": krippendorff_alpha_nominal(u[q] for u in shared.values())} for q in QUESTIONS}
    gold = sum(r.gold_passed + r.gold_failed for r in raters.values())
    human = {r["model"]: r["rating"] for r in per_question["overall"]["ratings"] if r["rating"] is not None}
    correlation = {}
    for key, path, higher in (("legibility", "legibility.mean_top_probability", True), ("checkerboard_ratio", "checkerboard.nyquist_ratio", False), ("frechet", "frechet.distance", False)):
        values, seeds = metric_values(registry, key, path)
        c = rank_correlation(human, values, higher)
        used = [n for n in values if n in human]
        c.update({"votes": len(counted), "across_seeds": sum(1 for n in used if seeds.get(n)), "seeds": {n: seeds.get(n, 1) for n in used}})
        correlation[key] = c
    result = {
        "questions": per_question,
        "counts": {"raters": len(raters), "votes": len(votes), "counted_votes": len(counted), "flagged_raters": len(flagged), "excluded_flagged": ratings.settings.exclude_flagged, "gold_tasks": gold, "gold_failure_rate": (sum(r.gold_failed for r in raters.values()) / gold) if gold else None, "shared_items": len(shared)},
        "agreement": agreement,
        "human_vs_metrics": correlation,
        "method": f"Bradley–Terry by maximum likelihood (ties count half) with a weak prior of one virtual tie per pair of models (keeps ratings finite and modest while votes are few; after a few hundred votes a pair's rating moves by a point or two), rating = 400·r + 1000 with P(i beats j) = 1/(1+10^(r_j−r_i)); 95% percentile intervals from {ratings.settings.bootstrap_resamples} seeded bootstrap resamples; shared rank = 1 + models whose lower bound exceeds this upper bound.",
    }
    result["computed_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return result




@router.get("/api/results", summary="Bradley–Terry ratings with 95% bootstrap intervals, agreement, and metric correlation")
def api_results(ratings: RatingsDep, registry: RegistryDep) -> dict[str, Any]:
    return compute_results(ratings, registry)


@router.get("/results", response_class=HTMLResponse, include_in_schema=False)
def results_page(request: Request, ratings: RatingsDep, registry: RegistryDep) -> Response:
    results = compute_results(ratings, registry)
    lo = min([r["lower"] for q in results["questions"].values() for r in q["ratings"] if r["lower"] is not None] or [900]) - 20
    hi = max([r["upper"] for q in results["questions"].values() for r in q["ratings"] if r["upper"] is not None] or [1100]) + 20
    return render(request, "results.html", {"nav": "results", "r": results, "lo": lo, "hi": hi, "ttl": ratings.settings.results_ttl_s, "labels": {"overall": "Better overall", "legibility": "More legible digits", "noise": "Less noise / fewer artefacts"}})


# ---------------------------------------------------------------- admin


async def require_admin(settings: SettingsDep, authorization: Annotated[str | None, Header(description="Bearer ARENA_ADMIN_TOKEN")] = None) -> None:
    token = settings.admin_token.get_secret_value() if settings.admin_token else ""
    if not token:
        raise HTTPException(403, "admin actions are disabled: set ARENA_ADMIN_TOKEN on the server")
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, "admin token missing or wrong (send Authorization: Bearer <ARENA_ADMIN_TOKEN>)", headers={"WWW-Authenticate": "Bearer"})


AdminDep = Annotated[None, Depends(require_admin)]
ADMIN_ERRORS = errors(401, 403)
EXPORT_FIELDS = ("id", "task_id", "rater_id", "kind", "models", "seed", "n", "overall", "legibility", "noise", "elapsed_ms", "user_agent", "app_version", "created_at", "rater_flagged")


@router.get("/api/admin/export", summary="Every vote with its task details (CSV or JSON)", responses={**ADMIN_ERRORS, 200: {"content": {"application/json": {}, "text/csv": {}}}})
def admin_export(_: AdminDep, ratings: RatingsDep, format: Annotated[Literal["json", "csv"], Query(description="json or csv")] = "json") -> Response:
    flagged = {r.id for r in ratings.store.raters() if r.flagged}
    rows = [{f: (getattr(v, f) if f != "rater_flagged" else v.rater_id in flagged) for f in EXPORT_FIELDS} for v in ratings.store.votes()]
    for row in rows:
        row["created_at"] = row["created_at"].isoformat() + "Z"
    if format == "json":
        return JSONResponse({"votes": rows, "labels": "models[i] was shown as 'ABCD'[i], left to right"})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, EXPORT_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "models": "|".join(row["models"])})
    return Response(buf.getvalue(), media_type="text/csv", headers={"Content-Disposition": "attachment; filename=votes.csv"})


@router.post("/api/admin/raters/{rid}/delete", summary="Delete a rater and all their votes", responses={**ADMIN_ERRORS, **errors(404)})
def admin_delete_rater(_: AdminDep, ratings: RatingsDep, rid: Annotated[str, PathParam(max_length=64)]) -> dict[str, Any]:
    return {"deleted_votes": _store_call(ratings.store.delete_rater, rid)}


@router.post("/api/admin/pause", summary="Pause or resume vote collection", responses=ADMIN_ERRORS)
def admin_pause(_: AdminDep, ratings: RatingsDep, paused: Annotated[bool, Query(description="true to pause, false to resume")]) -> dict[str, bool]:
    _store_call(ratings.store.set_paused, paused)
    return {"paused": paused}
