"""Replicates and their statistics: intervals with known answers, verdicts, paired differences, failed runs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from arena.stats import ALPHA, METRIC, bootstrap_interval, explore, paired_difference, t_interval
from deconv_arena.cli import main
from tests.conftest import manifest_record

# Student's t, 97.5th percentile, by number of values (df = n - 1), from the printed tables: a 95 % interval over n
# values is mean ± T975[n] · sd / √n. An answer computed here, not by the code under test.
T975 = {2: 12.7062047361747, 3: 4.30265272974946, 4: 3.18244630528371, 5: 2.77644510519779}
# Each metric's direction as docs/evaluation.md states it ("real": a ratio to real digits, scored by |ln ratio|)
BETTER = {
    "frechet": "lower",
    "kid": "lower",
    "legibility": "higher",
    "checkerboard_ratio": "real",
    "period4_ratio": "real",
    "precision": "higher",
    "recall": "higher",
    "coverage": "higher",
}


def t95(values) -> tuple[float, float, float]:
    """(mean, low, high) of the 95 % t-interval, by hand."""
    x = np.asarray(list(values), np.float64)
    half = T975[len(x)] * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


def score(value: float, better: str) -> float:
    return abs(float(np.log(value))) if better == "real" else float(value)


@pytest.mark.parametrize("n", [3, 5])
def test_t_interval_covers_a_known_mean_at_the_stated_rate(n):
    rng = np.random.default_rng(n)
    trials = 4000
    hits = 0
    for _ in range(trials):
        iv = t_interval(rng.normal(42.0, 7.0, n))
        hits += iv.low <= 42.0 <= iv.high
    # 95 % nominal; the binomial sd of the rate over 4000 trials is 0.0034
    assert 0.935 <= hits / trials <= 0.965, hits / trials


def test_bootstrap_interval_covers_a_known_mean():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(200):
        x = rng.exponential(2.0, 400)
        lo, hi = bootstrap_interval(
            lambda i: float(x[i].mean()), len(x), resamples=300, seed=int(rng.integers(1 << 30))
        )
        hits += lo <= 2.0 <= hi
    assert 0.89 <= hits / 200 <= 0.99, hits / 200


def test_an_exploratory_difference_never_names_a_winner():
    rng = np.random.default_rng(1)
    diffs = list(rng.normal(10, 0.5, 3) - rng.normal(20, 0.5, 3))  # a clear difference, but no plan fixed it
    assert explore(diffs, METRIC["kid"], "gan")["verdict"] is None
    assert explore([3.0], METRIC["kid"], "gan")["kind"] == "exploratory"  # one run: no interval, no verdict
    assert ALPHA == pytest.approx(0.05)


def test_paired_differences_are_the_per_seed_differences():
    a = {1: 10.0, 2: 12.0, 3: 11.0, 7: 99.0}
    b = {1: 9.0, 2: 10.0, 3: 11.5, 8: 0.0}
    diff, seeds = paired_difference(a, b)
    assert seeds == [1, 2, 3] and diff.n == 3
    assert diff.mean == pytest.approx(np.mean([1.0, 2.0, -0.5]))
    assert diff.mean - diff.low == pytest.approx(4.302652729911275 * np.std([1.0, 2.0, -0.5], ddof=1) / np.sqrt(3))


def test_a_failed_run_is_refused_not_averaged():
    with pytest.raises(ValueError, match="failed"):
        t_interval([1.0, float("nan"), 2.0])


@pytest.fixture(scope="module")
def replicated_store(tiny_store, tiny_data, tiny_npz, tmp_path_factory):
    from training.evaluation.classifier import train_evaluator

    store = tmp_path_factory.mktemp("replicates") / "store"
    shutil.copytree(tiny_store, store)
    train_evaluator(tiny_data, store, epochs=1, log=lambda _: None)
    work = tmp_path_factory.mktemp("replicate-runs")
    for name in ("vae_transpose", "vae_upsample"):
        code = main(
            [
                "train",
                "--variant",
                name,
                "--profile",
                "smoke",
                "--seeds",
                "1-3",
                "--data",
                str(tiny_npz),
                "--store",
                str(store),
                "--workdir",
                str(work),
            ]
        )
        assert code == 0
    assert (
        main(
            ["evaluate", "--variant", "vae_upsample", "--samples", "64", "--data", str(tiny_npz), "--store", str(store)]
        )
        == 0
    )
    return store


def test_replicates_are_trained_evaluated_and_summarised(replicated_store):
    stats = json.loads((replicated_store / "replicates.json").read_text())
    for name in ("vae_transpose", "vae_upsample"):
        entry = stats["models"][name]["smoke"]
        assert entry["seeds"] == [1, 2, 3] and entry["failed"] == {}
        fd = entry["metrics"]["frechet"]
        per_seed = {
            s: json.loads((replicated_store / "_replicates" / f"smoke-seed{s}" / name / "metrics.json").read_text())
            for s in (1, 2, 3)
        }
        assert fd["values"] == {str(s): m["frechet"]["distance"] for s, m in per_seed.items()}  # each seed's own file
        mean, _, _ = t95(fd["values"].values())
        _, log_low, log_high = t95(np.log(list(fd["values"].values())))  # a distance: its interval on the log scale
        assert fd["n"] == 3 and fd["mean"] == pytest.approx(mean, rel=1e-12)
        assert (fd["low"], fd["high"]) == (pytest.approx(np.exp(log_low), rel=1e-9), pytest.approx(np.exp(log_high)))
        lo, hi = per_seed[2]["intervals"]["frechet"]  # within one run: a percentile bootstrap, not symmetric
        assert lo < hi and lo <= per_seed[2]["frechet"]["distance"] <= hi
    (comparison,) = [c for c in stats["comparisons"] if c["a"] == "vae_upsample"]
    assert comparison["b"] == "vae_transpose" and comparison["seeds"] == [1, 2, 3]
    models = stats["models"]
    assert set(BETTER) <= set(comparison["metrics"])

    for key, better in BETTER.items():
        row = comparison["metrics"][key]
        a, b = (
            models["vae_upsample"]["smoke"]["metrics"][key]["values"],
            models["vae_transpose"]["smoke"]["metrics"][key]["values"],
        )
        diffs = [a[str(s)] - b[str(s)] for s in (1, 2, 3)]  # paired by seed: upsample minus transpose
        mean, low, high = t95(diffs)
        assert row["difference"]["mean"] == pytest.approx(mean, rel=1e-9, abs=1e-12), key
        assert (row["difference"]["low"], row["difference"]["high"]) == (
            pytest.approx(low, rel=1e-9, abs=1e-12),
            pytest.approx(high, rel=1e-9, abs=1e-12),
        ), key
        scored = [score(a[str(s)], better) - score(b[str(s)], better) for s in (1, 2, 3)]
        mean, low, high = t95(scored)
        assert (row["score_difference"]["mean"], row["score_difference"]["low"], row["score_difference"]["high"]) == (
            pytest.approx(mean, rel=1e-9, abs=1e-12),
            pytest.approx(low, rel=1e-9, abs=1e-12),
            pytest.approx(high, rel=1e-9, abs=1e-12),
        ), key
        assert row["verdict"] is None and row["kind"] == "exploratory" and "p" not in row, (key, row)
    # where each seed trained is recorded, and a seed from another machine is named apart in the README table
    assert entry["trained_on"] == {str(s): "CPU, tensorflow, float32" for s in (1, 2, 3)}
    from deconv_arena.generated_docs import _places

    assert _places(entry) == "CPU, tensorflow, float32"
    mixed = {
        "trained_on": {
            "1": "NVIDIA H200, jax, jax precision highest",
            "2": "NVIDIA H200, jax, jax precision highest",
            "3": "CPU, tensorflow, float32",
        }
    }
    assert _places(mixed) == "1, 2: NVIDIA H200, jax, jax precision highest; 3: CPU, tensorflow, float32"
    # the served models are untouched by replicates
    assert json.loads((replicated_store / "vae_upsample" / "manifest.json").read_text())["config"]["seed"] == 1234


def test_a_failed_replicate_is_listed_as_failed(replicated_store, tiny_npz, monkeypatch, capsys):
    import training.loop.epochs

    def broken(*args, **kwargs):
        raise RuntimeError("simulated out-of-memory in epoch 1")

    monkeypatch.setattr(training.loop.epochs, "train_variant", broken)  # the front door's training stage calls it there
    code = main(
        [
            "train",
            "--variant",
            "vae_upsample",
            "--profile",
            "smoke",
            "--seeds",
            "4",
            "--data",
            str(tiny_npz),
            "--store",
            str(replicated_store),
        ]
    )
    assert code == 2 and "vae_upsample seed 4" in capsys.readouterr().err
    assert (
        main(["evaluate", "--replicates", "--samples", "32", "--data", str(tiny_npz), "--store", str(replicated_store)])
        == 0
    )
    entry = json.loads((replicated_store / "replicates.json").read_text())["models"]["vae_upsample"]["smoke"]
    assert entry["seeds"] == [1, 2, 3] and "simulated out-of-memory" in entry["failed"]["4"]
    assert entry["metrics"]["frechet"]["n"] == 3


def test_a_replicate_whose_evaluation_fails_is_listed_as_failed_and_never_averaged(
    replicated_store, tiny_data, tmp_path, monkeypatch
):
    """Seed 2 of vae_transpose was evaluated before; evaluating it again fails. Its earlier metrics.json is still on
    disk, but the seed is listed as failed (with the stage and the error), and the mean, interval and paired
    comparison are those of seeds 1 and 3 alone."""
    import training.evaluation.evaluate as evaluate
    from arena.replicates import replicate_store

    store = tmp_path / "store"
    shutil.copytree(replicated_store, store)
    real = evaluate.evaluate_model

    def fails_for_seed_2(name, run, *args, **kwargs):
        if name == "vae_transpose" and run == replicate_store(store, "smoke", 2):
            raise RuntimeError("simulated evaluator crash")
        return real(name, run, *args, **kwargs)

    monkeypatch.setattr(evaluate, "evaluate_model", fails_for_seed_2)
    failed = evaluate.evaluate_replicates(
        store, tiny_data, only={("vae_transpose", "smoke", 2), ("vae_upsample", "smoke", 2)}, n=64, log=lambda _: None
    )
    assert failed == [2]
    assert (replicate_store(store, "smoke", 2) / "vae_transpose" / "metrics.json").is_file()  # the old figures remain
    stats = json.loads((store / "replicates.json").read_text())
    entry = stats["models"]["vae_transpose"]["smoke"]
    assert entry["seeds"] == [1, 3] and list(entry["failed"]) == ["2"]
    assert entry["failed"]["2"].startswith("evaluation: RuntimeError: simulated evaluator crash"), entry["failed"]
    kept = {
        s: json.loads((replicate_store(store, "smoke", s) / "vae_transpose" / "metrics.json").read_text())["frechet"][
            "distance"
        ]
        for s in (1, 3)
    }
    fd = entry["metrics"]["frechet"]
    mean, _, _ = t95(kept.values())
    _, log_low, log_high = t95(np.log(list(kept.values())))  # a distance: its interval on the log scale
    assert fd["values"] == {str(s): v for s, v in kept.items()} and fd["n"] == 2
    assert (fd["mean"], fd["low"], fd["high"]) == (
        pytest.approx(mean, rel=1e-12),
        pytest.approx(np.exp(log_low), rel=1e-9),
        pytest.approx(np.exp(log_high), rel=1e-9),
    )
    assert stats["models"]["vae_upsample"]["smoke"]["seeds"] == [1, 2, 3]  # the other variant's seed 2 was fine
    (comparison,) = [c for c in stats["comparisons"] if c["a"] == "vae_upsample" and c["profile"] == "smoke"]
    assert comparison["seeds"] == [1, 3] and comparison["metrics"]["frechet"]["seeds"] == [1, 3]


def test_seed_lists_are_checked(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--variant", "vae_upsample", "--seeds", "1,x"])
    assert "--seeds '1,x': expected seeds like 1,2,3 or 1-5" in capsys.readouterr().err


def test_pages_and_api_show_intervals_and_verdicts(replicated_store, tmp_path, monkeypatch):
    from app.api import rating_api as ratings_api
    from tests.conftest import make_client, wait_ready
    from tests.test_ratings import answer, join

    with make_client(replicated_store, tmp_path, results_ttl_s=0, gold_rate=0.0, four_rate=0.0, repeat_rate=0.0) as c:
        wait_ready(c)
        stats = c.get("/api/replicates").json()
        assert stats["models"]["vae_upsample"]["smoke"]["seeds"][:3] == [1, 2, 3]
        (summary,) = [m for m in c.get("/api/models").json() if m["name"] == "vae_upsample"]
        assert summary["replicates"]["smoke"]["metrics"]["frechet"]["n"] == 3
        assert summary["comparisons"] and summary["comparisons"][0]["metrics"]["frechet"]["score_difference"]
        page = c.get("/").text
        assert (
            "Across training seeds — smoke budget" in page
            and len(re.findall(r'<figure class="chart" data-name="smoke-[a-z0-9-]+-replicates"', page)) >= 4
        )
        assert "vae_upsample − vae_transpose, paired by seed (3 seeds trained on CPU, tensorflow, float32)" in page
        findings = page[page.index('<section class="findings"') :]
        findings = findings[: findings.index("</section>")]
        # the findings follow the grids: the exploratory sentences are folded under their summary
        assert page.index('<img class="grid"') < page.index('<section class="findings"')
        assert "<strong>vae_upsample vs vae_transpose</strong> (smoke budget)" in findings
        assert "Holm-adjusted" not in findings  # exploratory: an estimate, no adjusted p, no verdict
        # the metrics' estimate and people's verdict on the same pair, side by side
        assert "Exploratory: vae_upsample − vae_transpose" in findings
        assert "People say: no votes yet on this pair" in findings
        pair = ["vae_transpose", "vae_upsample"]
        seeds = iter([5, 5, 6, 7])
        monkeypatch.setattr(
            ratings_api, "choose_task", lambda ratings, registry, rid, campaign=None: ("pair", pair, next(seeds))
        )
        join(c)
        assert answer(c, c.post("/api/rate/tasks").json()["task_id"], "B").status_code == 201  # B: vae_upsample
        findings = c.get("/").text.split('<section class="findings"')[1].split("</section>")[0]
        assert "People say: 1 vote on one seed, too few for an interval" in findings
        for _ in range(2):
            assert answer(c, c.post("/api/rate/tasks").json()["task_id"], "B").status_code == 201
        findings = c.get("/").text.split('<section class="findings"')[1].split("</section>")[0]
        said = findings[findings.index("People say:") :][:400]
        assert "People say: not settled (vae_upsample won 100 % [" in findings, said
        assert "of 3 votes on the served runs; open, 327 more planned" in findings
        about = c.get("/about").text  # the same findings on /about say what people say too (once "not asked")
        assert said[: said.index("</span>")] in about and "not asked of raters" not in about
        model = c.get("/models/vae_upsample").text
        assert "Is the difference real?" in model and "bootstrap over its" in model
        assert "No replicate runs of this model yet" in c.get("/models/gan_upsample").text


def test_replicate_curves_are_per_epoch_intervals_and_drawn_as_bands(replicated_store, tmp_path):
    stats = json.loads((replicated_store / "replicates.json").read_text())
    curve = stats["models"]["vae_transpose"]["smoke"]["curves"]["curve_checkerboard_ratio"]
    assert [p["epoch"] for p in curve] == [1, 2] and all(p["n"] == 3 for p in curve)
    histories = [
        json.loads(
            (replicated_store / "_replicates" / f"smoke-seed{s}" / "vae_transpose" / "manifest.json").read_text()
        )["history"]
        for s in (1, 2, 3)
    ]
    for epoch in (0, 1):
        mean, low, high = t95(h[epoch]["curve_checkerboard_ratio"] for h in histories)
        point = curve[epoch]
        assert (point["mean"], point["low"], point["high"]) == (
            pytest.approx(mean, rel=1e-6),
            pytest.approx(low, rel=1e-6, abs=1e-9),
            pytest.approx(high, rel=1e-6, abs=1e-9),
        ), point
    assert (replicated_store / "comparison.png").is_file()
    from tests.conftest import make_client, wait_ready

    with make_client(replicated_store, tmp_path) as c:
        wait_ready(c)
        page = c.get("/").text
        # the family's curve chart draws the band (an area mark) and its table holds the band's ends
        assert "replicates&#39; 95 % high" in page and '"type": "area"' in page
        assert "The shaded band is the 95 % t-interval" in c.get("/models/vae_transpose").text


def test_trained_on_names_the_machine_and_how_float32_ran(tmp_path):
    """A GPU run's label says whether float32 matmuls ran as TF32 (JAX's default on NVIDIA GPUs) or in full."""
    from arena.replicates import trained_on

    def label(hardware, backend="jax"):
        run = tmp_path / backend / str(len(list(tmp_path.glob("*/*"))))
        run.mkdir(parents=True)
        (run / "manifest.json").write_text(
            json.dumps(manifest_record({"hardware": hardware, "versions": {"backend": backend}}))
        )
        return trained_on(run)

    gpu = ["gpu:NVIDIA H100 80GB HBM3"]
    assert (
        label({"gpus": gpu, "float32_matmul": "jax default (TF32 on NVIDIA GPUs of compute capability >= 8.0)"})
        == "NVIDIA H100 80GB HBM3, jax, TF32 (jax default)"
    )
    assert (
        label({"gpus": gpu, "float32_matmul": "jax precision highest"})
        == "NVIDIA H100 80GB HBM3, jax, jax precision highest"
    )
    assert label({"gpus": [], "float32_matmul": "float32"}, "tensorflow") == "CPU, tensorflow, float32"
    assert label({"gpus": gpu}) == "NVIDIA H100 80GB HBM3, jax, precision not recorded"
    assert trained_on(tmp_path / "missing") == "unknown"
    run = tmp_path / "old"
    run.mkdir()
    (run / "manifest.json").write_text(
        json.dumps(manifest_record({"hardware": {"gpus": []}, "versions": {"tensorflow": "2.21.0"}}))
    )
    assert trained_on(run) == "CPU, tensorflow, float32"


def test_an_interval_never_leaves_the_range_its_measure_can_take():
    """A Fréchet distance of three seeds at 3.3, 11.3 and 23.3: the plain t-interval runs below zero, the bounded one
    (log scale) does not; a share near 0 stays in [0, 1] (logit scale); a value on the bound cuts, never crosses."""
    import json

    from arena.stats import bounded_interval

    fd = [3.3, 11.3, 23.3]
    assert t_interval(fd).low < 0 < bounded_interval(fd, 0.0, None).low < np.mean(fd)
    share = bounded_interval([0.01, 0.02, 0.05], 0.0, 1.0)
    assert 0 < share.low < share.mean < share.high < 1
    assert bounded_interval([0.0, 0.02, 0.05], 0.0, 1.0).low == 0
    assert bounded_interval([1.0, 2.0, 3.0], None, None) == t_interval([1.0, 2.0, 3.0])
    shipped = json.loads((Path(__file__).resolve().parents[1] / "models_store" / "replicates.json").read_text())
    for name, profiles in shipped["models"].items():
        for entry in profiles.values():
            for key, iv in entry["metrics"].items():
                m = METRIC.get(key)
                if m is not None and iv.get("low") is not None:
                    assert m.lowest is None or iv["low"] >= m.lowest, (name, key, iv)
                    assert m.highest is None or iv["high"] <= m.highest, (name, key, iv)


def test_a_new_metric_is_its_declaration_and_its_computation(replicated_store, tmp_path, monkeypatch):
    """A metric added by its declaration (arena/stats.py METRIC) and its computation (training/evaluation/evaluate.py
    SECTIONS) alone: re-scoring the runs writes it, replicates.json carries its intervals, and the comparison page
    draws its replicate chart."""
    from arena.stats import METRIC, Metric
    from tests.conftest import make_client, wait_ready
    from training.evaluation import evaluate

    store = tmp_path / "store"
    shutil.copytree(replicated_store, store)
    monkeypatch.setitem(
        METRIC, "ink_mean", Metric("ink_mean", "mean ink (pixel value)", "lower", None, 0.0, 1.0, source="ink.mean")
    )
    monkeypatch.setitem(evaluate.SECTIONS, "ink", lambda d: {"mean": float(d.samples.mean())})
    runs = sorted(store.glob("_replicates/*/vae_*/metrics.json"))
    assert len(runs) == 6
    for metrics in runs:
        assert "ink" in evaluate.rescore_artefacts(metrics.parent, store)
        ink = json.loads(metrics.read_text())["ink"]["mean"]
        assert 0.0 <= ink <= 1.0
    stats = evaluate.write_statistics(store)
    summary = stats["models"]["vae_upsample"]["smoke"]["metrics"]["ink_mean"]
    assert summary["n"] == 3 and summary["low"] <= summary["mean"] <= summary["high"]
    assert "ink_mean" in [m["key"] for m in stats["metrics"]]
    with make_client(store, tmp_path, results_ttl_s=0) as c:
        wait_ready(c)
        page = c.get("/").text
    assert 'data-name="smoke-ink-mean-replicates"' in page and "mean ink (pixel value; lower is better)" in page
