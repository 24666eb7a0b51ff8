"""The rating campaign: its plan, people's verdicts per question, the adaptive scheduler, and simulated raters that
show the whole path (task rule, gold screening, win shares, Bradley–Terry and its bootstrap) recovers known truth.

The many campaigns a coverage figure needs run in-process on the service's own functions (tests/simraters.py); one
campaign votes through the real HTTP API against the tiny models."""

from __future__ import annotations

import dataclasses
import math
import random
import statistics

import numpy as np
import pytest

from app.ratings.campaign import (
    DEFAULT_PLAN,
    CampaignPlanError,
    human_verdicts,
    load_campaign,
    power_at,
    votes_for_power,
    win_share,
)
from app.ratings.ranking import comparisons_from_vote, rank_table
from tests.simraters import Population, SimVote, elo_truth, run_campaign, sim_settings

PLAN = load_campaign()
GANS = ["gan_transpose", "gan_upsample", "gan_upsample_matched", "gan_transpose_k4"]
GAN_PAIRS = (("gan_upsample", "gan_transpose"), ("gan_upsample_matched", "gan_transpose"),
             ("gan_transpose_k4", "gan_transpose"))  # fmt: skip
QUIET = {"gold_rate": 0.0, "four_rate": 0.0, "repeat_rate": 0.0}


def small_plan(votes: int, looks=(1.0,), pairs=GAN_PAIRS):
    """The shipped plan's tests on fewer questions and votes (what simulations can afford many times over)."""
    return dataclasses.replace(PLAN, pairs=pairs, votes_per_question=votes, looks=looks)


def pair_vote(i: int, a: str, b: str, seed: int, answer: str, rater: str = "r") -> SimVote:
    return SimVote(i, rater, "pair", [a, b], seed, 9, answer, answer, answer)


# ---- the plan ---------------------------------------------------------------------------------------------------


def test_the_shipped_plan_has_the_fewest_votes_that_reach_its_power():
    m = len(PLAN.pairs)
    assert m == len({frozenset(p) for p in PLAN.pairs}) == 10
    level = PLAN.alpha / m  # Holm's strictest step
    assert power_at(PLAN.votes_per_question, PLAN.effect, level) >= PLAN.power
    assert power_at(PLAN.votes_per_question - 1, PLAN.effect, level) < PLAN.power
    assert votes_for_power(PLAN.effect, level, PLAN.power) == PLAN.votes_per_question
    assert PLAN.look_sizes() == [83, 165, 248, 330] and PLAN.interim_p < level


def test_the_power_formula_agrees_with_simulated_campaigns():
    """Binomial votes at the plan's effect, tested as the verdicts test them (t on the cluster-robust share)."""
    rng = np.random.default_rng(7)
    n, level = 120, 0.05
    hits = 0
    trials = 600
    for _ in range(trials):
        wins = rng.random(n) < PLAN.effect
        hits += win_share([(i, float(w)) for i, w in enumerate(wins)]).p() < level
    expected = power_at(n, PLAN.effect, level)
    assert abs(hits / trials - expected) < 4 * math.sqrt(expected * (1 - expected) / trials), (hits / trials, expected)


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("alpha = 0.05", "alpha = 0.7", "alpha"),
        ("margin = [0.45, 0.55]", "margin = [0.40, 0.55]", "margin"),
        ("looks = [0.25, 0.50, 0.75, 1.00]", "looks = [0.5, 0.25, 1.0]", "looks"),
        ('primary = "overall"', 'primary = "style"', "primary"),
        ("questions = 10", "questions = 9", "questions"),
        ("votes_per_question = 330", "votes_per_question = 330.5", "votes_per_question"),
        ('pairs = "comparisons"', 'pairs = "all"', "pairs"),
    ],
)
def test_a_wrong_plan_is_one_line_naming_the_key_and_what_is_accepted(tmp_path, old, new, key):
    text = DEFAULT_PLAN.read_text()
    assert old in text
    bad = tmp_path / "plan.toml"
    bad.write_text(text.replace(old, new))
    with pytest.raises(CampaignPlanError) as e:
        load_campaign(bad)
    message = str(e.value)
    assert "\n" not in message and f"[campaign] {key} = " in message and "accepted:" in message


