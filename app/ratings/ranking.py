"""Bradley–Terry ratings with bootstrap intervals, rater agreement, and human-vs-metric rank correlation."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from arena.resample import RESAMPLES, percentile_interval, rater_weights

ELO_SCALE, ELO_BASE = 400.0, 1000.0


@dataclass(frozen=True)
class Comparison:
    """One pairwise outcome: `score` is 1 if a won, 0 if b won, 0.5 for a tie; `vote` the vote it came from (a
    best-of-four vote gives three comparisons, a tie among four six: the bootstrap resamples votes, not comparisons)."""

    a: str
    b: str
    score: float
    vote: Any = None
    rater: Any = None  # who answered: the bootstrap resamples raters, then their votes


def comparisons_from_vote(
    models: list[str], kind: str, answer: str, vote: Any = None, rater: Any = None
) -> list[Comparison]:
    """A pair vote gives one comparison; a best-of-four vote gives the winner a win over each other model."""
    labels = "ABCD"[: len(models)]
    if answer in ("both_bad", "all_bad"):
        return []
    if answer == "tie":
        return [Comparison(a, b, 0.5, vote, rater) for a, b in itertools.combinations(models, 2)]
    winner = models[labels.index(answer)]
    return [Comparison(winner, m, 1.0, vote, rater) for m in models if m != winner]


def _encode(comparisons: list[Comparison], models: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each comparison as (ordered-pair code a·M + b, score)."""
    index = {m: i for i, m in enumerate(models)}
    codes = np.array([index[c.a] * len(models) + index[c.b] for c in comparisons], int)
    return codes, np.array([c.score for c in comparisons], float)


PRIOR_TIES = 1.0  # virtual tied comparisons per pair of models: the weak prior that keeps few votes sane


# Every pair of models starts with PRIOR_TIES virtual ties (half a win each way). Without it, a model that never lost
# has no finite maximum-likelihood rating (6 votes from one rater gave −1,145 … 3,098); with it, 6 straight wins give
# a ~450-point gap, and after a few hundred votes a pair's one virtual tie moves its rating by a point or two. The same
# prior enters every bootstrap refit (_fit_batch adds it).


def _fit_batch(wins: np.ndarray, counts: np.ndarray, l2: float = 1e-4) -> np.ndarray:
    """Posterior modes for a batch of outcome tables at once: wins[r, i, j] comparisons i won against j (ties
    halved) of counts[r, i, j] -> (batch, models) strengths, mean 0, with the prior of `_with_prior` and an L2 of
    `l2`. Newton's method on the batch (one m×m solve per table per step), so 2,000 bootstrap refits cost about as
    much as a few dozen single ones."""
    r_n, m, _ = wins.shape
    upper = np.triu(np.ones((m, m), bool), 1)
    wins = wins + upper * (PRIOR_TIES / 2)  # one virtual tie per pair, as _with_prior adds it
    counts = counts + upper * PRIOR_TIES
    total = counts + counts.transpose(0, 2, 1)  # comparisons between i and j, either order
    won = wins + (counts - wins).transpose(0, 2, 1)  # what i won against j, either order
    ln10 = np.log(10.0)
    r = np.zeros((r_n, m))
    eye = np.eye(m)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-ln10 * (r[:, :, None] - r[:, None, :])))
        grad = ln10 * (total * p - won).sum(2) + 2 * l2 * r
        curv = ln10**2 * total * p * (1 - p)
        hess = eye * (curv.sum(2)[:, :, None] + 2 * l2) - curv
        step = np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
        step *= np.minimum(1.0, 2.0 / np.maximum(np.abs(step).max(1, keepdims=True), 1e-300))  # at most 2 a step
        r -= step
        if np.abs(step).max() < 1e-10:
            break
    return r - r.mean(1, keepdims=True)


