"""Resampling people: a two-stage bootstrap over raters, then over each drawn rater's own items.

Votes of one rater are not independent (a rater has tastes, a screen, a level of care), so an interval from
resampled votes is too narrow when raters differ. Each resample draws raters with replacement and then, for every
drawn rater, that rater's units (votes, answers) with replacement; a unit's weight is how often it was drawn. Any
statistic that takes weighted units (a Bradley–Terry fit, a share, a mean) gets a rater-respecting interval from
these weights (the pairwise ratings). Where units are crossed — a rater answers many images, an image is answered by
many raters — `cluster_weights` of the raters times those of the images is the pigeonhole bootstrap (the crowd's
"real or generated?" shares).
"""

from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

RESAMPLES = 2000  # the default number of resamples: percentile intervals at 95 % need about this many


def rater_weights(raters: Sequence[Hashable], resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """(resamples, units) draw counts of a two-stage bootstrap: raters with replacement, then each drawn rater's
    units with replacement (a rater drawn twice contributes two independent redraws of its units).

    `raters[u]` names the rater of unit u. With one unit per rater this is the ordinary bootstrap of units."""
    rng = np.random.default_rng(seed)
    _, rater_of = np.unique(np.asarray([str(r) for r in raters], dtype=object), return_inverse=True)
    n_units = len(rater_of)
    out = np.zeros((resamples, n_units))
    if n_units == 0:
        return out
    order = np.argsort(rater_of, kind="stable")  # units grouped by rater: rater k owns order[start[k]:start[k]+size[k]]
    sizes = np.bincount(rater_of)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    n_raters = len(sizes)
    for i in range(resamples):
        drawn = np.bincount(rng.integers(0, n_raters, n_raters), minlength=n_raters)
        who = np.repeat(np.arange(n_raters), sizes * drawn)  # one entry per unit draw, naming its rater
        picks = order[starts[who] + rng.integers(0, sizes[who])]
        out[i] = np.bincount(picks, minlength=n_units)
    return out


def cluster_weights(clusters: Sequence[Hashable], resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """(resamples, units) weights of a one-stage bootstrap of clusters: each cluster (a rater, an image) drawn with
    replacement keeps all its units, so a unit's weight is how often its cluster was drawn. Crossed designs multiply
    two of these (raters × images: Owen's pigeonhole bootstrap, conservative for the crossed variance)."""
    rng = np.random.default_rng(seed)
    _, cluster_of = np.unique(np.asarray([str(c) for c in clusters], dtype=object), return_inverse=True)
    n = int(cluster_of.max()) + 1 if len(cluster_of) else 0
    if n == 0:
        return np.zeros((resamples, 0))
    picks = rng.integers(0, n, (resamples, n)) + n * np.arange(resamples)[:, None]
    counts = np.bincount(picks.ravel(), minlength=resamples * n).reshape(resamples, n)
    return counts[:, cluster_of].astype(float)


def percentile_interval(draws: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The percentile interval of bootstrap draws along their first axis."""
    tail = 100 * (1 - level) / 2
    return np.percentile(draws, tail, axis=0), np.percentile(draws, 100 - tail, axis=0)
