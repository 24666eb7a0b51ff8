"""Intervals and verdicts over training replicates: is a difference between two generators real at this budget?

Across runs: the mean over seeds with a 95 % Student-t interval (few runs, so t rather than a bootstrap over
runs, whose percentiles are too narrow with 3-5 values). Comparisons are paired by seed (the same seed gives
both variants the same data order and noise) on each metric's score (its direction declared once, in METRICS),
tested with paired t-tests whose p-values are Holm-adjusted over the family of tests a page shows; a verdict is
one of "A better", "B better", "equivalent within ±δ" (two one-sided tests against the declared δ) or
"not settled". `estimate_text` writes an estimate and its interval the one way every page, table and README shows it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

LEVEL = 0.95
ALPHA = 1 - LEVEL
POWER = 0.80  # the power every "seeds a power calculation asks for" figure is computed at


@dataclass(frozen=True)
class Metric:
    """A replicate metric, declared once: where a run's metrics.json holds it (`source`), how it is scored, its words
    and the range it can take; replicates.json, the tables, the pages' charts and the verdicts read it from here.
    `better`: "lower", "higher", or "real" — a ratio to real digits (1 = like MNIST) scored by its distance from
    real, |ln(ratio)|, lower is better; shown as the ratio itself. `delta`: the smallest effect of interest per
    family, in score units (see DELTA_SOURCE); None: no equivalence test."""

    key: str  # a key of a replicate's summary row
    label: str
    better: str
    delta: dict[str, float] | None = None
    lowest: float | None = None  # the range the measure can take (None: unbounded): charts and intervals keep to it
    highest: float | None = None
    source: str | None = None  # its dotted path in a run's metrics.json (None: from the per-epoch training curves)

    def score(self, value: float) -> float:
        return abs(math.log(value)) if self.better == "real" else float(value)

    @property
    def direction(self) -> str:
        """The label's suffix the pages, tables and figures show."""
        return {
            "lower": "lower is better",
            "higher": "higher is better",
            "real": "closer to real (1×) is better; scored as |ln ratio|",
        }[self.better]

    @property
    def score_label(self) -> str:
        return f"|ln {self.label}|" if self.better == "real" else self.label


def with_note(label: str, note: str) -> str:
    """A measure's label and how to read it in one parenthesis ("Fréchet distance (classifier features; lower is
    better)"), never two side by side."""
    return f"{label[:-1]}; {note})" if label.endswith(")") else f"{label} ({note})"


# Smallest effects of interest (δ), declared once: the median change of the metric between consecutive epochs late in
# training (the last 10 epochs of the 50-epoch GANs, the last 5 of the 10-epoch VAEs), from the per-epoch training
# curves (2,000 samples each) of every shipped run that has them (GAN: 170 epoch pairs, VAE: 195, recomputed on
# 2026-11-29 after the factorial's fourth cell added three 50-epoch GAN runs; the GAN's Fréchet margin fell from 7.4
# to 5.2 by the same rule; the conditional families borrow their kind's). A difference smaller than what one more
# epoch of training changes is not one a reader should act on.
# tests/test_verdicts.py recomputes them from the shipped store (`epoch_jitter`).
DELTA_SOURCE = "median |change| between consecutive late-training epochs of the per-epoch curves (2,000 samples)"
METRICS = (
    Metric(
        "frechet",
        "Fréchet distance (classifier features)",
        "lower",
        {"gan": 5.2, "vae": 4.7},
        0.0,
        source="frechet.distance",
    ),
    Metric("kid", "KID (classifier features)", "lower", source="kid.mean"),
    Metric(
        "legibility",
        "legibility (mean top-class probability)",
        "higher",
        None,
        0.0,
        1.0,
        source="legibility.mean_top_probability",
    ),
    Metric(
        "checkerboard_ratio",
        "checkerboard index (× real digits)",
        "real",
        {"gan": 0.092, "vae": 0.033},
        0.0,
        source="checkerboard.nyquist_ratio",
    ),
    Metric("period4_ratio", "period-4 index (× real digits)", "real", None, 0.0, source="checkerboard.period4_ratio"),
    Metric(
        "artefact_excess",
        "checkerboard excess (Nyquist prominence over real, ln)",
        "lower",
        source="artefact.nyquist_excess",
    ),
    Metric(
        "artefact_excess_p4", "period-4 excess (prominence over real, ln)", "lower", source="artefact.period4_excess"
    ),
    Metric(
        "periodic_amplitude",
        "period-2 amplitude (grey levels of the 8-bit samples)",
        "lower",
        None,
        0.0,
        source="periodic.amplitude_grey_levels",
    ),
    Metric(
        "periodic_relative",
        "period-2 amplitude over the image's own contrast",
        "lower",
        None,
        0.0,
        source="periodic.relative",
    ),
    Metric(
        "periodic_phase_locked",
        "grid-locked period-2 amplitude (grey levels, shared by the samples)",
        "lower",
        None,
        0.0,
        source="periodic.phase_locked_grey_levels",
    ),
    Metric(
        "frechet_independent",
        "Fréchet distance (an independently trained classifier's features)",
        "lower",
        None,
        0.0,
        source="frechet_independent.distance",
    ),
    Metric("precision", "precision (k=5)", "higher", None, 0.0, 1.0, source="prdc.precision"),
    Metric("recall", "recall (k=5)", "higher", None, 0.0, 1.0, source="prdc.recall"),
    Metric("coverage", "coverage (k=5)", "higher", None, 0.0, 1.0, source="prdc.coverage"),
    Metric(
        "conditional_accuracy",
        "conditional accuracy (read as the digit asked for)",
        "higher",
        None,
        0.0,
        1.0,
        source="conditional.accuracy",
    ),
    Metric(
        "frechet_last5",
        "Fréchet distance, mean of the last 5 epochs (2,000 samples each)",
        "lower",
        {"gan": 5.2, "vae": 4.7},
        0.0,
    ),
    Metric(
        "frechet_last10",
        "Fréchet distance, mean of the last 10 epochs (2,000 samples each)",
        "lower",
        {"gan": 5.2, "vae": 4.7},
        0.0,
    ),
    Metric(
        "checkerboard_last5",
        "checkerboard index, mean of the last 5 epochs (× real, 2,000 samples each)",
        "real",
        {"gan": 0.092, "vae": 0.033},
        0.0,
    ),
)
METRIC = {m.key: m for m in METRICS}  # the declarations by key: what every reader iterates


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float | None  # None with fewer than two values: no spread can be estimated
    high: float | None
    n: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


