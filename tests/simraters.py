"""Simulated raters (test code, never the product's data): known model strengths, logistic noise, position bias,
ties and a share of careless clickers. A campaign runs in-process on the service's own task rule
(app.ratings.scheduling.next_task), gold screening rule (app.store.gold_flag) and analysis (app.ratings.campaign,
app.ratings.ranking), so what the tests and bench/campaign.py find is what the service would do with these raters.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from app.ratings.campaign import DEFAULT_PLAN, CampaignPlan, human_verdicts, load_campaign
from app.ratings.gold import GOLD
from app.ratings.scheduling import next_task, open_questions
from app.store import gold_flag
from arena.variants import VARIANTS

LN10 = math.log(10.0)


@dataclass
class SimVote:
    """The attributes the analysis reads from a stored vote."""

    id: int
    rater_id: str
    kind: str
    models: list[str]
    seed: int
    n: int
    overall: str
    legibility: str
    noise: str


@dataclass
class SimRater:
    id: str
    careless: bool
    passed: int = 0
    failed: int = 0
    seen: set = field(default_factory=set)

    @property
    def flagged(self) -> bool:
        return gold_flag(self.passed, self.failed)


@dataclass(frozen=True)
class Population:
    """Raters' behaviour. `strengths` on the base-10 Bradley–Terry scale (rating = 400·strength + 1000); a careful
    rater's latent preference for the left grid is ln10·(r_left − r_right) + position_bias + logistic noise, a tie
    when its size is under `tie_band`; a careless one clicks A or B (A…D) at random, on gold tasks too."""

    strengths: dict[str, float]
    careless_share: float = 0.0
    position_bias: float = 0.0
    tie_band: float = 0.0
    gold_accuracy: float = 0.98

    def left_outcomes(self, left: str, right: str) -> tuple[float, float, float]:
        """(P left wins, P tie, P right wins) for a careful rater."""
        d = LN10 * (self.strengths[left] - self.strengths[right]) + self.position_bias
        win = 1 / (1 + math.exp(-(d - self.tie_band)))
        lose = 1 / (1 + math.exp(d + self.tie_band))
        return win, 1 - win - lose, lose

    def true_share(self, a: str, b: str) -> float:
        """The expected score of a against b (ties half) from careful raters, sides drawn at random: what a
        campaign's win share estimates once careless raters are screened out."""
        w1, t1, _ = self.left_outcomes(a, b)
        _, t2, l2 = self.left_outcomes(b, a)
        return 0.5 * (w1 + t1 / 2) + 0.5 * (l2 + t2 / 2)

    def answer(self, rng: random.Random, rater: SimRater, kind: str, models: list[str]) -> str:
        labels = "ABCD"[: len(models)]
        if rater.careless:
            return rng.choice(labels)
        if kind == "gold":
            real = labels[models.index("real_mnist")]
            return real if rng.random() < self.gold_accuracy else labels[1 - labels.index(real)]
        if kind == "four":  # Luce's choice rule: P(i best) ∝ 10^r_i (a Gumbel-max draw)
            scores = [LN10 * self.strengths[m] - math.log(-math.log(rng.random())) for m in models]
            return labels[scores.index(max(scores))]
        win, tie, _ = self.left_outcomes(models[0], models[1])
        u = rng.random()
        return "A" if u < win else "tie" if u < win + tie else "B"


def sim_settings(**overrides) -> SimpleNamespace:
    """The service's task settings (their defaults from app.core.settings) with overrides."""
    from app.core.settings import Settings

    keys = ("gold_rate", "four_rate", "repeat_rate", "rate_n", "report_pair_weight", "scheduler", "adaptive_floor")
    defaults = {k: Settings.model_fields[k].default for k in keys}
    return SimpleNamespace(**{**defaults, **overrides})


