"""The results analysis: which votes count, Bradley–Terry per question, agreement, gold, people vs the metrics."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from app.ratings.campaign import human_verdicts
from app.ratings.ranking import (
    comparisons_from_vote,
    components,
    krippendorff_alpha_nominal,
    percent_agreement,
    rank_correlation,
    rank_table,
    win_matrix,
)
from app.ratings.raters import Ratings
from app.ratings.realness import METHOD as REALNESS_METHOD
from app.ratings.realness import realness_table
from app.store import QUESTIONS
from arena.readouts import dig
from arena.stats import METRIC, estimate_text

# The metrics people's ratings are set beside (arena.stats.METRIC says where each is and how it is scored).
AGAINST_PEOPLE = ("legibility", "checkerboard_ratio", "frechet")


def cached_results(ratings: Ratings, registry) -> dict[str, Any]:
    """The latest analysis. Requests never wait for one, except the very first, or with `results_ttl_s` 0 (results
    as of each vote: the tests). Otherwise a background thread (`keep_results_fresh`) recomputes it whenever the
    store has changed, so what a page shows reflects every vote older than `results_ttl_s` plus one analysis."""
    latest = ratings._results
    if latest is None or (ratings.settings.results_ttl_s == 0 and latest["as_of"] != ratings.store.marker()):
        return refresh_results(ratings, registry)
    return latest


def refresh_results(ratings: Ratings, registry) -> dict[str, Any]:
    """Recompute the analysis if the store changed since the last one (one thread at a time; the others wait)."""
    with ratings._results_lock:
        marker = ratings.store.marker()
        if ratings._results is not None and ratings._results["as_of"] == marker:
            return ratings._results
        result = analyse(
            ratings.store.votes(),
            ratings.store.raters(),
            registry,
            ratings.settings,
            ratings.campaign,
            ratings.store.real_answers(),
        )
        result["as_of"] = marker
        ratings._results = result
        ratings._campaign, ratings._campaign_at = result["campaign"], time.monotonic()
        return result


def keep_results_fresh(app_state, stop, every_s: float) -> None:
    """The background loop: every `every_s` seconds, recompute the analysis if the store changed. Each instance runs
    its own, so several instances on one PostgreSQL all show every vote once it is `every_s` old."""
    import json
    import logging

    while not stop.wait(every_s):
        ratings, registry = getattr(app_state, "ratings", None), getattr(app_state, "registry", None)
        if ratings is None or registry is None or not getattr(app_state, "models_loaded", False):
            continue
        try:
            refresh_results(ratings, registry)
        except Exception as e:  # a database blip: the page keeps the previous analysis, the next round retries
            logging.getLogger("arena").warning(
                json.dumps({"event": "results_refresh_failed", "reason": type(e).__name__})
            )


def cached_campaign(ratings: Ratings, registry) -> dict[str, Any]:
    """The campaign's standing alone (no Bradley–Terry, no bootstrap: cheap enough for the scheduler), recomputed at
    most every `results_ttl_s`; a full results computation refreshes it too."""
    cached = ratings._campaign
    if cached is not None and time.monotonic() - ratings._campaign_at < ratings.settings.results_ttl_s:
        return cached
    if not ratings._campaign_lock.acquire(blocking=cached is None):
        return cached  # another thread is recomputing: concurrent tasks take the standing of a few seconds ago
    try:
        votes, raters = ratings.store.votes(), ratings.store.raters()
        counted = counted_votes(votes, left_out(raters, ratings.settings.exclude_flagged))
        ratings._campaign = campaign_standing(ratings.campaign, counted, registry)
        ratings._campaign_at = time.monotonic()
        return ratings._campaign
    finally:
        ratings._campaign_lock.release()


def analyse(votes: list, raters: list, registry, settings, campaign, answers: list = ()) -> dict[str, Any]:
    """Everything /api/results and /results show, from the stored votes, "real or generated?" answers and raters
    and the campaign's plan."""
    by_id = {r.id: r for r in raters}
    flagged = {rid for rid, r in by_id.items() if r.flagged}
    out = left_out(raters, settings.exclude_flagged)
    counted = counted_votes(votes, out)
    models = rated_models(registry, counted)
    per_question = ratings_by_question(
        counted,
        models,
        settings.bootstrap_resamples,
        lambda m: (registry.entries[m].manifest or {}).get("family") if m in registry.entries else None,
    )
    shared = shared_items(counted)
    overall = [g for g in per_question["overall"]["groups"] if g["comparisons"]]
    result = {
        "questions": per_question,
        "counts": {
            "raters": len(by_id),
            "votes": len(votes),
            "counted_votes": len(counted),
            "flagged_raters": len(flagged),
            "excluded_flagged": settings.exclude_flagged,
            "excluded_raters": sum(r.excluded is not None for r in raters),
            "real_answers": len(answers),
            **gold_counts(by_id.values()),
            "shared_items": len(shared),
        },
        "agreement": agreement(shared),
        "human_vs_metrics": human_vs_metrics(overall, registry, len(counted)),
        "campaign": campaign_standing(campaign, counted, registry),
        "realness": realness(answers, out, registry, settings.bootstrap_resamples),
        "position": side_a_share(counted),
        "method": method(settings.bootstrap_resamples),
    }
    result["computed_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return result


def campaign_standing(plan, counted: list, registry) -> dict[str, Any]:
    """The campaign's questions from the counted votes, each beside what the metrics say about its pair (the one
    computation behind /api/campaign, /api/results and the scheduler)."""
    return with_metrics(
        human_verdicts(plan, counted, registry.available()), getattr(registry, "replicate_statistics", None)
    )


def left_out(raters: list, exclude_flagged: bool) -> set[str]:
    """The raters whose answers never count: excluded ones (screened out of a crowd campaign, a researcher's
    preview), and flagged ones (too many failed known-answer checks) when they are excluded."""
    return {r.id for r in raters if r.excluded is not None or (exclude_flagged and r.flagged)}


def counted_votes(votes: list, left: set[str]) -> list:
    """The votes that enter the ratings: not gold tasks, and not by raters left out."""
    return [v for v in votes if v.kind != "gold" and v.rater_id not in left]


def realness(answers: list, left: set[str], registry, resamples: int) -> dict[str, Any]:
    """HYPE∞ per served model (the share of its images taken for real) beside real digits' own, from the counted
    "real or generated?" answers; a model's row says what it still needs where the display rule withholds it."""
    counted = [
        {"rater": a.rater_id, "source": a.source, "image": a.image, "said_real": a.said_real}
        for a in answers
        if a.rater_id not in left
    ]
    models = [m for m in registry.available() if any(a["source"] == m for a in counted)]
    return {
        "rows": realness_table(counted, models, resamples=resamples) if counted else [],
        "answers": len(counted),
        "method": REALNESS_METHOD,
    }


def metric_verdicts(stats: dict | None) -> dict[frozenset, list[dict[str, Any]]]:
    """What the metrics say about each pair, by pair: a study's verdict where its plan's own runs are all in; else
    the exploratory estimate (A − B with its interval, no verdict) from the replicate comparisons per budget and from
    a plan's earlier runs, each set of numbers once."""
    out: dict[frozenset, list[dict[str, Any]]] = {}

    def estimate(a: str, b: str, mean: float, low: float | None, high: float | None) -> str:
        return f"{a} − {b} = {estimate_text(mean, low, high)}" + (" (one seed: no interval)" if low is None else "")

    for r in (stats or {}).get("comparisons") or []:
        t = (r.get("metrics") or {}).get(r.get("primary")) or {}
        iv = t.get("score_difference")
        if iv:
            out.setdefault(frozenset((r["a"], r["b"])), []).append(
                {
                    "metric": METRIC[r["primary"]].score_label if r["primary"] in METRIC else r["primary"],
                    "verdict": estimate(r["a"], r["b"], iv["mean"], iv["low"], iv["high"]),
                    "kind": "exploratory",
                    "rests_on": f"{len(r.get('seeds') or [])} seeds, {r.get('profile')} budget"
                    + (f", trained on {r['trained_on']}" if r.get("trained_on") else "")
                    + "; exploratory",
                }
            )
    for st in (stats or {}).get("studies") or []:
        own = bool(st.get("study"))
        for q in st.get("study") or st.get("exploratory") or []:
            for e in q.get("effects") or []:
                pair = (e.get("contrast") or "").split(" − ")
                if e.get("effect") != "pair" or len(pair) != 2:
                    continue
                said = {
                    "metric": q.get("primary_label") or q.get("primary"),
                    "verdict": e["verdict"] if own else estimate(*pair, e["estimate"], *e["interval"]),
                    "kind": e.get("kind"),
                    "rests_on": f"{e.get('seeds')} seeds; plan {st['plan']}, "
                    + ("its own runs" if own else "exploratory runs from before the plan"),
                }
                listed = out.setdefault(frozenset(pair), [])
                # a plan's rows from earlier runs that a comparison above already gave (same runs, same metric, same
                # numbers) are not a second piece of evidence: listed once
                if own or not any((x["metric"], x["verdict"]) == (said["metric"], said["verdict"]) for x in listed):
                    listed.append(said)
    return out


def with_metrics(campaign: dict[str, Any], stats: dict | None) -> dict[str, Any]:
    """Each campaign question with what the metrics say about the same pair (`metrics_say`)."""
    said = metric_verdicts(stats)
    for q in campaign["questions"]:
        q["metrics_say"] = said.get(frozenset((q["a"], q["b"])), [])
    return campaign


def side_a_share(counted: list) -> dict[str, Any]:
    """Position bias: the share of decisive pair answers ("better overall") that chose the left grid, A. Sides are
    assigned at random per task, so a bias adds noise to every pair, never a preference for a model."""
    decisive = [v for v in counted if v.kind == "pair" and v.overall in ("A", "B")]
    left = sum(v.overall == "A" for v in decisive)
    from arena.stats import wilson_interval

    return {
        "decisive_votes": len(decisive),
        "left_share": left / len(decisive) if decisive else None,
        "interval": list(wilson_interval(left, len(decisive))) if decisive else None,
    }


def rated_models(registry, counted: list) -> list[str]:
    """The registry's models that appear in a counted vote (all of them while there is none), in registry order."""
    return [n for n in registry.entries if any(n in v.models for v in counted)] or list(registry.entries)


def ratings_by_question(
    counted: list, models: list[str], resamples: int, family_of=lambda m: None
) -> dict[str, dict[str, Any]]:
    """For each question: a Bradley–Terry table with bootstrap intervals per connected component of the comparison graph
    (tasks pair models within a family, so GANs and VAEs are never ranked against each other), the win matrix and the
    comparison count. `ratings` lists every group's rows, each with its `group` and a rank within it."""
    out = {}
    for q in QUESTIONS:
        comps = [c for v in counted for c in comparisons_from_vote(v.models, v.kind, getattr(v, q), v.id, v.rater_id)]
        groups = []
        for members in components(comps, models):
            inside = [c for c in comps if c.a in members and c.b in members]
            families = sorted({family_of(m) or "other" for m in members})
            label = "+".join(families) if len(members) > 1 or inside else f"{members[0]} (not compared)"
            rows = [{**r, "group": label} for r in rank_table(inside, members, resamples, seed=0)]
            groups.append({"label": label, "models": members, "ratings": rows, "comparisons": len(inside)})
        out[q] = {
            "groups": groups,
            "ratings": [r for g in groups for r in g["ratings"]],
            "win_matrix": win_matrix(comps, models),
            "comparisons": len(comps),
        }
    return out


def normalised(vote, question: str) -> str:
    """An answer in model terms (not sides), so raters who saw other sides can agree."""
    answer = getattr(vote, question)
    labels = "ABCD"[: len(vote.models)]
    return vote.models[labels.index(answer)] if answer in labels else answer


def shared_items(counted: list) -> dict[tuple, dict[str, list[str]]]:
    """Pair items (models, seed, n) answered by two or more votes, with each question's normalised answers."""
    items: dict[tuple, dict[str, list[str]]] = {}
    for v in counted:
        if v.kind == "pair":
            key = (tuple(sorted(v.models)), v.seed, v.n)
            items.setdefault(key, {q: [] for q in QUESTIONS})
            for q in QUESTIONS:
                items[key][q].append(normalised(v, q))
    return {k: u for k, u in items.items() if len(u["overall"]) >= 2}


def agreement(shared: dict[tuple, dict[str, list[str]]]) -> dict[str, dict[str, float | None]]:
    """Percent agreement and Krippendorff's alpha (nominal) per question over the shared items."""
    out = {}
    for q in QUESTIONS:
        units = [u[q] for u in shared.values()]
        out[q] = {"percent": percent_agreement(units), "krippendorff_alpha": krippendorff_alpha_nominal(units)}
    return out


def gold_counts(raters) -> dict[str, Any]:
    """Gold tasks answered by all raters, and the share of them failed."""
    raters = list(raters)
    gold = sum(r.gold_passed + r.gold_failed for r in raters)
    return {"gold_tasks": gold, "gold_failure_rate": (sum(r.gold_failed for r in raters) / gold) if gold else None}


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


def human_vs_metrics(groups: list[dict[str, Any]], registry, votes: int) -> dict[str, dict[str, Any]]:
    """Per rated group (family) and metric: the rank correlation of the people's overall ratings with the metric, and
    how many models it rests on seeds for. Never across groups, whose ratings are not on one scale."""
    out: dict[str, dict[str, Any]] = {}
    for key in AGAINST_PEOPLE:
        values, seeds = metric_values(registry, key, METRIC[key].source)
        scored, higher = {n: METRIC[key].score(v) for n, v in values.items()}, METRIC[key].better == "higher"
        out[key] = {}
        for g in groups:
            human = {r["model"]: r["rating"] for r in g["ratings"] if r["rating"] is not None}
            c = rank_correlation(human, scored, higher)
            used = [n for n in values if n in human]
            c.update(
                {
                    "votes": votes,
                    "across_seeds": sum(1 for n in used if seeds.get(n)),
                    "seeds": {n: seeds.get(n, 1) for n in used},
                }
            )
            out[key][g["label"]] = c
    return out


def method(resamples: int) -> str:
    """The method, in a sentence or three, as the results page prints it."""
    return (
        "Bradley–Terry by maximum likelihood (ties count half) with a weak prior of one virtual tie per pair of models "
        "(keeps ratings finite and modest while votes are few; after a few hundred votes a pair's rating moves by a "
        "point or two), rating = 400·r + 1000 with P(i beats j) = 1/(1+10^(r_j−r_i)); 95% percentile intervals from "
        f"{resamples} seeded bootstrap resamples of the votes (a best-of-four vote's three comparisons drawn "
        "together); shared rank = 1 + models whose lower bound exceeds this upper bound. "
        "Models are ranked only within a connected component of the comparison graph (a family: tasks never pair a GAN "
        "with a VAE); the correlation with each metric is computed within each component too."
    )
