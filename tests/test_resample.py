"""The two-stage bootstrap over raters (arena/resample.py) and the Bradley–Terry intervals built on it: simulated
raters with biases of their own, and intervals that cover the population's ratings at their nominal rate."""

from __future__ import annotations

import numpy as np
import pytest

from app.ratings.ranking import Comparison, bootstrap, elo, fit_bradley_terry
from arena.resample import percentile_interval, rater_weights

MODELS = ["a", "b", "c", "d"]
STRENGTH = np.array([0.30, 0.10, -0.10, -0.30])  # base-10 strengths of the population of raters
RATER_SD = 0.25  # each rater's own taste: a per-model offset, drawn once per rater


def test_each_resample_draws_raters_then_their_own_votes():
    """Rater x has 3 votes, y has 1: a resample draws 2 raters; a drawn rater brings as many draws of its own
    votes as it has votes, never another rater's."""
    raters = ["x", "x", "x", "y"]
    w = rater_weights(raters, resamples=500, seed=3)
    per_x, per_y = w[:, :3].sum(1), w[:, 3]
    assert set(np.unique(per_x)) <= {0, 3, 6} and set(np.unique(per_y)) <= {0, 1, 2}
    assert np.all(per_x / 3 + per_y == 2)  # two raters drawn in every resample
    assert 0.15 < np.mean(per_x == 6) < 0.35  # x drawn twice: 1 in 4
    # with one vote per rater it is the ordinary bootstrap of votes
    plain = rater_weights(list(range(50)), resamples=200, seed=1)
    assert np.all(plain.sum(1) == 50)


def simulate(rng, raters=20, votes_each=30):
    comps = []
    for r in range(raters):
        taste = STRENGTH + rng.normal(0, RATER_SD, len(MODELS))
        for k in range(votes_each):
            i, j = rng.choice(len(MODELS), 2, replace=False)
            p = 1 / (1 + 10 ** (taste[j] - taste[i]))
            comps.append(Comparison(MODELS[i], MODELS[j], float(rng.random() < p), vote=(r, k), rater=r))
    return comps


def population_ratings() -> np.ndarray:
    """What the fit converges to with a very large crowd from the same population (the interval's target)."""
    return elo(fit_bradley_terry(simulate(np.random.default_rng(99), raters=4000, votes_each=30), MODELS))


def coverage(reps: int, by_rater: bool) -> float:
    truth = population_ratings()
    hits = total = 0
    for rep in range(reps):
        comps = simulate(np.random.default_rng(rep))
        if not by_rater:  # the old way: every vote its own rater
            comps = [Comparison(c.a, c.b, c.score, c.vote, rater=None) for c in comps]
        low, high = percentile_interval(bootstrap(comps, MODELS, resamples=2000, seed=rep))
        hits += int(np.sum((low <= truth) & (truth <= high)))
        total += len(MODELS)
    return hits / total


@pytest.mark.slow  # 200 simulated crowds, 2,000 resamples each (about a minute)
def test_rater_bootstrap_intervals_cover_at_least_90_percent_at_nominal_95():
    """200 seeded crowds of 20 raters with tastes of their own: the rater bootstrap's 95 % intervals cover the
    population's ratings at least 90 % of the time; resampling votes as if independent covers markedly less."""
    by_rater = coverage(200, by_rater=True)
    assert by_rater >= 0.90, by_rater
    by_vote = coverage(60, by_rater=False)
    assert by_vote < by_rater - 0.05, (by_vote, by_rater)
