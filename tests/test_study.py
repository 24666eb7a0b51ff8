"""The study analysis (arena/study.py) and its plan (arena/plans.py): known effects are recovered, 95 % intervals
cover at their rate and the type-I error stays at α over simulated studies, and each rule that decides a verdict
fails a test when broken."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os

import numpy as np
import pytest

from arena import plans, study
from arena.stats import METRIC
from tests.conftest import ROOT

CELLS = {  # cell: (operator, network)
    "gan_transpose": ("transpose", "A"),
    "gan_upsample_matched": ("resize", "A"),
    "gan_transpose_shallow": ("transpose", "B"),
    "gan_upsample": ("resize", "B"),
}


def simulate(rng, seeds=20, operator=0.0, network=0.0, interaction=0.0, sd=1.0, seed_sd=2.0, block=False):
    """Rows of a blocked 2×2 study with known effects (±½ coding, so each effect is a difference of means)."""
    rows = []
    for s in range(seeds):
        seed_effect = rng.normal(0, seed_sd)
        for cell, (op, net) in CELLS.items():
            o, n = (0.5 if op == "resize" else -0.5), (0.5 if net == "B" else -0.5)
            mean = 10 + operator * o + network * n + interaction * o * n
            row = {"seed": s, "operator": op, "network": net, "score": mean + seed_effect + rng.normal(0, sd)}
            if block:
                row["block"] = "H200" if s % 2 else "CPU"
            rows.append(row)
    return rows


def test_known_effects_are_recovered():
    rng = np.random.default_rng(1)
    fit = study.factorial_fit(simulate(rng, seeds=200, operator=-3.0, network=1.5, interaction=2.0, sd=0.5), 0.05)
    assert fit["operator"].estimate == pytest.approx(-3.0, abs=0.1)
    assert fit["network"].estimate == pytest.approx(1.5, abs=0.1)
    # the interaction is the operator effect in network B minus in network A
    assert fit["interaction"].estimate == pytest.approx(2.0, abs=0.2)
    for e in fit.values():
        assert e.low < e.estimate < e.high and e.df == 800 - 3 - 200


def test_intervals_cover_at_95_percent_and_the_type_one_error_stays_at_alpha():
    """Over 1,000 simulated 20-seed studies with the plan's model: each 95 % interval covers its true effect in
    95 % ± 2 % of them (binomial sd 0.7 %); under the null no effect is called a difference in more than α + 2 %."""
    rng = np.random.default_rng(2026)
    truth = {"operator": 0.8, "network": -0.4, "interaction": 0.0}
    covered = {k: 0 for k in truth}
    false_difference = 0
    runs = 1000
    for _ in range(runs):
        fit = study.factorial_fit(simulate(rng, **truth), 0.05)
        for k, v in truth.items():
            covered[k] += fit[k].low <= v <= fit[k].high
        false_difference += fit["interaction"].p < 0.05  # the true interaction is 0
    for k in truth:
        assert abs(covered[k] / runs - 0.95) < 0.02, (k, covered[k] / runs)
    assert false_difference / runs <= 0.05 + 0.02


def test_a_machine_block_is_modelled_not_split():
    """Half the seeds on another machine with an offset of 5: the blocked model recovers the operator effect."""
    rng = np.random.default_rng(3)
    rows = simulate(rng, seeds=10, operator=-2.0, sd=0.3, block=True)
    for r in rows:
        r["score"] += 5.0 if r["block"] == "H200" else 0.0
    fit = study.factorial_fit(rows, 0.05)
    assert fit["operator"].low < -2.0 < fit["operator"].high and fit["operator"].p < 0.001


def _estimate(mean, se, n=20, effect="operator"):
    return study.Estimate(effect, mean, se, n - 1, mean - 2 * se, mean + 2 * se, 0.5, n)


def test_tost_takes_the_larger_one_sided_p_value():
    """A mean of 0.9 with δ = 1: the upper one-sided test is the hard one; min() instead of max() would call it
    equivalent far too easily."""
    e = _estimate(0.9, 0.2)
    from scipy import stats as sps

    lower = sps.t.sf((0.9 + 1) / 0.2, 19)
    upper = sps.t.cdf((0.9 - 1) / 0.2, 19)
    assert e.tost_p(1.0) == pytest.approx(max(lower, upper)) and e.tost_p(1.0) > 0.3


def test_a_mean_outside_delta_with_a_tiny_spread_is_never_equivalent():
    for mean in (1.2, -1.2, 5.0):
        e = dataclasses.replace(_estimate(mean, 1e-6), p=1.0)  # not a difference either, by construction
        v = study.judge({"operator": e}, METRIC["frechet"], 1.0, 0.05)["operator"]
        assert v["kind"] != "equivalent"


def test_direction_follows_the_metric_lower_or_higher_is_better():
    e = dataclasses.replace(_estimate(-3.0, 0.1), p=1e-6)  # resize minus transposed < 0
    lower = study.judge({"operator": e}, METRIC["frechet"], 1.0, 0.05)["operator"]["verdict"]
    higher = study.judge({"operator": e}, METRIC["legibility"], 1.0, 0.05)["operator"]["verdict"]
    assert lower.startswith("resize-convolution better") and higher.startswith("transposed convolution better")


def test_holm_adjusts_within_the_family_and_only_there():
    """p = 0.02, 0.03, 0.04 in a family of three: each alone is < α, Holm settles none of the last two; a second,
    unrelated family leaves the first's adjusted p unchanged."""
    fam = {
        k: dataclasses.replace(_estimate(-3.0, 1.0, effect=k), p=p)
        for k, p in zip(("operator", "network", "interaction"), (0.02, 0.03, 0.04))
    }
    judged = study.judge(fam, METRIC["frechet"], 0.5, 0.05)
    assert [judged[k]["p_holm"] for k in fam] == pytest.approx([0.06, 0.06, 0.06])
    assert all(judged[k]["kind"] != "difference" for k in fam)
    alone = study.judge({"operator": fam["operator"]}, METRIC["frechet"], 0.5, 0.05)
    assert alone["operator"]["p_holm"] == pytest.approx(0.02) and alone["operator"]["kind"] == "difference"


