"""Bradley–Terry ratings with bootstrap intervals, rater agreement, and human-vs-metric rank correlation."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

ELO_SCALE, ELO_BASE = 400.0, 1000.0


@dataclass(frozen=True)
class Comparison:
    """One pairwise outcome: `score` is 1 if a won, 0 if b won, 0.5 for a tie; `vote` the vote it came from (a
    best-of-four vote gives three comparisons, a tie among four six: the bootstrap resamples votes, not comparisons)."""

    a: str
    b: str
    score: float
    vote: Any = None


def comparisons_from_vote(models: list[str], kind: str, answer: str, vote: Any = None) -> list[Comparison]:
    """A pair vote gives one comparison; a best-of-four vote gives the winner a win over each other model."""
    labels = "ABCD"[: len(models)]
    if answer in ("both_bad", "all_bad"):
        return []
    if answer == "tie":
        return [Comparison(a, b, 0.5, vote) for a, b in itertools.combinations(models, 2)]
    winner = models[labels.index(answer)]
    return [Comparison(winner, m, 1.0, vote) for m in models if m != winner]


def _encode(comparisons: list[Comparison], models: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each comparison as (ordered-pair code a·M + b, score)."""
    index = {m: i for i, m in enumerate(models)}
    codes = np.array([index[c.a] * len(models) + index[c.b] for c in comparisons], int)
    return codes, np.array([c.score for c in comparisons], float)


PRIOR_TIES = 1.0  # virtual tied comparisons per pair of models: the weak prior that keeps few votes sane


