"""A rating campaign's plan and its human verdicts: per question (a pair of served models), the variant's win share
with a cluster-robust interval, Holm over the campaign's own primary tests, two one-sided tests against the plan's
margin, planned looks with a Haybittle–Peto boundary, and the votes each open question still needs.

The plan is a TOML file (app/ratings/plans/, or ARENA_CAMPAIGN_PLAN) fixed before its votes; everything that decides
(questions, margin, votes per question, looks, boundary) is read from it, nothing from the votes.
"""

from __future__ import annotations

import hashlib
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from app.ratings.ranking import missing
from arena.stats import holm, tost_from
from arena.variants import comparisons

PLANS = Path(__file__).resolve().parent / "plans"
DEFAULT_PLAN = PLANS / "served-pairs-v1.toml"
RATED = ("overall", "legibility", "noise")  # the questions a vote answers (app.store.QUESTIONS)
PAIR_SOURCES = ("comparisons",)  # where a plan's pairs come from: the variant table's comparisons


class CampaignPlanError(ValueError):
    """A campaign plan that is unreadable or incomplete; the message names the file, the key and what is accepted."""


@dataclass(frozen=True)
class CampaignPlan:
    path: Path
    sha256: str
    id: str
    version: int
    title: str
    alpha: float
    power: float
    primary: str
    secondaries: tuple[str, ...]
    effect: float
    margin: tuple[float, float]
    votes_per_question: int
    looks: tuple[float, ...]
    interim_p: float
    stopping_rule: str
    scope: str
    pairs: tuple[tuple[str, str], ...]  # (variant, reference): the win share is the variant's

    @property
    def name(self) -> str:
        return f"{self.id} v{self.version}"

    def look_sizes(self) -> list[int]:
        """The counted votes at which each planned look happens (the last is votes_per_question)."""
        return [max(2, math.ceil(f * self.votes_per_question - 1e-9)) for f in self.looks]

    def summary(self) -> dict[str, Any]:
        return {
            "plan": self.name,
            "file": self.path.name,
            "sha256": self.sha256,
            "title": self.title,
            "alpha": self.alpha,
            "power": self.power,
            "effect": self.effect,
            "margin": list(self.margin),
            "votes_per_question": self.votes_per_question,
            "looks": self.look_sizes(),
            "interim_p": self.interim_p,
            "stopping_rule": self.stopping_rule,
            "scope": self.scope,
        }


def _need(table: dict, key: str, kind, path: Path, accepted: str):
    value = table.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CampaignPlanError(f"{path.name}: [campaign] {key} = {value!r}; accepted: {accepted}")
    return value


def load_campaign(path: Path = DEFAULT_PLAN) -> CampaignPlan:
    """Read and check a campaign plan; a wrong value is one line naming the file, the key and what is accepted."""
    path = Path(path)
    raw, c = _read_plan(path)
    alpha = _need(c, "alpha", float, path, "a number in (0, 0.5)")
    power = _need(c, "power", float, path, "a number in (0.5, 1)")
    effect = _need(c, "effect", float, path, "a win share in (0.5, 1)")
    margin = tuple(_need(c, "margin", list, path, "[low, high] around 0.5"))
    looks = tuple(_need(c, "looks", list, path, "increasing fractions ending in 1.0"))
    pairs = tuple((v.name, ref.name) for v, ref in comparisons())
    for ok, key, value, accepted in _plan_checks(c, alpha, power, effect, margin, looks, pairs):
        if not ok:
            raise CampaignPlanError(f"{path.name}: [campaign] {key} = {value!r}; accepted: {accepted}")
    return CampaignPlan(
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        id=_need(c, "id", str, path, "a short name"),
        version=_need(c, "version", int, path, "a whole number"),
        title=_need(c, "title", str, path, "a sentence"),
        alpha=alpha,
        power=power,
        primary=c["primary"],
        secondaries=tuple(c.get("secondaries", [])),
        effect=effect,
        margin=(float(margin[0]), float(margin[1])),
        votes_per_question=_need(c, "votes_per_question", int, path, "a whole number of votes, 10 or more"),
        looks=tuple(float(f) for f in looks),
        interim_p=_need(c, "interim_p", float, path, "a p-value boundary below alpha"),
        stopping_rule=_need(c, "stopping_rule", str, path, "a sentence"),
        scope=_need(c, "scope", str, path, "a sentence"),
        pairs=pairs,
    )