def table_families(models: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in models:
        out.setdefault(VARIANTS[m].family, []).append(m)
    return out


@dataclass
class Outcome:
    votes: list[SimVote]
    raters: dict[str, SimRater]
    votes_to_settle: int | None  # all votes cast (gold, best-of-four and repeats included) until no question was open
    campaign: dict[str, Any]

    def counted(self, exclude_flagged: bool = True) -> list[SimVote]:
        """The service's counted votes: no gold tasks, no votes of flagged raters when they are excluded."""
        return [v for v in self.votes if v.kind != "gold" and not (exclude_flagged and self.raters[v.rater_id].flagged)]


def run_campaign(
    plan: CampaignPlan,
    population: Population,
    settings: SimpleNamespace,
    seed: int,
    models: list[str] | None = None,
    raters: int = 60,
    max_votes: int = 20_000,
    refresh: int = 50,
    stop_when_settled: bool = True,
) -> Outcome:
    """Raters arrive at random and answer the tasks the service's rule gives them; the campaign's standing is
    recomputed every `refresh` votes (the service's results TTL), with the raters flagged by then left out."""
    rng = random.Random(seed)
    models = models or list(population.strengths)
    families = table_families(models)
    people = {f"r{i}": SimRater(f"r{i}", careless=rng.random() < population.careless_share) for i in range(raters)}
    votes: list[SimVote] = []
    counts: dict[tuple[str, str], int] = {}
    campaign = human_verdicts(plan, [], models)
    settled = None
    for t in range(max_votes):
        if t % refresh == 0:
            counted = [v for v in votes if v.kind != "gold" and not people[v.rater_id].flagged]
            campaign = human_verdicts(plan, counted, models)
            if campaign["open"] == 0 and settled is None:
                settled = t
                if stop_when_settled:
                    break
        rater = people[f"r{rng.randrange(raters)}"]
        repeats = (
            lambda r=rater: [  # noqa: E731 - other raters' recent pair items this rater has not seen
                (v.models, v.seed, v.n)
                for v in votes[-50:]
                if v.kind == "pair" and v.rater_id != r.id and (tuple(sorted(v.models)), v.seed, v.n) not in r.seen
            ]
        )
        kind, shown, task_seed = next_task(
            rng, settings, families, lambda: counts, repeats, open_questions(campaign, models)
        )
        answers = {q: population.answer(rng, rater, kind, shown) for q in ("overall", "legibility", "noise")}
        if kind == "gold":
            if answers["overall"] == "AB"[shown.index("real_mnist")]:
                rater.passed += 1
            else:
                rater.failed += 1
        if kind == "pair":
            key = tuple(sorted(shown))
            counts[key] = counts.get(key, 0) + 1
            rater.seen.add((key, task_seed, settings.rate_n))
        votes.append(SimVote(len(votes) + 1, rater.id, kind, shown, task_seed, settings.rate_n, **answers))
    counted = [v for v in votes if v.kind != "gold" and not people[v.rater_id].flagged]
    campaign = human_verdicts(plan, counted, models)
    if settled is None and campaign["open"] == 0:
        settled = len(votes)
    return Outcome(votes, people, settled, campaign)


def elo_truth(population: Population, models: list[str]) -> np.ndarray:
    """The true ratings on the results page's scale, centred like the fit (mean 1000)."""
    r = np.array([population.strengths[m] for m in models])
    return 400 * (r - r.mean()) + 1000


__all__ = [
    "GOLD",
    "Outcome",
    "Population",
    "SimRater",
    "SimVote",
    "elo_truth",
    "run_campaign",
    "sim_settings",
    "simulated_votes",
    "store_vote",
]


# ---- votes written into a real vote store (the page test, bench/results.py) -----------------------------------------


def store_vote(store, rid: str, kind: str, models: list[str], seed: int, answer: str) -> None:
    """One vote written through the vote store (an issued task, then its answer, as the routes do)."""
    task = store.issue(rid, kind, models, seed, 9, 3600)
    store.cast(rid, task.id, {"overall": answer, "legibility": answer, "noise": answer}, 4000, "chrome", "t", 10**6)


def simulated_votes(store, raters: int, each: int, seed: int = 1) -> None:
    """Raters with tastes of their own around a strength per model, voting on the campaign's pairs and best-of-four
    tasks within a family, some known-answer checks among them."""
    rng = np.random.default_rng(seed)
    pairs = list(load_campaign(DEFAULT_PLAN).pairs)
    strength = {n: rng.normal(0, 0.3) for n in VARIANTS}
    families = {}
    for n, v in VARIANTS.items():
        if not v.classes:
            families.setdefault(v.family, []).append(n)
    for r in range(raters):
        rid = store.new_rater(f"sim{r}")
        taste = {n: s + rng.normal(0, 0.1) for n, s in strength.items()}
        for k in range(each):
            seed_k = int(rng.integers(0, 2**31))
            if k % 10 == 9:
                models = list(rng.permutation(GOLD))
                store_vote(store, rid, "gold", models, seed_k, "AB"[models.index("real_mnist")])
            elif k % 7 == 6:
                models = list(rng.choice(max(families.values(), key=len), 4, replace=False))
                store_vote(store, rid, "four", models, seed_k, "ABCD"[int(np.argmax([taste[m] for m in models]))])
            else:
                a, b = pairs[int(rng.integers(len(pairs)))]
                models = [a, b] if rng.random() < 0.5 else [b, a]
                p = 1 / (1 + 10 ** (taste[models[1]] - taste[models[0]]))
                store_vote(store, rid, "pair", models, seed_k, "A" if rng.random() < p else "B")


def simulated_real_answers(store, raters: int, each: int, seed: int = 2) -> None:
    """Raters answering "real or generated?" on single images, half of them real digits, the rest from every variant
    (its seeds 0-99), each model taken for real at a rate of its own and each rater with a bias of their own."""
    from app.ratings.realness import REAL

    rng = np.random.default_rng(seed)
    rate = {n: float(rng.uniform(0.1, 0.6)) for n in VARIANTS} | {REAL: 0.8}
    names = list(VARIANTS)
    for r in range(raters):
        rid = store.new_rater(f"real{r}")
        bias = rng.normal(0, 0.5)
        for k in range(each):
            source = REAL if k % 2 else names[int(rng.integers(len(names)))]
            image = int(rng.integers(0, 1000 if source == REAL else 100))
            task = store.issue(rid, "real", [source], image, 1, 3600)
            p = 1 / (1 + math.exp(-(math.log(rate[source] / (1 - rate[source])) + bias)))
            store.answer_real(rid, task.id, bool(rng.random() < p), 1500)