def _tables(comparisons: list[Comparison], models: list[str], unit_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(units, m·m) wins and counts of ordered pairs (a, b) per unit (a vote: its comparisons together)."""
    m = len(models)
    codes, scores = _encode(comparisons, models)
    units = int(unit_of.max()) + 1
    wins, counts = np.zeros((units, m * m)), np.zeros((units, m * m))
    np.add.at(wins, (unit_of, codes), scores)
    np.add.at(counts, (unit_of, codes), 1.0)
    return wins, counts


def fit_bradley_terry(comparisons: list[Comparison], models: list[str], l2: float = 1e-4) -> np.ndarray:
    """Strengths r (base-10 logistic, mean 0): P(i beats j) = 1 / (1 + 10^(r_j − r_i)), fitted by maximum likelihood
    with the weak prior of `_with_prior` (one virtual tie per pair of models).

    Outcomes are aggregated per ordered pair first, so the fit costs the same for 10 or 10⁶ votes.
    """
    m = len(models)
    if not comparisons:
        return np.zeros(m)
    wins, counts = _tables(comparisons, models, np.zeros(len(comparisons), int))
    return _fit_batch(wins.reshape(1, m, m), counts.reshape(1, m, m), l2)[0]


def elo(r: np.ndarray) -> np.ndarray:
    return ELO_SCALE * r + ELO_BASE


def _rater(c: Comparison, i: int) -> Any:
    """Who gave comparison i: its rater; without one, its vote stands for a rater of its own (or the comparison)."""
    if c.rater is not None:
        return c.rater
    return ("vote", c.vote) if c.vote is not None else ("comparison", i)


def bootstrap(
    comparisons: list[Comparison], models: list[str], resamples: int = RESAMPLES, seed: int = 0
) -> np.ndarray:
    """Ratings refitted on `resamples` two-stage resamples: raters with replacement, then each drawn rater's votes
    (arena/resample.py): (resamples, models). The comparisons of one vote (a best-of-four answer gives three) are
    drawn together; a comparison without a rater is a rater of its own, one without a vote a vote of its own."""
    votes: dict[Any, int] = {}
    vote_of = np.array(
        [
            votes.setdefault(c.vote if c.vote is not None else ("comparison", i), len(votes))
            for i, c in enumerate(comparisons)
        ]
    )
    rater_by_vote: dict[int, Any] = {}
    for i, c in enumerate(comparisons):
        rater_by_vote.setdefault(vote_of[i], _rater(c, i))
    weights = rater_weights([rater_by_vote[v] for v in range(len(votes))], resamples, seed)
    wins, counts = _tables(comparisons, models, vote_of)
    m, out = len(models), np.empty((resamples, len(models)))
    for lo in range(0, resamples, 250):  # in blocks: a block's tables are 250·m² numbers
        w = weights[lo : lo + 250]
        out[lo : lo + 250] = elo(_fit_batch((w @ wins).reshape(-1, m, m), (w @ counts).reshape(-1, m, m)))
    return out


# The rule for what a rating may say, written once: a model's rating and interval are shown only with at least
# MIN_RATERS raters and MIN_COMPARISONS comparisons behind it; a rank only where its interval separates from another
# shown model's. Otherwise the row says what is missing.
MIN_RATERS, MIN_COMPARISONS = 2, 20


def shared_ranks(lower: np.ndarray, upper: np.ndarray) -> list[int]:
    """Chatbot Arena's rule: 1 + the number of models whose lower bound is above this model's upper bound."""
    return [1 + int(np.sum(lower > upper[i])) for i in range(len(lower))]


def missing(comparisons: int, raters: int, unit: str = "comparison") -> str | None:
    """What a row still needs before its interval is shown (None: nothing); `unit` names what is counted."""
    need = [
        f"{n} more {what}{'' if n == 1 else 's'}"
        for n, what in ((MIN_COMPARISONS - comparisons, unit), (MIN_RATERS - raters, "rater"))
        if n > 0
    ]
    return "needs " + " and ".join(need) if need else None


def rank_table(
    comparisons: list[Comparison], models: list[str], resamples: int = RESAMPLES, seed: int = 0
) -> list[dict[str, Any]]:
    """One row per model: rating, 95 % interval and rank where the rule above allows them, else what is missing."""
    counts = {m: sum(c.a == m or c.b == m for c in comparisons) for m in models}
    who = [_rater(c, i) for i, c in enumerate(comparisons)]
    raters = {m: len({w for w, c in zip(who, comparisons) if m in (c.a, c.b)}) for m in models}
    rows = {
        m: {
            "model": m,
            "rating": None,
            "lower": None,
            "upper": None,
            "rank": None,
            "comparisons": counts[m],
            "raters": raters[m],
            "needs": missing(counts[m], raters[m]),
        }
        for m in models
    }
    shown = [m for m in models if rows[m]["needs"] is None]
    if shown:
        point = elo(fit_bradley_terry(comparisons, models))
        lower, upper = percentile_interval(bootstrap(comparisons, models, resamples, seed))
        for i, m in enumerate(models):
            if m in shown:
                rows[m].update(
                    rating=round(float(point[i]), 1), lower=round(float(lower[i]), 1), upper=round(float(upper[i]), 1)
                )
        idx = [models.index(m) for m in shown]
        lo, hi = lower[idx], upper[idx]
        for k, m in enumerate(shown):
            separate = np.any((lo > hi[k]) | (hi < lo[k]))
            rows[m]["rank"] = shared_ranks(lo, hi)[k] if separate else None
            if not separate and len(shown) > 1:
                rows[m]["needs"] = "interval overlaps every other: no rank yet"
    return sorted(rows.values(), key=lambda r: (r["rating"] is None, -(r["rating"] or 0), r["model"]))


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


MIN_MODELS_FOR_CORRELATION = 5  # below five models a rank correlation's interval spans almost all of [-1, 1]


def rank_correlation(human: dict[str, float], metric: dict[str, float], higher_is_better: bool) -> dict[str, Any]:
    """Spearman's ρ between people's ratings and a metric over the models with both, with a 95 % interval (Fisher's
    z with Fieller's standard error 1.06/√(n−3), |ρ| held under 1 − 1/2n); only from MIN_MODELS_FOR_CORRELATION
    models, else what is missing."""
    common = sorted(set(human) & set(metric))
    if len(common) < MIN_MODELS_FOR_CORRELATION:
        need = MIN_MODELS_FOR_CORRELATION - len(common)
        return {
            "spearman": None,
            "interval": None,
            "models": len(common),
            "needs": f"needs {need} more rated model{'' if need == 1 else 's'}",
        }
    sign = 1 if higher_is_better else -1
    from scipy.stats import norm, spearmanr

    rho = spearmanr([human[m] for m in common], [sign * metric[m] for m in common]).statistic
    if np.isnan(rho):
        return {"spearman": None, "interval": None, "models": len(common), "needs": "no spread in one of the two"}
    n = len(common)
    edge = 1 - 1 / (2 * n)  # a continuity correction: at |ρ| = 1 Fisher's z is infinite and the interval a point
    z, half = np.arctanh(np.clip(rho, -edge, edge)), norm.ppf(0.975) * 1.06 / np.sqrt(n - 3)
    return {
        "spearman": round(float(rho), 3),
        "interval": [round(float(np.tanh(z - half)), 3), round(float(np.tanh(z + half)), 3)],
        "models": len(common),
        "needs": None,
    }