def _read_plan(path: Path) -> tuple[bytes, dict[str, Any]]:
    """The plan file's bytes (hashed into the plan) and its [campaign] table."""
    try:
        raw = path.read_bytes()
        return raw, tomllib.loads(raw.decode())["campaign"]
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError) as e:
        raise CampaignPlanError(f"{path}: not a readable campaign plan with a [campaign] table ({e})") from None


def _plan_checks(
    c: dict[str, Any],
    alpha: float,
    power: float,
    effect: float,
    margin: tuple,
    looks: tuple,
    pairs: tuple[tuple[str, str], ...],
) -> list[tuple[bool, str, Any, str]]:
    """(holds, key, value, what is accepted) for each rule a plan's values must meet, in the order they are reported."""
    return [
        (0 < alpha < 0.5, "alpha", alpha, "a number in (0, 0.5)"),
        (0.5 < power < 1, "power", power, "a number in (0.5, 1)"),
        (0.5 < effect < 1, "effect", effect, "a win share in (0.5, 1)"),
        (
            len(margin) == 2 and 0 < margin[0] < 0.5 < margin[1] < 1 and abs(sum(margin) - 1) < 1e-9,
            "margin",
            list(margin),
            "[low, high] symmetric around 0.5",
        ),
        (
            bool(looks) and list(looks) == sorted(set(looks)) and looks[-1] == 1.0 and looks[0] > 0,
            "looks",
            list(looks),
            "increasing fractions in (0, 1] ending in 1.0",
        ),
        (c.get("pairs") in PAIR_SOURCES, "pairs", c.get("pairs"), ", ".join(PAIR_SOURCES)),
        (c.get("primary") in RATED, "primary", c.get("primary"), ", ".join(RATED)),
        (set(c.get("secondaries", [])) <= set(RATED), "secondaries", c.get("secondaries"), ", ".join(RATED)),
        (
            c.get("questions") == len(pairs),
            "questions",
            c.get("questions"),
            f"the variant table's {len(pairs)} comparisons (a plan fixed for another table is a new version)",
        ),
    ]


def power_at(n: int, effect: float, alpha: float) -> float:
    """Power of the two-sided test of a 50 % share at level α with n votes (one per item) when the true share is
    `effect` (normal approximation, no ties: the conservative case)."""
    from scipy.stats import norm

    se0, se1 = 0.5 / math.sqrt(n), math.sqrt(effect * (1 - effect) / n)
    z = norm.ppf(1 - alpha / 2)
    return float(norm.cdf(((effect - 0.5) - z * se0) / se1) + norm.cdf((-(effect - 0.5) - z * se0) / se1))


def votes_for_power(effect: float, alpha: float, power: float, sd: float | None = None) -> int:
    """Votes for `power` to find a true share `effect` at two-sided level α; `sd` a measured per-vote spread
    (ties make it smaller than the binomial one), else the binomial spread at the effect."""
    from scipy.stats import norm

    sd1 = sd if sd else math.sqrt(effect * (1 - effect))
    sd0 = sd if sd else 0.5
    n = ((norm.ppf(1 - alpha / 2) * sd0 + norm.ppf(power) * sd1) / (effect - 0.5)) ** 2
    return max(2, math.ceil(n))


# ---- the statistic --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Share:
    """A win share with its cluster-robust standard error over items (seeds), and what it rests on."""

    share: float
    se: float
    df: int
    votes: int
    items: int
    repeated: int  # items rated more than once
    ties: int
    sd: float  # the spread of one vote's score

    def interval(self) -> tuple[float, float]:
        from scipy.stats import t

        half = t.ppf(0.975, self.df) * self.se
        return self.share - half, self.share + half

    def p(self) -> float:
        from scipy.stats import t

        if self.se == 0:
            return 0.0 if self.share != 0.5 else 1.0
        return float(2 * t.sf(abs(self.share - 0.5) / self.se, self.df))

    def tost_p(self, margin: tuple[float, float]) -> float:
        return tost_from(self.share - 0.5, self.se, self.df, margin[1] - 0.5)