MINUS = "\u2212"  # the minus sign a reader sees; data files keep ASCII numbers


def estimate_text(mean: float, low: float | None = None, high: float | None = None, signed: bool = True) -> str:
    """An estimate and its 95 % interval as every page, table and the README write it: the three numbers to one
    number of decimals, set by the estimate's nearer distance to an end of its interval (the interval of a bounded
    measure is not symmetric) to two significant digits, so the ends of a narrow interval never print equal and a
    wide one claims no digits it lacks; an end that would print as 0 but is not, to two significant digits; a minus
    sign rather than a hyphen, and a + on a difference (`signed`). Without an interval, the estimate alone to three
    significant digits; an interval of no width (every seed the same) is said in words."""
    sign = "+" if signed else ""
    spec = sign + ".3g"
    if low is not None and high is not None:
        near = min(mean - low, high - mean) if low < mean < high else (high - low) / 2
        decimals = max(0, 1 - math.floor(math.log10(near))) if near > 0 else 3
        spec = sign + (f".{decimals}f" if decimals <= 6 else ".3g")

    def one(x: float, end: bool = True) -> str:
        text = f"{x:{spec}}"
        if float(text) == 0 and x != 0 and end:  # a tiny end is not a zero: say how small it is
            text = f"{x:{sign}.2g}"
        if float(text) == 0:  # no "−0.0" or "+0.0": a zero has no sign
            text = text.lstrip("+-")
        return text.replace("-", MINUS)

    if low is None or high is None:
        return one(mean)
    if low == high:  # every seed gave the same value (a clamped measure at 0): an interval would claim a width
        return f"{estimate_text(mean, signed=signed)} (every seed the same: no interval)"
    return f"{one(mean, end=False)} [{one(low)}, {one(high)}]"


def p_text(p: float) -> str:
    """A p-value as the tables write it: three decimals, or "< 0.001"."""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def t_interval(values: list[float] | np.ndarray, level: float = LEVEL) -> Interval:
    """Mean with a Student-t interval; NaNs are not allowed (a failed run must be reported, not averaged away)."""
    from scipy import stats as sps  # imported when used: the service imports this module for METRIC

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


def bounded_interval(values, lowest: float | None, highest: float | None, level: float = LEVEL) -> Interval:
    """The mean with an interval that stays inside the range the measure can take: a Student-t interval on the log
    scale for a measure bounded below by 0 (on the logit scale for one in [0, 1]), mapped back; the plain t-interval
    where the measure is unbounded or a value sits on its bound (the transform is undefined there: then the interval
    is cut at the bound, never past it)."""
    x = np.asarray(values, dtype=np.float64)
    plain = t_interval(x, level)
    if plain.low is None or (lowest is None and highest is None):
        return plain
    if lowest == 0 and highest == 1 and np.all((x > 0) & (x < 1)):
        lo_t = t_interval(np.log(x / (1 - x)), level)
        expit = lambda v: float(1 / (1 + np.exp(-v)))  # noqa: E731
        return Interval(plain.mean, expit(lo_t.low), expit(lo_t.high), plain.n)
    if lowest == 0 and highest is None and np.all(x > 0):
        lo_t = t_interval(np.log(x), level)
        return Interval(plain.mean, float(np.exp(lo_t.low)), float(np.exp(lo_t.high)), plain.n)
    low = plain.low if lowest is None else max(plain.low, lowest)
    high = plain.high if highest is None else min(plain.high, highest)
    return Interval(plain.mean, low, high, plain.n)