def test_seeds_needed_come_from_power_and_are_not_shown_when_already_enough():
    # sd per seed 1, δ 1, α 0.05: a paired t test needs 10 seeds for 80 % power (standard tables: 10)
    assert study.seeds_for_difference(1.0, 1.0, 0.05) == 10
    assert study.seeds_for_difference(1.0, 1.0, 0.05 / 3) > 10  # the family's first Holm level asks more
    assert study.seeds_for_equivalence(1.0, 1.0, 0.05) > study.seeds_for_difference(1.0, 1.0, 0.05)
    e = dataclasses.replace(_estimate(0.0, 1.0 / math.sqrt(20)), p=1.0)
    row = study.judge({"operator": e}, METRIC["frechet"], 5.0, 0.05)["operator"]
    assert row["seeds_for_difference_80"] is None  # 20 seeds is already more than δ = 5 needs
    assert set(row["sensitivity"]) == {"0.5δ", "1δ", "2δ"}


def test_the_shipped_plans_load_and_name_only_known_metrics():
    loaded = plans.plans(ROOT / "studies")
    assert loaded, "no plan under studies/"
    for plan in loaded:
        assert len(plan.seeds) >= 10 and plan.alpha == 0.05
        for q in plan.questions:
            assert q.primary in METRIC and q.delta > 0 and len(q.delta_rationale) > 40
            assert set(q.family) <= {"operator", "network", "interaction", "pair"}


def test_a_plan_missing_a_key_is_refused_naming_it(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[plan]\nid = "x"\nversion = 1\ndate = "2026-12-02"\ntitle = "t"\nalpha = 0.05\n')
    with pytest.raises(plans.PlanFileError, match="stopping_rule"):
        plans.load_plan(path)


def test_pre_registered_only_when_committed_before_the_first_run():
    import datetime as dt

    plan = plans.plans(ROOT / "studies")[0]
    t = dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc)
    hour = dt.timedelta(hours=1)
    assert plans.standing(plan, t, t - hour) == "pre-registered"
    assert plans.standing(plan, t, t + hour).startswith("registered after")
    assert plans.standing(plan, t, None).startswith("registered after")
    assert plans.standing(plan, None, t).startswith("committed")