def vote_score(vote, question: str, a: str) -> float | None:
    """What one pair vote says on `question` for model `a`: 1 won, 0 lost, ½ tie, None for "both bad"."""
    answer = getattr(vote, question)
    if answer == "tie":
        return 0.5
    if answer in ("A", "B"):
        return 1.0 if vote.models["AB".index(answer)] == a else 0.0
    return None


def win_share(scored: Sequence[tuple[Any, float]]) -> Share | None:
    """The mean score with a cluster-robust (sandwich) standard error: scored = [(item, score)], votes on one item
    are correlated (the same images), items independent. None below two items."""
    clusters: dict[Any, list[float]] = {}
    for item, s in scored:
        clusters.setdefault(item, []).append(s)
    k, n = len(clusters), len(scored)
    if k < 2:
        return None
    mean = sum(s for _, s in scored) / n
    spread = sum(sum(s - mean for s in c) ** 2 for c in clusters.values())
    se = math.sqrt(k / (k - 1) * spread) / n
    sd = math.sqrt(sum((s - mean) ** 2 for _, s in scored) / (n - 1)) if n > 1 else 0.0
    repeated = sum(1 for c in clusters.values() if len(c) > 1)
    return Share(mean, se, k - 1, n, k, repeated, sum(1 for _, s in scored if s == 0.5), sd)


# ---- a plan applied to the votes ------------------------------------------------------------------------------------


def question_votes(plan: CampaignPlan, counted: Iterable) -> dict[tuple[str, str], list]:
    """Each question's pair votes (pair tasks on exactly its two models, gold and best-of-four left out), in vote
    order."""
    index = {frozenset(p): p for p in plan.pairs}
    out: dict[tuple[str, str], list] = {p: [] for p in plan.pairs}
    for v in sorted(counted, key=lambda v: v.id):
        pair = index.get(frozenset(v.models)) if v.kind == "pair" and len(v.models) == 2 else None
        if pair is not None:
            out[pair].append(v)
    return out


def _scored(votes: list, question: str, a: str) -> list[tuple[Any, float]]:
    return [(v.seed, s) for v in votes if (s := vote_score(v, question, a)) is not None]


def _look(plan: CampaignPlan, votes: list, a: str) -> dict[str, Any]:
    """Where the question stands by its planned looks: the first interim look that crosses the boundary closes it;
    else it is complete at its full count, or open. `used` = the votes its verdict rests on."""
    sizes = plan.look_sizes()
    for j, size in enumerate(sizes[:-1]):
        if len(votes) < size:
            break
        s = win_share(_scored(votes[:size], plan.primary, a))
        if s is not None and (s.p() < plan.interim_p or s.tost_p(plan.margin) < plan.interim_p):
            return {"status": "closed", "look": j + 1, "used": votes[:size]}
    if len(votes) >= sizes[-1]:
        return {"status": "complete", "look": len(sizes), "used": votes[: sizes[-1]]}
    return {"status": "open", "look": None, "used": votes}


def _verdict(share, pair, p_adj, tost_adj, plan, decided: bool) -> tuple[str, str, str | None]:
    """The four-way verdict words of the metric verdicts: which model is better, equivalent within the margin, or
    not settled (always "not settled" before a question's closing look or full count)."""
    a, b = pair
    if decided and share is not None and p_adj is not None and p_adj < plan.alpha:
        winner = a if share.share > 0.5 else b
        return "difference", f"{winner} better", winner
    if decided and tost_adj is not None and tost_adj < plan.alpha:
        low, high = plan.margin
        return "equivalent", f"equivalent within {100 * low:.0f}–{100 * high:.0f} %", None
    return "not settled", "not settled", None


def _share_fields(share: Share | None) -> dict[str, Any]:
    if share is None:
        return {"share": None, "interval": None, "items": 0, "repeated_items": 0, "ties": 0, "p": None}
    low, high = share.interval()
    low, high = max(0.0, low), min(1.0, high)  # a share lies in [0, 1]; the normal interval can overshoot near its ends
    return {
        "share": share.share,
        "interval": [low, high],
        "items": share.items,
        "repeated_items": share.repeated,
        "ties": share.ties,
        "p": share.p(),
    }