def _with_prior(wins: np.ndarray, counts: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of models starts with PRIOR_TIES virtual ties (half a win each way).

    Without it, a model that never lost has no finite maximum-likelihood rating (6 votes from one rater gave
    −1,145 … 3,098); with it, 6 straight wins give a ~450-point gap, and after a few hundred votes a pair's one
    virtual tie moves its rating by a point or two. The same prior enters every bootstrap refit.
    """
    upper = np.triu_indices(m, 1)
    codes = upper[0] * m + upper[1]
    wins, counts = wins.copy(), counts.copy()
    wins[codes] += PRIOR_TIES / 2
    counts[codes] += PRIOR_TIES
    return wins, counts


def _fit_counts(wins: np.ndarray, counts: np.ndarray, m: int, l2: float = 1e-4) -> np.ndarray:
    """Posterior mode on aggregated outcomes: wins[k] of counts[k] for ordered pair k = a·M + b (ties halved)."""
    wins, counts = _with_prior(wins, counts, m)
    keep = counts > 0
    a, b = np.divmod(np.flatnonzero(keep), m)
    w, n = wins[keep], counts[keep]
    ln10 = np.log(10.0)

    def nll(r: np.ndarray) -> tuple[float, np.ndarray]:
        p = 1.0 / (1.0 + np.exp(-(r[a] - r[b]) * ln10))
        eps = 1e-12
        loss = -np.sum(w * np.log(p + eps) + (n - w) * np.log(1 - p + eps)) + l2 * np.sum(r**2)
        g = (n * p - w) * ln10
        return loss, np.bincount(a, g, m) - np.bincount(b, g, m) + 2 * l2 * r

    from scipy.optimize import minimize  # imported on first use: start-up does not pay for SciPy

    result = minimize(nll, np.zeros(m), jac=True, method="L-BFGS-B")
    return result.x - result.x.mean()


def fit_bradley_terry(comparisons: list[Comparison], models: list[str], l2: float = 1e-4) -> np.ndarray:
    """Strengths r (base-10 logistic, mean 0): P(i beats j) = 1 / (1 + 10^(r_j − r_i)), fitted by maximum likelihood
    with the weak prior of `_with_prior` (one virtual tie per pair of models).

    Outcomes are aggregated per ordered pair first, so the fit costs the same for 10 or 10⁶ votes.
    """
    m = len(models)
    if not comparisons:
        return np.zeros(m)
    codes, scores = _encode(comparisons, models)
    return _fit_counts(np.bincount(codes, scores, m * m), np.bincount(codes, minlength=m * m).astype(float), m, l2)


def elo(r: np.ndarray) -> np.ndarray:
    return ELO_SCALE * r + ELO_BASE


def bootstrap(comparisons: list[Comparison], models: list[str], resamples: int = 200, seed: int = 0) -> np.ndarray:
    """Ratings refitted on `resamples` resamples (with replacement) of the votes: (resamples, models). The
    comparisons of one vote (a best-of-four answer gives three) are drawn together; comparisons without a vote are
    votes of their own."""
    rng = np.random.default_rng(seed)
    m = len(models)
    codes, scores = _encode(comparisons, models)
    index: dict[Any, int] = {}
    cluster = np.array(
        [
            index.setdefault(c.vote if c.vote is not None else ("comparison", i), len(index))
            for i, c in enumerate(comparisons)
        ],
        int,
    )
    k = len(index)
    out = np.empty((resamples, m))
    for i in range(resamples):
        weight = np.bincount(rng.integers(0, k, k), minlength=k)[cluster].astype(float)  # each vote's draws
        wins = np.bincount(codes, scores * weight, m * m)
        out[i] = elo(_fit_counts(wins, np.bincount(codes, weight, m * m), m))
    return out


def shared_ranks(lower: np.ndarray, upper: np.ndarray) -> list[int]:
    """Chatbot Arena's rule: 1 + the number of models whose lower bound is above this model's upper bound."""
    return [1 + int(np.sum(lower > upper[i])) for i in range(len(lower))]


def rank_table(
    comparisons: list[Comparison], models: list[str], resamples: int = 200, seed: int = 0
) -> list[dict[str, Any]]:
    if not comparisons:
        return [
            {"model": m, "rating": None, "lower": None, "upper": None, "rank": None, "comparisons": 0} for m in models
        ]
    point = elo(fit_bradley_terry(comparisons, models))
    boots = bootstrap(comparisons, models, resamples, seed)
    lower, upper = np.percentile(boots, 2.5, axis=0), np.percentile(boots, 97.5, axis=0)
    ranks = shared_ranks(lower, upper)
    counts = {m: sum(c.a == m or c.b == m for c in comparisons) for m in models}
    rows = [
        {
            "model": m,
            "rating": round(float(point[i]), 1),
            "lower": round(float(lower[i]), 1),
            "upper": round(float(upper[i]), 1),
            "rank": ranks[i],
            "comparisons": counts[m],
        }
        for i, m in enumerate(models)
    ]
    return sorted(rows, key=lambda r: -r["rating"])


def components(comparisons: list[Comparison], models: list[str]) -> list[list[str]]:
    """The connected components of the comparison graph (models joined by at least one comparison), each in the given
    model order; a model never compared is a component of its own. Ratings are only comparable within a component:
    across components the Bradley–Terry fit is set by its prior alone."""
    parent = {m: m for m in models}

    def root(m: str) -> str:
        while parent[m] != m:
            parent[m] = parent[parent[m]]
            m = parent[m]
        return m

    for c in comparisons:
        if c.a in parent and c.b in parent:
            parent[root(c.a)] = root(c.b)
    groups: dict[str, list[str]] = {}
    for m in models:
        groups.setdefault(root(m), []).append(m)
    return list(groups.values())


def win_matrix(comparisons: list[Comparison], models: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """For each ordered pair: the share of comparisons the row model won (ties half) and the count."""
    out: dict[str, dict[str, dict[str, float]]] = {m: {} for m in models}
    for x, y in itertools.permutations(models, 2):
        scores = [c.score if c.a == x else 1 - c.score for c in comparisons if {c.a, c.b} == {x, y}]
        out[x][y] = {"win_rate": round(float(np.mean(scores)), 3) if scores else None, "count": len(scores)}
    return out


def krippendorff_alpha_nominal(units: Iterable[list[str]]) -> float | None:
    """Krippendorff's alpha for nominal labels; each unit is the list of labels raters gave one item."""
    units = [u for u in units if len(u) >= 2]
    if not units:
        return None
    labels = sorted({v for u in units for v in u})
    idx = {v: i for i, v in enumerate(labels)}
    o = np.zeros((len(labels), len(labels)))
    for u in units:
        counts = np.bincount([idx[v] for v in u], minlength=len(labels)).astype(float)
        o += (np.outer(counts, counts) - np.diag(counts)) / (len(u) - 1)
    n_c = o.sum(1)
    n = n_c.sum()
    observed = o.sum() - np.trace(o)
    expected = (n * n - np.sum(n_c**2)) / (n - 1)
    if expected == 0:
        return 1.0 if observed == 0 else None
    return float(1 - observed / expected)


def percent_agreement(units: Iterable[list[str]]) -> float | None:
    agree = total = 0
    for u in units:
        for x, y in itertools.combinations(u, 2):
            agree += x == y
            total += 1
    return agree / total if total else None


def rank_correlation(human: dict[str, float], metric: dict[str, float], higher_is_better: bool) -> dict[str, Any]:
    common = sorted(set(human) & set(metric))
    if len(common) < 3:
        return {"spearman": None, "models": len(common)}
    sign = 1 if higher_is_better else -1
    from scipy.stats import spearmanr

    rho = spearmanr([human[m] for m in common], [sign * metric[m] for m in common]).statistic
    return {"spearman": None if np.isnan(rho) else round(float(rho), 3), "models": len(common)}