def test_a_study_run_is_never_resumed_and_records_its_plan(tmp_path, monkeypatch):
    """Under a study (`sweep --study` sets the policy's study), a checkpoint left by a cut-off run is discarded: the
    unit trains from epoch 0 instead of resuming, and the run is trained with the plan's record for its manifest."""
    from training.loop import epochs as runner
    from training.sweeps import stages as sweep

    job = sweep.PlannedRun("vae_upsample", "smoke", 1)
    monkeypatch.setattr(sweep, "state", lambda j, store, workdir: "resume")
    seen = {}
    monkeypatch.setattr(runner, "train_variant", lambda *a, **k: seen.update(resume=a[5], study=k.get("study")))
    path = ROOT / "studies" / "gan-operator-network-v1.toml"
    sweep.train_unit((job,), tmp_path, tmp_path, None, log=lambda _: None, policy=sweep.Policy(study=str(path)))
    assert seen["resume"] is False and seen["study"] == plans.load_plan(path).record()
    assert seen["study"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    seen.clear()
    sweep.train_unit((job,), tmp_path, tmp_path, None, log=lambda _: None)
    assert seen["resume"] is True and seen["study"] is None
    assert "ARENA_STUDY_PLAN" not in os.environ  # the plan travels in the policy, not in the environment


def test_seeds_needed_are_computed_at_the_familys_first_holm_level():
    """Three effects in one family, none settled: the seeds each needs for 80 % power are computed at α/3, the
    level Holm's first step tests at; at α they would be fewer."""
    fam = {
        k: dataclasses.replace(_estimate(0.5, 2.0 / math.sqrt(8), n=8, effect=k), p=0.5)
        for k in ("operator", "network", "interaction")
    }
    judged = study.judge(fam, METRIC["frechet"], 1.0, 0.05)
    at_holm, at_alpha = study.seeds_for_difference(2.0, 1.0, 0.05 / 3), study.seeds_for_difference(2.0, 1.0, 0.05)
    assert at_holm > at_alpha > 8
    for k in fam:
        assert judged[k]["seeds_for_difference_80"] == at_holm


VAE_PLAN = ROOT / "studies" / "vae-operator-v1.toml"


def _pair_runs(plan, sha_of_seed, a_minus_b=-9.0):
    """{(cell, seed): run} for a pair plan's cells: every seed's runs carry the hash sha_of_seed(seed) gives."""
    rng = np.random.default_rng(7)
    a, b = plan.questions[0].contrast
    runs = {}
    for s in plan.seeds:
        base = 200 + rng.normal(0, 5)
        for cell, value in ((b, base), (a, base + a_minus_b + rng.normal(0, 3))):
            row = {"frechet": value, "kid": 8.0 + rng.normal(0, 0.3), "legibility": 0.9 + rng.normal(0, 0.01)}
            runs[(cell, s)] = {
                "row": row,
                "block": "CPU",
                "study": sha_of_seed(s),
                "created_at": None,
                "machine": "CPU, tensorflow, float32",
                "cpu": "Intel(R) Xeon(R) Processor, 2 cores" if s % 3 else "AMD EPYC 7B13, 2 cores",
                "commit": f"{'abc' if s < 220 else 'def'}1234" + ("-dirty" if s == 201 else ""),
                "source_diff": s == 201,
            }
    return runs


def test_a_study_counts_only_runs_under_this_version_of_its_plan(tmp_path, monkeypatch):
    """A store holding runs of two versions of one plan: half the seeds ran under version 0 (another hash). The
    study counts only its own 40 runs, so it is incomplete and answers nothing; a rule that took any plan's runs
    would count 80 and give a verdict."""
    plan = plans.load_plan(VAE_PLAN)
    older = plans.load_plan(_copy_plan(tmp_path, version=0))
    assert older.sha256 != plan.sha256 and older.id == plan.id
    runs = _pair_runs(plan, lambda s: plan.sha256 if s % 2 else older.sha256)
    monkeypatch.setattr(study, "_runs_of", lambda store, p, cells: runs)
    out = study.analyse(plan, tmp_path)
    assert out["study_runs"] == 40 and out["study_runs_planned"] == 80 and out["study"] == []


def test_a_study_is_answered_once_all_its_runs_are_in_never_before(tmp_path, monkeypatch):
    """One look (the plan's stopping rule): 79 of 80 runs give no estimate; the 80th gives the verdict."""
    plan = plans.load_plan(VAE_PLAN)
    runs = _pair_runs(plan, lambda s: plan.sha256)
    monkeypatch.setattr(study, "_runs_of", lambda store, p, cells: runs)
    complete = study.analyse(plan, tmp_path)
    assert complete["study_runs"] == 80
    (answer,) = complete["study"]
    assert answer["effects"][0]["verdict"] == "vae_upsample better" and answer["effects"][0]["seeds"] == 40
    # what the difference is a difference of: each side's mean over the same 40 seeds, said before the sensitivity
    from app.views.findings import study_effect_note

    means = answer["effects"][0]["means"]
    assert list(means) == ["vae_upsample", "vae_transpose"]
    assert means["vae_upsample"] - means["vae_transpose"] == pytest.approx(answer["effects"][0]["estimate"])
    up, tr = means["vae_upsample"], means["vae_transpose"]
    assert study_effect_note(answer["effects"][0]).startswith(
        f"Means over the 40 seeds: vae_upsample {up:.4g}, vae_transpose {tr:.4g}."
    )
    # where its runs trained and by what code, counted from their manifests and said beside the answer
    from app.views.findings import study_provenance

    amd = sum(s % 3 == 0 for s in plan.seeds) * 2
    assert complete["trained"] == {
        "machines": {"CPU, tensorflow, float32": 80},
        "cpus": {"Intel(R) Xeon(R) Processor, 2 cores": 80 - amd, "AMD EPYC 7B13, 2 cores": amd},
        "seeds_across_cpus": [],
        "commits": 2,
        "with_source_diff": 2,
    }
    said = study_provenance(complete)
    assert said.startswith("Its 80 runs trained on CPU, tensorflow, float32 (80 runs)") and "at 2 commits" in said
    assert f"AMD EPYC 7B13, 2 cores ({amd})" in said and "2 of the runs also record an uncommitted source diff" in said
    assert "different CPU models" not in said
    # a seed whose partner run had to be trained again on another host: said, by seed
    last = plan.seeds[-1]
    runs[("vae_upsample", last)] = dict(runs[("vae_upsample", last)], cpu="AMD EPYC 9B14, 2 cores")
    split = study.analyse(plan, tmp_path)
    assert split["trained"]["seeds_across_cpus"] == [last] and split["study"]
    assert study_provenance(split).endswith(f"the two cells of seed {last} trained on different CPU models.")
    del runs[("vae_upsample", plan.seeds[-1])]
    partial = study.analyse(plan, tmp_path)
    assert partial["study_runs"] == 79 and partial["study"] == []


def _copy_plan(tmp_path, version):
    text = VAE_PLAN.read_text().replace("version = 1", f"version = {version}", 1)
    path = tmp_path / f"vae-operator-v{version}.toml"
    path.write_text(text)
    return path


def test_the_vae_plan_resumes_a_cut_off_run_and_the_gan_plan_v1_does_not(tmp_path, monkeypatch):
    from training.loop import epochs as runner
    from training.sweeps import stages as sweep

    job = sweep.PlannedRun("vae_upsample", "smoke", 201)
    monkeypatch.setattr(sweep, "state", lambda j, store, workdir: "resume")
    seen = {}
    monkeypatch.setattr(runner, "train_variant", lambda *a, **k: seen.update(resume=a[5], study=k.get("study")))
    sweep.train_unit((job,), tmp_path, tmp_path, None, log=lambda _: None, policy=sweep.Policy(study=str(VAE_PLAN)))
    assert seen["resume"] is True and seen["study"]["sha256"] == plans.load_plan(VAE_PLAN).sha256
    gan = ROOT / "studies" / "gan-operator-network-v1.toml"
    sweep.train_unit((job,), tmp_path, tmp_path, None, log=lambda _: None, policy=sweep.Policy(study=str(gan)))
    assert seen["resume"] is False


def test_a_plans_resumable_flag_must_be_a_boolean(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(VAE_PLAN.read_text().replace("resumable = true", 'resumable = "yes"'))
    with pytest.raises(plans.PlanFileError, match="resumable 'yes'"):
        plans.load_plan(path)


def test_a_pair_without_spread_is_not_tested():
    """Every seed's difference the same (a clamped metric scoring 0 everywhere): the t test is undefined, not p = 0."""
    with pytest.raises(ValueError, match="no spread"):
        study.paired_fit([0.0] * 12, 0.05)