def test_campaign_plan_command_reads_no_database_as_zero_votes_and_refuses_a_bad_plan(tmp_path, monkeypatch, capsys):
    from deconv_arena.cli import main

    db = tmp_path / "votes.db"
    monkeypatch.setenv("ARENA_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.delenv("ARENA_CAMPAIGN_PLAN", raising=False)
    assert main(["campaign", "plan", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"no votes database at {db} yet" in out and not db.exists()  # it never writes
    assert "gan_upsample vs gan_transpose (not served)" in out
    assert "10 served question(s) open" not in out and "0 served question(s) open; 0 more votes needed" in out
    (tmp_path / "bad.toml").write_text("[campaign]\nid = 3\n")
    monkeypatch.setenv("ARENA_CAMPAIGN_PLAN", str(tmp_path / "bad.toml"))
    assert main(["campaign", "plan"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("deconv-arena campaign: error: ARENA_CAMPAIGN_PLAN: bad.toml: [campaign] ") and "\n" not in err
    )


# ---- the statistic and the verdicts ------------------------------------------------------------------------------


def test_a_seed_rated_twice_is_one_cluster_not_two_votes():
    """Duplicating every vote (each seed rated twice, the same answers) leaves the share and its standard error as
    they were; counting them as independent votes would shrink the interval by √2."""
    rng = random.Random(3)
    once = [(seed, float(rng.random() < 0.6)) for seed in range(80)]
    twice = once + once
    a, b = win_share(once), win_share(twice)
    assert b.share == pytest.approx(a.share) and b.se == pytest.approx(a.se) and b.df == a.df == 79
    assert b.repeated == 80 and b.votes == 160 and a.repeated == 0
    naive = math.sqrt(statistics.variance([s for _, s in twice]) / len(twice))
    assert naive < 0.75 * b.se


def test_verdicts_use_holm_over_every_question_with_open_ones_as_p_one():
    plan = small_plan(40)
    votes = [pair_vote(i, "gan_upsample", "gan_transpose", i, "A" if i % 10 < 7 else "B") for i in range(40)]
    standing = human_verdicts(plan, votes, GANS)
    first, *rest = standing["questions"]
    assert first["status"] == "complete" and [q["status"] for q in rest] == ["open", "open"]
    assert first["share"] == pytest.approx(0.7) and first["p"] < 0.05
    assert first["p_holm"] == pytest.approx(min(1.0, 3 * first["p"]))  # three questions, two still open
    alone = human_verdicts(small_plan(40, pairs=GAN_PAIRS[:1]), votes, GANS)["questions"][0]
    assert alone["p_holm"] == pytest.approx(first["p"])
    assert {q["verdict"] for q in rest} == {"not settled"}
    assert standing["more_votes_needed"] == 80 and standing["open"] == 2


def test_a_questions_share_is_shown_only_from_20_votes_of_2_raters_and_stays_in_0_1():
    """The page's rule (app/ratings/ranking.py): 19 votes, or 20 from one rater, say what they still need; 20 from
    two raters give the share, its interval inside [0, 1] even when every vote went one way."""
    plan = small_plan(40, pairs=GAN_PAIRS[:1])
    few = [pair_vote(i, "gan_upsample", "gan_transpose", i, "A", rater=f"r{i % 2}") for i in range(19)]
    assert human_verdicts(plan, few, GANS)["questions"][0]["needs"] == "needs 1 more vote"
    one = [pair_vote(i, "gan_upsample", "gan_transpose", i, "A") for i in range(20)]
    assert human_verdicts(plan, one, GANS)["questions"][0]["needs"] == "needs 1 more rater"
    two = [pair_vote(i, "gan_upsample", "gan_transpose", i, "A", rater=f"r{i % 2}") for i in range(20)]
    q = human_verdicts(plan, two, GANS)["questions"][0]
    assert q["needs"] is None and 0 <= q["interval"][0] <= q["interval"][1] <= 1


def test_an_interim_look_closes_a_question_only_past_its_boundary():
    plan = small_plan(200, looks=(0.25, 0.5, 1.0), pairs=GAN_PAIRS[:1])
    clear = [pair_vote(i, "gan_upsample", "gan_transpose", i, "A" if i % 10 else "B") for i in range(60)]  # 90 %
    q = human_verdicts(plan, clear, GANS)["questions"][0]
    assert (q["status"], q["closed_at_look"], q["used_votes"], q["beyond_plan"]) == ("closed", 1, 50, 10)
    assert q["kind"] == "difference" and q["winner"] == "gan_upsample" and q["verdict"] == "gan_upsample better"
    modest = [pair_vote(i, "gan_upsample", "gan_transpose", i, "A" if i % 20 < 13 else "B") for i in range(60)]  # 65 %
    q = human_verdicts(plan, modest, GANS)["questions"][0]
    assert q["status"] == "open" and q["p"] < 0.05 and q["kind"] == "not settled"  # p < α is not p < 0.001
    assert (q["more_votes_needed"], q["next_look"]) == (140, 100)


def test_a_half_and_half_question_with_ties_is_equivalent_within_the_margin():
    plan = small_plan(200, pairs=GAN_PAIRS[:1])
    answers = ["A", "B", "tie", "tie"] * 50
    votes = [pair_vote(i, "gan_upsample", "gan_transpose", i, a) for i, a in enumerate(answers)]
    q = human_verdicts(plan, votes, GANS)["questions"][0]
    assert q["share"] == pytest.approx(0.5) and q["ties"] == 100
    assert q["kind"] == "equivalent" and q["verdict"] == "equivalent within 45–55 %"
    assert q["secondaries"]["legibility"]["verdict"].startswith("not tested")


def test_secondaries_are_tested_only_behind_a_primary_difference():
    plan = small_plan(60, pairs=GAN_PAIRS[:1])
    votes = [
        SimVote(i, "r", "pair", ["gan_upsample", "gan_transpose"], i, 9, "A", "A" if i % 2 else "B", "A")
        for i in range(60)
    ]
    q = human_verdicts(plan, votes, GANS)["questions"][0]
    assert q["kind"] == "difference"
    assert q["secondaries"]["noise"]["kind"] == "difference" and q["secondaries"]["legibility"]["kind"] == "not settled"


# ---- simulated campaigns ------------------------------------------------------------------------------------------

TRUTH = {"gan_transpose": -0.3, "gan_upsample": 0.25, "gan_upsample_matched": 0.1, "gan_transpose_k4": -0.1}


def test_win_share_intervals_cover_the_true_share_at_their_nominal_rate():
    """120 simulated campaigns × 3 questions of 150 votes, careful raters with position bias and ties: the 95 %
    intervals must cover the true share in 0.92–0.98 of the 360 (a binomial 95 % band around 0.95 is ±0.023)."""
    pop = Population(TRUTH, position_bias=0.3, tie_band=0.3)
    plan = small_plan(150)
    covered = total = 0
    for seed in range(120):
        out = run_campaign(plan, pop, sim_settings(**{**QUIET, "repeat_rate": 0.2}), seed, models=GANS, raters=40)
        for q in out.campaign["questions"]:
            low, high = q["interval"]
            covered += low <= pop.true_share(q["a"], q["b"]) <= high
            total += 1
    assert total == 360 and 0.92 <= covered / total <= 0.98, covered / total


def test_bradley_terry_intervals_cover_the_true_ratings_and_the_order_is_recovered():
    """80 campaigns of 600 votes on four GANs, 30 % of them best-of-four (Luce's choice rule), position bias, no
    ties (the Bradley–Terry model is then the generating one): the bootstrap's 95 % intervals cover the true centred
    ratings in 0.915–0.985 of the 320 cases, and the fitted order is the true one in at least 70 campaigns.
    Resampling comparisons instead of votes (a best-of-four vote's three comparisons apart) covers 0.89 here."""
    pop = Population(TRUTH, position_bias=0.3)
    truth = dict(zip(GANS, elo_truth(pop, GANS)))
    order = sorted(GANS, key=lambda m: -TRUTH[m])
    covered = total = right_order = 0
    for seed in range(80):
        out = run_campaign(
            small_plan(10**6),
            pop,
            sim_settings(**{**QUIET, "four_rate": 0.3}, scheduler="uniform"),
            seed,
            GANS,
            40,
            600,
        )
        comps = [c for v in out.counted() for c in comparisons_from_vote(v.models, v.kind, v.overall, v.id)]
        rows = rank_table(comps, GANS, 200)  # the results page's table for one connected family
        for row in rows:
            covered += row["lower"] <= truth[row["model"]] <= row["upper"]
            total += 1
        right_order += [r["model"] for r in rows] == order
    assert total == 320 and 0.915 <= covered / total <= 0.985, covered / total
    assert right_order >= 70, right_order


def test_gold_flags_careless_raters_and_leaving_them_out_moves_estimates_toward_the_truth():
    pop = Population(TRUTH, careless_share=0.3, position_bias=0.2, tie_band=0.2)
    caught = careless = wrongly = careful = 0
    err_in, err_out = [], []
    for seed in range(8):
        out = run_campaign(
            small_plan(10**6), pop, sim_settings(four_rate=0.0, gold_rate=0.2), seed, GANS, 30, max_votes=1500
        )
        for r in out.raters.values():
            if r.passed + r.failed >= 8:  # a careless clicker passes 15 % of 8 gold tasks by luck (≤ 2 fails)
                careless += r.careless
                caught += r.careless and r.flagged
                careful += not r.careless
                wrongly += (not r.careless) and r.flagged
        for counted, errors in ((out.counted(True), err_out), (out.counted(False), err_in)):
            for a, b in GAN_PAIRS:
                votes = [v for v in counted if v.kind == "pair" and set(v.models) == {a, b}]
                share = win_share([(v.seed, s) for v in votes if (s := _score(v, a)) is not None])
                errors.append(abs(share.share - pop.true_share(a, b)))
    assert careless >= 20 and caught / careless >= 0.8, (caught, careless)
    assert wrongly / careful <= 0.1, (wrongly, careful)
    assert statistics.mean(err_out) < 0.7 * statistics.mean(err_in), (statistics.mean(err_out), statistics.mean(err_in))


def _score(vote, a):
    return {"tie": 0.5, "A": float(vote.models[0] == a), "B": float(vote.models[1] == a)}.get(vote.overall)


# The shipped plan on a population where every question has a clear answer or none: seven differences, three equal.
SHIPPED_TRUTH = {
    "gan_transpose": 0.0, "gan_upsample": 0.25, "gan_upsample_matched": 0.2, "gan_transpose_shallow": -0.15,
    "gan_transpose_k4": 0.0, "vae_transpose": 0.0, "vae_upsample": 0.2, "vae_transpose_k4": -0.2,
    "vae_bilinear": 0.2, "vae_subpixel": 0.0, "cgan_transpose": 0.0, "cgan_upsample": 0.3,
    "cvae_transpose": 0.0, "cvae_upsample": 0.15,
}  # fmt: skip


def test_the_adaptive_scheduler_settles_the_shipped_plan_with_fewer_votes_than_the_uniform_one():
    pop = Population(SHIPPED_TRUTH, careless_share=0.15, position_bias=0.2, tie_band=0.3)
    needed: dict[str, list[int]] = {"uniform": [], "adaptive": []}
    false = []
    for seed in range(4):
        for scheduler in needed:
            out = run_campaign(PLAN, pop, sim_settings(scheduler=scheduler), seed)
            assert out.votes_to_settle is not None, (scheduler, seed)
            needed[scheduler].append(out.votes_to_settle)
            for q in out.campaign["questions"]:  # Holm keeps false differences to under α per campaign
                truth = pop.true_share(q["a"], q["b"])
                if q["kind"] == "difference" and not (
                    abs(truth - 0.5) > 0.02 and q["winner"] == (q["a"] if truth > 0.5 else q["b"])
                ):
                    false.append((scheduler, seed, q["a"], q["b"]))
    assert len(false) <= 1, false
    pairs = list(zip(needed["adaptive"], needed["uniform"]))
    assert all(a < u for a, u in pairs), needed
    assert statistics.median(needed["uniform"]) / statistics.median(needed["adaptive"]) > 1.15, needed


def test_the_adaptive_pick_follows_the_documented_narrowing_rule():
    """Among open questions a pair task goes to each with probability ∝ 1/√(n+1) − 1/√(n+2) of its n votes; with the
    floor, that share of pair tasks takes the uniform rule."""
    from app.ratings.scheduling import narrowing, next_task
    from tests.simraters import table_families

    rng = random.Random(2)
    families = table_families(GANS)
    few, many = ("gan_transpose", "gan_upsample"), ("gan_transpose", "gan_transpose_k4")
    open_q = {few: 10, many: 40}
    s = sim_settings(**QUIET, adaptive_floor=0.0)
    picks = [frozenset(next_task(rng, s, families, dict, list, open_q)[1]) for _ in range(4000)]
    expected = narrowing(10) / (narrowing(10) + narrowing(40))
    assert abs(picks.count(frozenset(few)) / 4000 - expected) < 0.02, (picks.count(frozenset(few)), expected)
    s = sim_settings(**QUIET, adaptive_floor=0.5)
    picks = [frozenset(next_task(rng, s, families, dict, list, open_q)[1]) for _ in range(4000)]
    elsewhere = sum(p not in (frozenset(few), frozenset(many)) for p in picks) / 4000
    assert abs(elsewhere - 0.5 * 4 / 6) < 0.03, elsewhere  # half to the uniform rule: 4 of its 6 pairs are not open


def test_no_pair_within_a_family_starves_under_the_adaptive_scheduler():
    """While questions are still open, the floor keeps every within-family pair voted on."""
    import itertools

    from tests.simraters import table_families

    pop = Population(SHIPPED_TRUTH, tie_band=0.3)
    out = run_campaign(PLAN, pop, sim_settings(scheduler="adaptive"), 1, max_votes=1500, stop_when_settled=False)
    assert out.campaign["open"] > 0 and out.votes_to_settle is None
    counts: dict[frozenset, int] = {}
    for v in out.votes:
        if v.kind == "pair":
            counts[frozenset(v.models)] = counts.get(frozenset(v.models), 0) + 1
    families = table_families(list(SHIPPED_TRUTH))
    within = [frozenset(p) for f in families.values() for p in itertools.combinations(f, 2)]
    questions = {frozenset(p) for p in PLAN.pairs}
    others = [counts.get(p, 0) for p in within if p not in questions]
    assert len(within) == 22 and len(others) == 12 and min(others) >= 8, sorted(others)[:5]
    assert not set(counts) - set(within)  # a pair task never crosses families


# ---- through the HTTP API -------------------------------------------------------------------------------------------


def test_a_campaign_through_the_http_api_reaches_verdicts_and_flags_a_careless_rater(tiny_store, tmp_path, monkeypatch):
    """Seven simulated raters (one careless: always "A") vote through the real API on the tiny models, with gold,
    best-of-four and repeats on, under a 12-vote plan; the campaign ends with every served question decided or
    complete, the careless rater flagged and left out, and the same standing in /api/campaign, /api/results, the
    results page and `deconv-arena campaign plan`."""
    from tests.conftest import make_client, wait_ready
    from tests.test_ratings import answer, join

    plan = tmp_path / "plan.toml"
    plan.write_text(
        DEFAULT_PLAN.read_text()
        .replace("votes_per_question = 330", "votes_per_question = 12")
        .replace("looks = [0.25, 0.50, 0.75, 1.00]", "looks = [0.5, 1.0]")
    )
    strong = {m: 0.0 for m in SHIPPED_TRUTH}
    for a, b in PLAN.pairs:
        strong[a] = 0.6 if not strong[b] else strong[b] + 0.6  # every question has a clear answer: a better
    pop = Population(strong)
    from app.ratings import scheduling

    monkeypatch.setattr(scheduling, "RANDOM", random.Random(11))  # the server's task draws, seeded for this test
    settings = dict(gold_rate=0.4, four_rate=0.1, repeat_rate=0.1, votes_per_minute=10**5, results_ttl_s=0)
    rng = random.Random(5)
    db = tmp_path / "votes.db"
    with make_client(tiny_store, tmp_path, campaign_plan=plan, database_url=f"sqlite:///{db}", **settings) as c:
        wait_ready(c)
        store = c.app.state.ratings.store
        cookies = {}
        for name in ["careless"] + [f"careful{i}" for i in range(6)]:
            c.cookies.clear()
            join(c, name)
            cookies[name] = dict(c.cookies)
        for _round in range(60):
            for name, jar in cookies.items():
                c.cookies.clear()
                c.cookies.update(jar)
                task = c.post("/api/rate/tasks").json()
                issued = store.task(task["task_id"])
                rater = type("R", (), {"careless": False})()
                if name == "careless":
                    choice = "A"
                else:
                    choice = pop.answer(rng, rater, issued.kind, issued.models)
                assert answer(c, task["task_id"], choice).status_code == 201
            if c.get("/api/campaign").json()["open"] == 0:
                break
        campaign = c.get("/api/campaign").json()
        results = c.get("/api/results").json()
        page = c.get("/results").text
    assert campaign["open"] == 0 and campaign["plan"] == "served-pairs v1" and campaign["votes_per_question"] == 12
    flagged = [r for r in store.raters() if r.flagged]
    assert [r.display_name for r in flagged] == ["careless"]
    assert results["counts"]["flagged_raters"] == 1 and results["counts"]["excluded_flagged"] is True
    careless_id = flagged[0].id
    for q in campaign["questions"]:
        assert q["served"] and q["status"] in ("closed", "complete") and q["used_votes"] in (6, 12), q
        if q["kind"] == "difference":
            assert q["winner"] == q["a"], q
    assert [q["verdict"] for q in results["campaign"]["questions"]] == [q["verdict"] for q in campaign["questions"]]
    counted = [v for v in store.votes() if v.rater_id != careless_id and v.kind != "gold"]
    first = campaign["questions"][0]
    on_first = [v for v in counted if v.kind == "pair" and set(v.models) == {first["a"], first["b"]}]
    assert first["votes"] == len(on_first)
    assert "People's verdicts, question by question" in page
    assert all(f"{q['a']} vs {q['b']}" in page and q["verdict"] in page for q in campaign["questions"])
    # the command reads the same database and says the same
    import os

    from deconv_arena.cli import main

    os.environ["ARENA_DATABASE_URL"], os.environ["ARENA_CAMPAIGN_PLAN"] = f"sqlite:///{db}", str(plan)
    try:
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["campaign", "plan", "--store", str(tiny_store)]) == 0
    finally:
        del os.environ["ARENA_DATABASE_URL"], os.environ["ARENA_CAMPAIGN_PLAN"]
    text = out.getvalue()
    assert "1 flagged rater left out" in text and "0 served question(s) open; 0 more votes needed" in text
    assert all(q["verdict"] in text for q in campaign["questions"])


def test_a_best_of_four_vote_credits_the_chosen_model_end_to_end(tiny_store, tmp_path):
    from tests.conftest import make_client, wait_ready
    from tests.test_ratings import answer, join

    with make_client(tiny_store, tmp_path, gold_rate=0.0, four_rate=1.0, repeat_rate=0.0) as c:
        wait_ready(c)
        join(c)
        task = c.post("/api/rate/tasks").json()
        assert task["kind"] == "four" and task["answers"][:4] == ["A", "B", "C", "D"]
        w, x, y, z = c.app.state.ratings.store.task(task["task_id"]).models
        assert answer(c, task["task_id"], "C").status_code == 201
        matrix = c.get("/api/results").json()["questions"]["overall"]["win_matrix"]
    for other in (w, x, z):
        assert matrix[y][other] == {"win_rate": 1.0, "count": 1} and matrix[other][y]["win_rate"] == 0.0
    assert matrix[w][x]["count"] == matrix[w][z]["count"] == matrix[x][z]["count"] == 0
