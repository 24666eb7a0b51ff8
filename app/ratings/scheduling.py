"""Which task a rater gets next: gold pairs, best-of-four, repeats, else a pair: where a vote narrows an open
campaign question most (adaptive), or the pair with the fewest votes per weight (uniform)."""

from __future__ import annotations

import itertools
import math
import random

from app.ratings.gold import GOLD
from arena.latents import CLASSES, MAX_SEED
from arena.variants import VARIANTS, comparisons

PAIR_ANSWERS = ("A", "B", "tie", "both_bad")
FOUR_ANSWERS = ("A", "B", "C", "D", "tie", "all_bad")
WEIGHTED_PAIRS = [
    frozenset((v.name, ref.name)) for v, ref in comparisons()
]  # the report's pairs and every control vs its reference


RANDOM = random.SystemRandom()  # the service's one source of task randomness (a test may seed a Random in its place)


class NoTaskPossible(Exception):
    """Fewer than two models are ready, so there is nothing to compare."""


def answers_for(kind: str) -> tuple[str, ...]:
    """The answers a task of this kind accepts (gold tasks are pairs)."""
    return FOUR_ANSWERS if kind == "four" else PAIR_ANSWERS


def task_digit(registry, models: list[str], seed: int) -> int | None:
    """The digit a task asks of its conditional models: seed mod 10, so both sides of a pair (and a repeat of it) show
    the same digit from the same seed, and the digits come up equally often; None when no model is conditional."""
    if any(getattr(registry.entries.get(m), "classes", 0) for m in models):
        return seed % CLASSES
    return None


def families_of(registry, names: list[str]) -> dict[str, list[str]]:
    """Ready models by family (a GAN against a VAE teaches nothing): the manifest's family, else the table's."""
    out: dict[str, list[str]] = {}
    for name in names:
        entry = registry.entries.get(name)
        family = (entry.manifest.get("family") if entry is not None and entry.manifest else None) or (
            VARIANTS[name].family if name in VARIANTS else "other"
        )
        out.setdefault(family, []).append(name)
    return out


def open_questions(campaign: dict | None, ready: list[str]) -> dict[tuple[str, str], int]:
    """The campaign's questions still open whose two models are ready, with their counted votes."""
    rows = (campaign or {}).get("questions") or []
    return {
        tuple(sorted((r["a"], r["b"]))): r["votes"]
        for r in rows
        if r["status"] == "open" and r["a"] in ready and r["b"] in ready
    }


def narrowing(votes: int) -> float:
    """How much one more vote narrows a question's interval, in units of one vote's spread: 1/√(n+1) − 1/√(n+2)
    (the half-width of a mean over n + 1 votes minus over n + 2; the +1 keeps a question without votes finite)."""
    return 1 / math.sqrt(votes + 1) - 1 / math.sqrt(votes + 2)


def next_task(
    rng: random.Random, s, families: dict[str, list[str]], counts, repeats, open_q: dict[tuple[str, str], int]
) -> tuple[str, list[str], int]:
    """The task rule, on plain inputs so the simulated campaigns run the service's own rule: gold pairs (gold_rate),
    best-of-four within one family (four_rate), repeats of another rater's item (repeat_rate), else a pair.

    The pair: with the adaptive scheduler (ARENA_SCHEDULER=adaptive) and a campaign question open, an open question
    chosen with probability proportional to `narrowing` of its counted votes — except for a share `adaptive_floor`
    of pair tasks, and whenever no question is open, which take the uniform rule, so no pair within a family
    starves; the uniform rule is the pair with the fewest votes per weight (the report's pairs and each control
    against its reference weighted by report_pair_weight). `counts` and `repeats` are called only when needed."""
    if rng.random() < s.gold_rate:
        return "gold", rng.sample(GOLD, 2), rng.randrange(MAX_SEED)
    if rng.random() < s.four_rate:
        big = [f for f in families.values() if len(f) >= 4]
        if big:
            return "four", rng.sample(rng.choice(big), 4), rng.randrange(MAX_SEED)
    if rng.random() < s.repeat_rate:
        again = [(m, seed) for m, seed, n in repeats() if n == s.rate_n]
        if again:
            models, seed = rng.choice(again)
            return "pair", rng.sample(models, 2), seed
    if s.scheduler == "adaptive" and open_q and rng.random() >= s.adaptive_floor:
        pairs = sorted(open_q)
        pair = rng.choices(pairs, weights=[narrowing(open_q[p]) for p in pairs])[0]
        return "pair", rng.sample(list(pair), 2), rng.randrange(MAX_SEED)
    return "pair", rng.sample(list(fewest_per_weight(rng, s, families, counts())), 2), rng.randrange(MAX_SEED)


def fewest_per_weight(rng: random.Random, s, families: dict[str, list[str]], counts: dict) -> tuple[str, str]:
    """The uniform rule: among pairs within a family (across families only when no family has two models), one of
    those with the fewest votes per weight."""
    pairs = [tuple(sorted(p)) for members in families.values() for p in itertools.combinations(members, 2)]
    if not pairs:
        pairs = [tuple(sorted(p)) for p in itertools.combinations([m for f in families.values() for m in f], 2)]
    weight = {p: s.report_pair_weight if set(p) in WEIGHTED_PAIRS else 1.0 for p in pairs}
    need = {p: counts.get(p, 0) / weight[p] for p in pairs}
    fewest = min(need.values())
    return rng.choice([p for p in pairs if need[p] == fewest])


def choose_task(
    ratings, registry, rid: str, campaign: dict | None = None, pairs_only: bool = False
) -> tuple[str, list[str], int]:
    """The next task for this rater from the store's counts and the campaign's standing (see `next_task`);
    `pairs_only`: a pair or a repeat, never a known-answer check or a best-of-four (a crowd participant's planned
    pair step: their checks are planned steps of their own)."""
    ready = registry.available()
    if len(ready) < 2:
        raise NoTaskPossible(f"rating needs at least two ready models; ready: {', '.join(ready) or 'none'}")
    ready_set = set(ready)
    settings = (
        ratings.settings.model_copy(update={"gold_rate": 0.0, "four_rate": 0.0}) if pairs_only else ratings.settings
    )
    return next_task(
        RANDOM,
        settings,
        families_of(registry, ready),
        ratings.store.pair_counts,
        lambda: [(m, seed, n) for m, seed, n in ratings.store.items_seen_by_others(rid) if set(m) <= ready_set],
        open_questions(campaign, ready),
    )
