"""Commands of the service: serve, campaign, crowd."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from deconv_arena.args import UserError, positive_int


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the dashboard and API with uvicorn (settings from ARENA_* variables)")
    p.add_argument("--host", help="address to bind (ARENA_HOST, default 127.0.0.1; use 0.0.0.0 in a container)")
    p.add_argument("--port", type=positive_int, help="port (ARENA_PORT, default 8000)")
    p.add_argument(
        "--workers",
        type=positive_int,
        help=(
            "worker processes, each with its own models (ARENA_WORKERS, default 1; needs ARENA_SECRET_KEY when above 1)"
        ),
    )
    p.set_defaults(run=cmd_serve)
    p.add_argument("--store", type=Path, help="models store (ARENA_MODELS_STORE, default models_store)")
    p.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="log level (ARENA_LOG_LEVEL, default info)"
    )


def cmd_serve(args: argparse.Namespace) -> None:
    import logging

    import uvicorn

    from app.main import create_app

    overrides = {
        k: v
        for k, v in {
            "host": args.host,
            "port": args.port,
            "workers": args.workers,
            "models_store": args.store,
            "log_level": args.log_level,
        }.items()
        if v is not None
    }
    settings = _settings(overrides)
    _campaign_plan(settings)
    _crowds(settings.crowd_campaigns)
    why = settings.needs_secret_key()
    if why:
        raise UserError(
            f"ARENA_SECRET_KEY is not set, but {why}: each process would sign rater cookies with its own random "
            "key and refuse the others'; set ARENA_SECRET_KEY to one long random secret shared by all of them"
        )
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    # SIGTERM: uvicorn stops accepting, lets in-flight requests finish (up to the timeout), then runs the lifespan exit.
    common = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": False,
        "timeout_graceful_shutdown": 20,
    }
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **common)
        return
    # Worker processes build their own app from the environment, so the command line's overrides go there.
    for key, value in overrides.items():
        os.environ[f"ARENA_{key.upper()}"] = str(value)
    uvicorn.run("app.main:create_app", factory=True, workers=settings.workers, **common)


def _settings(overrides: dict):
    """The service's settings (ARENA_* variables, then the command line's overrides); a wrong one is one line."""
    from pydantic import ValidationError

    from app.core.settings import Settings

    try:
        return Settings(**overrides)
    except ValidationError as e:
        first = e.errors()[0]
        raise UserError(f"setting {'.'.join(map(str, first['loc']))}={first.get('input')!r}: {first['msg']}") from None


def _campaign_plan(settings):
    from app.ratings.campaign import DEFAULT_PLAN, CampaignPlanError, load_campaign

    try:
        return load_campaign(settings.campaign_plan or DEFAULT_PLAN)
    except CampaignPlanError as e:
        raise UserError(f"ARENA_CAMPAIGN_PLAN: {e}") from None


def _crowds(spec: str, source: str = "ARENA_CROWD_CAMPAIGNS: ") -> dict:
    from app.ratings.crowd import CrowdError, load_crowds

    try:
        return load_crowds(spec)
    except CrowdError as e:
        raise UserError(f"{source}{e}") from None


def _add_crowd(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "crowd",
        help="check a crowd campaign file and print what it asks of each participant and the link for the platform",
        description="Reads crowd campaign files (TOML; the [crowd] table of app/ratings/crowds/example.toml), checks "
        "them as the service will, and prints per campaign the study link to paste into the platform, the steps each "
        "participant walks, and the answers the campaign collects when every place is taken.",
    )
    p.add_argument("files", nargs="+", type=Path, help="campaign files (or folders of them)")
    p.add_argument("--host", default="https://YOUR-HOST", help="the public address the link starts with")
    p.set_defaults(run=cmd_crowd)


def cmd_crowd(args: argparse.Namespace) -> None:
    from app.ratings.crowd import PLATFORMS

    for crowd in _crowds(",".join(str(f) for f in args.files), source="").values():
        names = PLATFORMS[crowd.platform]
        # the platforms' own placeholders: Prolific fills {{%NAME%}}, Mechanical Turk's ExternalQuestion appends ids
        fill = {"prolific": "{{%NAME%}}", "mturk": "", "generic": "<NAME>"}[crowd.platform]
        query = "&".join(f"{param}={fill.replace('NAME', param)}" for param in names.values()) if fill else ""
        link = f"{args.host.rstrip('/')}/study/{crowd.id}" + (f"?{query}" if query else "")
        generated = crowd.real_or_generated - crowd.real_digits
        print(f"{crowd.id} (version {crowd.version}, {crowd.platform}): {crowd.title}")
        print(f"  study link: {link}")
        print(f"  preview:    {args.host.rstrip('/')}/study/{crowd.id}/preview (nothing answered there counts)")
        print(
            f"  each participant: {crowd.steps_total} tasks — {crowd.pairs} pairs, {crowd.checks} known-answer checks "
            f"(screened out at {crowd.screen_out_failures} failed), {crowd.real_digits} real and {generated} generated "
            f"images to call real or generated; about {crowd.expected_minutes:g} minutes for {crowd.pay}"
        )
        print(
            f"  at {crowd.places} places: {crowd.places * crowd.pairs} pair votes, "
            f"{crowd.places * crowd.real_or_generated} real-or-generated answers "
            f"({crowd.places * generated} on generated images, shared among the served models)"
        )
        print(f"  codes: completion {crowd.completion_code}, screen-out {crowd.screen_out_code}; end: "
              f"{crowd.completion_url or 'the code is shown; no redirect'}")  # fmt: skip


def _add_campaign(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "campaign",
        help="the rating campaign: `campaign plan` says how many more votes each open question needs",
        description="Reads the votes database (ARENA_DATABASE_URL) and the campaign plan (ARENA_CAMPAIGN_PLAN, else "
        "the shipped one) and prints, per question, its counted votes (gold tasks and flagged raters left out), the "
        "votes its plan fixes, how many more it needs and at which vote its next planned look comes, and its "
        "verdict once decided. It never writes to the database.",
    )
    p.set_defaults(run=cmd_campaign)
    what = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    plan = what.add_parser("plan", help="votes per question: counted, planned, still needed, next look, verdict")
    plan.add_argument("--store", type=Path, help="models store whose models are served (ARENA_MODELS_STORE)")
    plan.add_argument("--json", action="store_true", help="print the campaign's standing as JSON (as /api/campaign)")


def _served_names(store: Path) -> list[str]:
    """The models a server on this store would serve: its model folders with a manifest (nothing is loaded)."""
    from arena.records import MANIFEST

    return sorted(p.parent.name for p in store.glob(f"*/{MANIFEST}") if not p.parent.name.startswith((".", "_")))


def cmd_campaign(args: argparse.Namespace) -> None:
    import json

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from app.ratings.analysis import counted_votes, left_out
    from app.ratings.campaign import human_verdicts
    from app.store import StoreUnavailable, VoteStore

    settings = _settings({"models_store": args.store} if args.store else {})
    plan = _campaign_plan(settings)
    url = settings.database_url
    db = make_url(url).database if url.startswith("sqlite") else None
    if db and db != ":memory:" and not db.startswith("file:") and not Path(db).exists():
        votes, raters, source = [], [], f"no votes database at {db} yet"
    else:
        try:
            store = VoteStore(url)
            votes, raters = store.votes(), store.raters()
        except (StoreUnavailable, SQLAlchemyError) as e:  # an unreachable server, a database without the schema
            raise UserError(
                f"ARENA_DATABASE_URL: cannot read votes from {make_url(url).render_as_string()}: "
                f"{str(e).splitlines()[0]}"
            ) from None
        source = f"{len(votes)} votes from {len(raters)} raters in {make_url(url).render_as_string()}"
    counted = counted_votes(votes, left_out(raters, settings.exclude_flagged))
    served = _served_names(settings.models_store)
    standing = human_verdicts(plan, counted, served)
    if args.json:
        print(json.dumps(standing, indent=2))
        return
    print(campaign_table(standing, source, sum(r.flagged for r in raters), settings.exclude_flagged))


def campaign_table(standing: dict, source: str, flagged: int, excluded: bool) -> str:
    """The plain-text campaign plan: a header with the plan and the votes read, one line per question."""
    lines = [
        f"campaign {standing['plan']} ({standing['file']}, sha256 {standing['sha256'][:12]}): {standing['title']}",
        f"  {source}; {flagged} flagged rater{'s' if flagged != 1 else ''} "
        + ("left out" if excluded else "counted (ARENA_EXCLUDE_FLAGGED=false)"),
        f"  fixed before the votes: {standing['votes_per_question']} votes per question (power "
        f"{standing['power']:.0%} for a win share of {standing['effect']:.0%} at α {standing['alpha']}/"
        f"{len(standing['questions'])}, Holm's strictest step),",
        f"  looks at {', '.join(map(str, standing['looks']))} votes, interim boundary p < {standing['interim_p']}",
        f"  {standing['scope']}",
        "",
        f"  {'question':<44} {'votes':>6} {'planned':>8} {'needed':>7} {'next look':>10}  standing",
    ]
    for q in standing["questions"]:
        pair = f"{q['a']} vs {q['b']}" + ("" if q["served"] else " (not served)")
        look = str(q["next_look"]) if q["next_look"] else "-"
        if q["status"] == "open":
            state = "open"
        else:
            at = f"closed at look {q['closed_at_look']}" if q["status"] == "closed" else "complete"
            share = "" if q["share"] is None else f", {q['share']:.0%} [{q['interval'][0]:.0%}, {q['interval'][1]:.0%}]"
            state = f"{at}: {q['verdict']}{share}"
        lines.append(
            f"  {pair:<44} {q['votes']:>6} {q['planned_votes']:>8} {q['more_votes_needed']:>7} {look:>10}  {state}"
        )
    lines += ["", f"  {standing['open']} served question(s) open; {standing['more_votes_needed']} more votes needed"]
    return "\n".join(lines)


def add(sub: argparse._SubParsersAction) -> None:
    for adder in (_add_serve, _add_campaign, _add_crowd):
        adder(sub)