def paired_difference(a: dict[int, float], b: dict[int, float], level: float = LEVEL) -> tuple[Interval, list[int]]:
    """Interval of mean(a − b) over the seeds both have; the seeds used come back too."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("no seed in common")
    return t_interval([a[s] - b[s] for s in seeds], level), seeds


def p_value(diffs: list[float] | np.ndarray) -> float | None:
    """Two-sided paired t-test of mean zero; None with fewer than two values or no spread to test against."""
    from scipy import stats as sps  # imported when used: the service imports this module for METRIC

    x = np.asarray(diffs, dtype=np.float64)
    if x.size < 2:
        return None
    sd = x.std(ddof=1)
    if sd == 0:
        return 0.0 if x.mean() != 0 else 1.0
    return float(2 * sps.t.sf(abs(x.mean()) / (sd / math.sqrt(x.size)), x.size - 1))


def tost_p_value(diffs: list[float] | np.ndarray, delta: float) -> float | None:
    """Two one-sided t-tests that the mean lies within ±delta: the larger of the two p-values (None below two
    values)."""
    x = np.asarray(diffs, dtype=np.float64)
    if x.size < 2:
        return None
    return tost_from(float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size)), x.size - 1, delta)


def tost_from(mean: float, se: float, df: float, delta: float) -> float:
    """Two one-sided t-tests of an estimate with its standard error and degrees of freedom against ±delta: the
    larger of the two p-values (both must be small for equivalence)."""
    from scipy import stats as sps  # imported when used: the service imports this module for METRIC

    if se == 0:
        return 0.0 if abs(mean) < delta else 1.0
    lower = sps.t.sf((mean + delta) / se, df)  # H0: mean <= -delta
    upper = sps.t.cdf((mean - delta) / se, df)  # H0: mean >= +delta
    return float(max(lower, upper))


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (well-behaved at 0 and 1, unlike the Wald interval)."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values over the family (None entries are untestable and left out of it)."""
    indexed = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m, out, running = len(indexed), list(pvalues), 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def seeds_for_difference(sd_per_seed: float, delta: float, alpha: float, power: float = POWER, cap: int = 10_000):
    """The fewest seeds for `power` to find an effect of δ with a two-sided paired t test at level α (the noncentral
    t, as statsmodels' TTestPower); None without a spread."""
    from scipy import stats as sps  # imported when used: the service imports this module for METRIC

    if not sd_per_seed > 0:
        return None
    for n in range(2, cap):
        df, nc = n - 1, delta / (sd_per_seed / math.sqrt(n))
        t = sps.t.ppf(1 - alpha / 2, df)
        far_side = sps.nct.cdf(-t, df, nc)  # scipy gives NaN where this tail is far below float precision
        if sps.nct.sf(t, df, nc) + (far_side if np.isfinite(far_side) else 0.0) >= power:
            return n
    return cap


def seeds_for_equivalence(sd_per_seed: float, delta: float, alpha: float, power: float = POWER, cap: int = 10_000):
    """The fewest seeds for `power` to show equivalence within ±δ by two one-sided tests when the true effect is 0."""
    from scipy import stats as sps

    if not sd_per_seed > 0:
        return None
    for n in range(2, cap):
        se = sd_per_seed / math.sqrt(n)
        margin = delta / se - sps.t.ppf(1 - alpha, n - 1)
        if margin > 0 and 2 * sps.t.cdf(margin, n - 1) - 1 >= power:
            return n
    return cap


def seeds_asked(diffs, delta: float | None, alpha: float, done: str | None = None) -> dict[str, int | None]:
    """What a power calculation at the measured spread asks for, for a test not yet settled: seeds for a difference of
    δ and for equivalence within ±δ at 80 % power, at the family's first Holm level `alpha`; each only when more than
    the seeds at hand (fewer would say the test is merely unlucky, not short of seeds), and never the one reached."""
    x = np.asarray(diffs, dtype=np.float64)
    if delta is None or x.size < 2:
        return {"seeds_for_difference_80": None, "seeds_for_equivalence_80": None}
    sd = float(x.std(ddof=1))
    need_d, need_e = seeds_for_difference(sd, delta, alpha), seeds_for_equivalence(sd, delta, alpha)
    return {
        "seeds_for_difference_80": need_d if need_d and need_d > x.size and done != "difference" else None,
        "seeds_for_equivalence_80": need_e if need_e and need_e > x.size and done != "equivalent" else None,
    }


def explore(diffs: list[float], metric: Metric, family: str) -> dict[str, Any]:
    """An exploratory result: no plan fixed its question, margin, family or n before its runs, so it is an estimate
    and its interval only, never a verdict (arena/study.py gives verdicts, from a plan's own runs). Beside it, what
    a plan of one test at this spread would need (80 % power for a difference of δ, and for equivalence within ±δ)."""
    delta = (metric.delta or {}).get(family)
    return {"kind": "exploratory", "verdict": None, **seeds_asked(np.asarray(diffs, np.float64), delta, ALPHA)}


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float], n: int, resamples: int = 200, seed: int = 0, level: float = LEVEL
) -> tuple[float, float]:
    """Percentile interval of `statistic(indices)` over resamples of n items with replacement (within one run)."""
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(resamples)])
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
