"""Which task a rater gets next: gold pairs, best-of-four, repeats, else the pair with the fewest votes per weight."""

from __future__ import annotations

import itertools
import random

from app.ratings.gold import GOLD
from arena.latents import CLASSES, MAX_SEED
from arena.variants import VARIANTS, comparisons

PAIR_ANSWERS = ("A", "B", "tie", "both_bad")
FOUR_ANSWERS = ("A", "B", "C", "D", "tie", "all_bad")
WEIGHTED_PAIRS = [
    frozenset((v.name, ref.name)) for v, ref in comparisons()
]  # the report's pairs and every control vs its reference


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


def choose_task(ratings, registry, rid: str) -> tuple[str, list[str], int]:
    """Gold pairs, best-of-four within one family, repeats of another rater's pair, else the pair within a family
    with the fewest votes per weight (the report's pairs and each control against its reference weighted up)."""
    s, rng = ratings.settings, random.SystemRandom()
    ready = registry.available()
    if len(ready) < 2:
        raise NoTaskPossible(f"rating needs at least two ready models; ready: {', '.join(ready) or 'none'}")
    if rng.random() < s.gold_rate:
        return "gold", rng.sample(GOLD, 2), rng.randrange(MAX_SEED)
    families = families_of(registry, ready)
    if rng.random() < s.four_rate:
        big = [f for f in families.values() if len(f) >= 4]
        if big:
            return "four", rng.sample(rng.choice(big), 4), rng.randrange(MAX_SEED)
    if rng.random() < s.repeat_rate:
        repeats = [
            (m, seed)
            for m, seed, n in ratings.store.items_seen_by_others(rid)
            if set(m) <= set(ready) and n == s.rate_n
        ]
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