def _status(plan: CampaignPlan, pair, votes: list, ready: bool) -> dict[str, Any]:
    """One question's look, statistic and vote counts, before Holm."""
    look = _look(plan, votes, pair[0])
    used = look["used"]
    share = win_share(_scored(used, plan.primary, pair[0]))
    open_ = look["status"] == "open"
    sd = share.sd if share is not None else None
    m = len(plan.pairs)
    raters = len({v.rater_id for v in used})
    return {
        "a": pair[0],
        "b": pair[1],
        "served": ready,
        "status": look["status"],
        "closed_at_look": look["look"] if look["status"] == "closed" else None,
        "votes": len(votes),
        "used_votes": len(used),
        "beyond_plan": 0 if open_ else len(votes) - len(used),
        "planned_votes": plan.votes_per_question,
        "more_votes_needed": max(0, plan.votes_per_question - len(votes)) if open_ else 0,
        "next_look": next((n for n in plan.look_sizes() if n > len(votes)), None) if open_ else None,
        # exploratory: the count the plan's power would need at the spread measured so far (ties make it smaller)
        "votes_for_power_at_measured_spread": (
            votes_for_power(plan.effect, plan.alpha / m, plan.power, sd) if sd else None
        ),
        "both_bad": sum(1 for v in used if getattr(v, plan.primary) in ("both_bad", "all_bad")),
        "_share": share,
        **_share_fields(share),
        "items": share.items if share is not None else len({v.seed for v in used}),
        "raters": raters,
        # the page's rule (app/ratings/ranking.py): a share and its interval only from enough votes and raters
        "needs": missing(len(used), raters, "vote"),
    }


def human_verdicts(plan: CampaignPlan, counted: Iterable, ready: Iterable[str]) -> dict[str, Any]:
    """Every question of the plan from the counted votes (after gold screening): status, win share and interval,
    Holm over the primary tests of all questions (open ones count as p = 1), the verdict, the gatekept secondaries."""
    ready = set(ready)
    by_pair = question_votes(plan, counted)
    rows = [_status(plan, pair, votes, pair[0] in ready and pair[1] in ready) for pair, votes in by_pair.items()]
    decided = [r["status"] != "open" and r["_share"] is not None for r in rows]
    p_adj = holm([r["_share"].p() if d else 1.0 for r, d in zip(rows, decided)])
    tost_adj = holm([r["_share"].tost_p(plan.margin) if d else 1.0 for r, d in zip(rows, decided)])
    for r, d, pa, ta in zip(rows, decided, p_adj, tost_adj):
        kind, words, winner = _verdict(r["_share"], (r["a"], r["b"]), pa, ta, plan, d)
        r.update(
            {
                "p_holm": pa if d else None,
                "tost_p_holm": ta if d else None,
                "kind": kind,
                "verdict": words,
                "winner": winner,
            }
        )
    _secondaries(plan, rows, by_pair)
    for r in rows:
        del r["_share"]
    return {
        **plan.summary(),
        "questions": rows,
        "open": sum(r["status"] == "open" for r in rows if r["served"]),
        "more_votes_needed": sum(r["more_votes_needed"] for r in rows if r["served"]),
    }


def _secondaries(plan: CampaignPlan, rows: list[dict[str, Any]], by_pair: dict[tuple[str, str], list]) -> None:
    """Gatekeeping: a question's secondaries are tested only where its primary verdict is a difference, on the votes
    its primary used, with Holm over every secondary so tested."""
    tests = []
    for r in rows:
        r["secondaries"] = {}
        if r["kind"] != "difference":
            for q in plan.secondaries:
                r["secondaries"][q] = {"verdict": "not tested: the primary is not a difference"}
            continue
        used = by_pair[(r["a"], r["b"])][: r["used_votes"]]
        for q in plan.secondaries:
            tests.append((r, q, win_share(_scored(used, q, r["a"]))))
    adjusted = holm([s.p() if s is not None else None for _, _, s in tests])
    for (r, q, s), pa in zip(tests, adjusted):
        kind, words, winner = _verdict(s, (r["a"], r["b"]), pa, None, plan, True)
        r["secondaries"][q] = {**_share_fields(s), "p_holm": pa, "kind": kind, "verdict": words, "winner": winner}
