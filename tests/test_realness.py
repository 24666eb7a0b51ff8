"""HYPE∞ shares and their pigeonhole (raters × images) bootstrap intervals: exact small cases, the display rule shared
with the pairwise ratings, and a coverage simulation with known true shares."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
from scipy.special import expit, logit

from app.ratings.ranking import MIN_COMPARISONS, MIN_RATERS, missing
from app.ratings.realness import METHOD, REAL, realness_table
from arena.resample import RESAMPLES, percentile_interval

KEYS = {"source", "answers", "raters", "images", "share_real", "low", "high", "hype", "error_rate", "missing"}


def answers_of(source: str, raters: list[str], said_real: list[bool]) -> list[dict]:
    """One answer per entry, rater by rater in turn, each about its own image."""
    return [
        {"rater": raters[i % len(raters)], "source": source, "image": i, "said_real": said}
        for i, said in enumerate(said_real)
    ]


def small_case() -> list[dict]:
    return (
        answers_of("shown", ["r1", "r2"], [True] * 5 + [False] * 15)  # 20 answers, 2 raters: shown, share 1/4
        + answers_of("few_answers", ["r1", "r2", "r3"], [True] * 8)  # 12 more answers needed
        + answers_of("one_rater", ["r1"], [False] * 30)  # 1 more rater needed
        + answers_of(REAL, ["r1", "r2", "r3", "r4"], [True] * 18 + [False] * 2)
        + answers_of("not_in_the_table", ["r1", "r2"], [True] * 40)
    )


MODELS = ["shown", "few_answers", "one_rater", "unanswered"]


def test_rows_count_answers_raters_and_images_and_give_shares_only_where_the_rule_allows():
    rows = realness_table(small_case(), MODELS, resamples=200)
    assert [r["source"] for r in rows] == [*MODELS, REAL] and all(set(r) == KEYS for r in rows)
    by = {r["source"]: r for r in rows}
    assert [(by[s]["answers"], by[s]["raters"], by[s]["images"]) for s in [*MODELS, REAL]] == [
        (20, 2, 20),
        (8, 3, 8),
        (30, 1, 30),
        (0, 0, 0),
        (20, 4, 20),
    ]
    assert by["shown"]["share_real"] == 0.25 and by["shown"]["hype"] == 25.0 and by["shown"]["error_rate"] is None
    assert by["shown"]["missing"] is None
    assert by["few_answers"]["missing"] == "needs 12 more answers" == missing(8, 3, unit="answer")
    assert by["one_rater"]["missing"] == "needs 1 more rater"
    assert by["unanswered"]["missing"] == f"needs {MIN_COMPARISONS} more answers and {MIN_RATERS} more raters"
    for source in ("few_answers", "one_rater", "unanswered"):
        assert [by[source][k] for k in ("share_real", "low", "high", "hype", "error_rate")] == [None] * 5


def test_the_real_row_gives_real_digits_taken_for_real_and_the_error_rate():
    real = realness_table(small_case(), MODELS, resamples=200)[-1]
    assert real["source"] == REAL and real["share_real"] == 0.9 and real["hype"] is None
    assert abs(real["error_rate"] - 0.1) < 1e-12


def test_the_interval_holds_the_estimate_and_is_the_same_for_the_same_seed():
    rng = np.random.default_rng(0)
    answers = [
        {"rater": int(r), "source": s, "image": int(i), "said_real": bool(y)}
        for s in ("a", "b", REAL)
        for r, i, y in zip(rng.integers(0, 12, 300), rng.integers(0, 30, 300), rng.random(300) < 0.4)
    ]
    rows = realness_table(answers, ["a", "b"], resamples=300, seed=3)
    for row in rows:
        assert 0 <= row["low"] < row["share_real"] < row["high"] <= 1
    assert realness_table(answers, ["a", "b"], resamples=300, seed=3) == rows
    assert realness_table(answers, ["a", "b"], resamples=300, seed=4) != rows
    narrow = realness_table(answers, ["a", "b"], resamples=300, seed=3, level=0.5)
    assert all(w["low"] > r["low"] and w["high"] < r["high"] for w, r in zip(narrow, rows))


def test_answers_may_be_objects_and_unanimous_answers_give_a_point_interval():
    answers = [SimpleNamespace(**a) for a in answers_of("a", ["r1", "r2", "r3"], [True] * 24)]
    row = realness_table(answers, ["a"], resamples=100)[0]
    assert (row["share_real"], row["low"], row["high"], row["hype"]) == (1.0, 1.0, 1.0, 100.0)


def test_the_method_names_the_interval_and_what_it_resamples():
    assert "95 %" in METHOD and "raters and images" in METHOD and f"{RESAMPLES:,}" in METHOD


# --- Coverage: simulated raters with a bias of their own, images with an effect of their own ---------------------
# P(said real | model m, rater r, image i) = expit(logit p_m + b_r + e_i), b_r ~ N(0, rater_sd²), e_i ~ N(0, 0.3²);
# each repetition draws new raters and new images, so the estimand is the population share
# E[expit(logit p_m + b + e)], b + e ~ N(0, rater_sd² + 0.3²).
TRUE_P = {"model_10": 0.1, "model_25": 0.25, "model_40": 0.4, "model_60": 0.6, REAL: 0.8}
GENERATED = [s for s in TRUE_P if s != REAL]
RATERS, IMAGES, PER_RATER, IMAGE_SD = 30, 20, 40, 0.3
REPETITIONS = 200
SIM_RESAMPLES = 500  # fewer than RESAMPLES, to keep 2 × 200 analyses inside a minute; enough for 95 % percentiles


def population_share(p: float, sd: float) -> float:
    """E[expit(logit p + z)], z ~ N(0, sd²), by Gauss–Hermite quadrature (probabilists' weights)."""
    x, w = np.polynomial.hermite_e.hermegauss(60)
    return float(w @ expit(logit(p) + sd * x) / np.sqrt(2 * np.pi))


def simulate(rng: np.random.Generator, rater_sd: float) -> list[dict]:
    """Answers of RATERS raters, each to PER_RATER distinct images drawn from all sources' pools of IMAGES."""
    sources = list(TRUE_P)
    base = logit(np.array([TRUE_P[s] for s in sources]))
    bias = rng.normal(0, rater_sd, RATERS)
    effect = rng.normal(0, IMAGE_SD, (len(sources), IMAGES))
    seen = np.argsort(rng.random((RATERS, len(sources) * IMAGES)), axis=1)[:, :PER_RATER]  # distinct, per rater
    source, image = np.divmod(seen, IMAGES)
    said = rng.random(seen.shape) < expit(base[source] + bias[:, None] + effect[source, image])
    return [
        {"rater": r, "source": sources[source[r, k]], "image": int(image[r, k]), "said_real": bool(said[r, k])}
        for r in range(RATERS)
        for k in range(PER_RATER)
    ]


def naive_interval(answers: list[dict], source: str, rng: np.random.Generator) -> tuple[float, float]:
    """The interval this module must not give: answers resampled as if independent (raters and images ignored)."""
    said = np.array([a["said_real"] for a in answers if a["source"] == source], float)
    low, high = percentile_interval(said[rng.integers(0, len(said), (SIM_RESAMPLES, len(said)))].mean(1))
    return float(low), float(high)


def coverages(rater_sd: float, seed: int) -> tuple[dict[str, float], dict[str, float]]:
    """Per source, the share of repetitions whose pigeonhole interval, and whose naive one, holds the true share."""
    sd = float(np.hypot(rater_sd, IMAGE_SD))
    truth = {s: population_share(p, sd) for s, p in TRUE_P.items()}
    rng = np.random.default_rng(seed)
    pigeonhole, naive = {s: 0 for s in TRUE_P}, {s: 0 for s in TRUE_P}
    for rep in range(REPETITIONS):
        answers = simulate(rng, rater_sd)
        for row in realness_table(answers, GENERATED, resamples=SIM_RESAMPLES, seed=rep):
            s = row["source"]
            pigeonhole[s] += row["low"] <= truth[s] <= row["high"]
            low, high = naive_interval(answers, s, rng)
            naive[s] += low <= truth[s] <= high
    return {s: n / REPETITIONS for s, n in pigeonhole.items()}, {s: n / REPETITIONS for s, n in naive.items()}


def test_the_pigeonhole_interval_covers_the_population_share_for_every_model():
    start = time.perf_counter()
    pigeonhole, naive = coverages(rater_sd=0.5, seed=0)
    print(f"rater sd 0.5: pigeonhole {pigeonhole}, naive {naive} ({time.perf_counter() - start:.1f} s)")
    assert all(c >= 0.90 for c in pigeonhole.values()), pigeonhole


def test_intervals_from_answers_as_if_independent_miss_when_raters_differ():
    """The simulation has teeth: with a large rater bias, resampling answers covers clearly less than resampling
    raters and images."""
    start = time.perf_counter()
    pigeonhole, naive = coverages(rater_sd=1.0, seed=1)
    print(f"rater sd 1.0: pigeonhole {pigeonhole}, naive {naive} ({time.perf_counter() - start:.1f} s)")
    assert np.mean(list(naive.values())) < np.mean(list(pigeonhole.values())) - 0.05
    assert all(n < t for n, t in zip(naive.values(), pigeonhole.values())), (naive, pigeonhole)
    assert all(c >= 0.90 for c in pigeonhole.values()), pigeonhole


def test_cluster_weights_draw_whole_clusters_as_many_as_there_are():
    from arena.resample import cluster_weights

    units = ["a", "b", "a", "c"]
    w = cluster_weights(units, 500, seed=1)
    assert w.shape == (500, 4) and (w[:, 0] == w[:, 2]).all()  # one cluster's units share its weight
    assert (w[:, [0, 1, 3]].sum(1) == 3).all()  # each resample draws as many clusters as there are
    assert w[:, 3].max() > 0 and abs(w[:, [0, 1, 3]].mean() - 1) < 0.1  # every cluster drawn, once on average
    assert not np.array_equal(w, cluster_weights(units, 500, seed=2))


def test_repeated_images_count_once_and_the_image_stage_moves_the_interval():
    raters = [f"r{k}" for k in range(12)]
    answers = [  # every rater answers both images alike: image 0 always real, image 1 never
        {"rater": r, "source": "m", "image": i, "said_real": i == 0} for r in raters for i in (0, 1)
    ]
    (row, _) = realness_table(answers, ["m"], resamples=400, seed=3)
    assert (row["answers"], row["raters"], row["images"]) == (24, 12, 2)
    assert row["share_real"] == 0.5 and row["low"] <= 0.25 and row["high"] >= 0.75  # raters agree: images vary
    many = [{"rater": r, "source": "m", "image": i, "said_real": i < 7} for r in raters for i in range(20)]
    ends = {tuple(realness_table(many, ["m"], resamples=200, seed=s)[0][k] for k in ("low", "high")) for s in range(4)}
    assert len(ends) > 1, ends  # the raters agree, so only the image draws move the interval: they follow the seed


def test_the_service_analysis_counts_only_included_answers_of_answered_sources():
    from app.ratings.analysis import counted_votes, left_out, realness

    answers = [
        SimpleNamespace(rater_id=r, source=s, image=i, said_real=s == REAL)
        for r in ("r1", "r2")
        for s in ("m", REAL)
        for i in range(10)
    ] + [SimpleNamespace(rater_id="out", source="m", image=0, said_real=True)]
    registry = SimpleNamespace(available=lambda: ["m", "unused"])
    table = realness(answers, {"out"}, registry, 200)
    rows = {row["source"]: row for row in table["rows"]}
    assert list(rows) == ["m", REAL] and table["answers"] == 40
    assert rows[REAL]["share_real"] == 1.0 and rows["m"]["hype"] == 0.0
    flagged = SimpleNamespace(id="f", flagged=True, excluded=None)
    excluded = SimpleNamespace(id="x", flagged=False, excluded="preview")
    assert left_out([flagged, excluded], exclude_flagged=True) == {"f", "x"}
    assert left_out([flagged, excluded], exclude_flagged=False) == {"x"}
    votes = [SimpleNamespace(kind="gold", rater_id="a"), SimpleNamespace(kind="pair", rater_id="a")]
    assert [v.kind for v in counted_votes(votes, set())] == ["pair"] and counted_votes(votes, {"a"}) == []
