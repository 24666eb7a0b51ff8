"""Intervals and verdicts over training replicates: is a difference between two generators real at this budget?

Across runs: the mean over seeds with a 95 % Student-t interval (few runs, so t rather than a bootstrap over
runs, whose percentiles are too narrow with 3-5 values). Comparisons are paired by seed (the same seed gives
both variants the same data order and noise), and the verdict comes from the paired difference's interval:
it names a winner only when the interval excludes zero.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
from scipy import stats as sps

LEVEL = 0.95
NOT_DISTINGUISHABLE = "not distinguishable at this budget"


@dataclass(frozen=True)
class Metric:
    key: str  # a key of a replicate's summary row
    label: str
    better: str  # "lower" | "higher"


# Checkerboard and period-4 ratios compare with real digits (1.0); above 1 is more periodic energy than MNIST has.
METRICS = (
    Metric("frechet", "Fréchet distance (classifier features)", "lower"),
    Metric("kid", "KID (classifier features)", "lower"),
    Metric("legibility", "legibility (mean top-class probability)", "higher"),
    Metric("checkerboard_ratio", "checkerboard index (× real digits)", "lower"),
    Metric("period4_ratio", "period-4 index (× real digits)", "lower"),
    Metric("precision", "precision (k=5)", "higher"),
    Metric("recall", "recall (k=5)", "higher"),
    Metric("coverage", "coverage (k=5)", "higher"),
)
METRIC = {m.key: m for m in METRICS}


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float | None  # None with fewer than two values: no spread can be estimated
    high: float | None
    n: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def t_interval(values: list[float] | np.ndarray, level: float = LEVEL) -> Interval:
    """Mean with a Student-t interval; NaNs are not allowed (a failed run must be reported, not averaged away)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no values")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"non-finite values {x.tolist()}: report the run as failed instead of averaging it")
    mean = float(x.mean())
    if x.size < 2:
        return Interval(mean, None, None, 1)
    half = float(sps.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return Interval(mean, mean - half, mean + half, int(x.size))


def paired_difference(a: dict[int, float], b: dict[int, float], level: float = LEVEL) -> tuple[Interval, list[int]]:
    """Interval of mean(a − b) over the seeds both have; the seeds used come back too."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("no seed in common")
    return t_interval([a[s] - b[s] for s in seeds], level), seeds


def verdict(diff: Interval, better: str, a: str = "A", b: str = "B") -> str:
    """From the interval of a − b: which is better, or that this budget cannot tell."""
    if diff.low is None or diff.high is None or (diff.low <= 0 <= diff.high):
        return NOT_DISTINGUISHABLE
    a_higher = diff.low > 0
    return f"{a} better" if a_higher == (better == "higher") else f"{b} better"


def bootstrap_interval(statistic: Callable[[np.ndarray], float], n: int, resamples: int = 200, seed: int = 0, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of `statistic(indices)` over resamples of n items with replacement (within one run)."""
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(resamples)])
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
