"""Replicates and their statistics: intervals with known answers, verdicts, paired differences, failed runs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from deconv_arena.cli import main
from arena.stats import NOT_DISTINGUISHABLE, bootstrap_interval, paired_difference, t_interval, verdict


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
        lo, hi = bootstrap_interval(lambda i: float(x[i].mean()), len(x), resamples=300, seed=int(rng.integers(1 << 30)))
        hits += lo <= 2.0 <= hi
    assert 0.89 <= hits / 200 <= 0.99, hits / 200


def test_verdicts_come_from_the_interval():
    rng = np.random.default_rng(1)
    same = 0
    for _ in range(1000):
        a, b = rng.normal(10, 2, 5), rng.normal(10, 2, 5)
        diff, _ = paired_difference(dict(enumerate(a)), dict(enumerate(b)))
        same += verdict(diff, "lower") == NOT_DISTINGUISHABLE
    assert same / 1000 >= 0.93  # one distribution: a winner is named about 5 % of the time, no more
    a, b = rng.normal(10, 0.5, 3), rng.normal(20, 0.5, 3)
    diff, seeds = paired_difference(dict(enumerate(a)), dict(enumerate(b)))
    assert seeds == [0, 1, 2]
    assert verdict(diff, "lower", "gan_x", "gan_y") == "gan_x better"
    assert verdict(diff, "higher", "gan_x", "gan_y") == "gan_y better"
    assert verdict(t_interval([3.0]), "lower") == NOT_DISTINGUISHABLE  # one run: no interval, no verdict


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
    from training.evaluator import train_evaluator

    store = tmp_path_factory.mktemp("replicates") / "store"
    shutil.copytree(tiny_store, store)
    train_evaluator(tiny_data, store, epochs=1, log=lambda _: None)
    work = tmp_path_factory.mktemp("replicate-runs")
    for name in ("vae_transpose", "vae_upsample"):
        code = main(["train", "--variant", name, "--profile", "smoke", "--seeds", "1-3", "--data", str(tiny_npz), "--store", str(store), "--workdir", str(work)])
        assert code == 0
    assert main(["evaluate", "--variant", "vae_upsample", "--samples", "64", "--data", str(tiny_npz), "--store", str(store)]) == 0
    return store


def test_replicates_are_trained_evaluated_and_summarised(replicated_store):
    stats = json.loads((replicated_store / "replicates.json").read_text())
    for name in ("vae_transpose", "vae_upsample"):
        entry = stats["models"][name]["smoke"]
        assert entry["seeds"] == [1, 2, 3] and entry["failed"] == {}
        fd = entry["metrics"]["frechet"]
        assert fd["n"] == 3 and fd["low"] <= fd["mean"] <= fd["high"] and len(fd["values"]) == 3
        assert fd["mean"] == pytest.approx(np.mean(list(fd["values"].values())))
        metrics = json.loads((replicated_store / "_replicates" / "smoke-seed2" / name / "metrics.json").read_text())
        assert metrics["intervals"]["frechet"][0] <= metrics["frechet"]["distance"] <= metrics["intervals"]["frechet"][1]
    (comparison,) = [c for c in stats["comparisons"] if c["a"] == "vae_upsample"]
    assert comparison["b"] == "vae_transpose" and comparison["seeds"] == [1, 2, 3]
    for key, row in comparison["metrics"].items():
        assert row["verdict"] in (NOT_DISTINGUISHABLE, "vae_upsample better", "vae_transpose better"), key
    # where each seed trained is recorded, and a seed from another machine is named apart in the README table
    assert entry["trained_on"] == {str(s): "CPU, tensorflow, float32" for s in (1, 2, 3)}
    from arena.tables import _places

    assert _places(entry) == "CPU, tensorflow, float32"
    mixed = {"trained_on": {"1": "NVIDIA H200, jax, jax precision highest", "2": "NVIDIA H200, jax, jax precision highest", "3": "CPU, tensorflow, float32"}}
    assert _places(mixed) == "1, 2: NVIDIA H200, jax, jax precision highest; 3: CPU, tensorflow, float32"
    # the served models are untouched by replicates
    assert json.loads((replicated_store / "vae_upsample" / "manifest.json").read_text())["config"]["seed"] == 1234


def test_a_failed_replicate_is_listed_as_failed(replicated_store, tiny_npz, monkeypatch, capsys):
    import training.runner

    def broken(*args, **kwargs):
        raise RuntimeError("simulated out-of-memory in epoch 1")

    monkeypatch.setattr(training.runner, "train_variant", broken)
    code = main(["train", "--variant", "vae_upsample", "--profile", "smoke", "--seeds", "4", "--data", str(tiny_npz), "--store", str(replicated_store)])
    assert code == 2 and "vae_upsample seed 4" in capsys.readouterr().err
    assert main(["evaluate", "--replicates", "--samples", "32", "--data", str(tiny_npz), "--store", str(replicated_store)]) == 0
    entry = json.loads((replicated_store / "replicates.json").read_text())["models"]["vae_upsample"]["smoke"]
    assert entry["seeds"] == [1, 2, 3] and "simulated out-of-memory" in entry["failed"]["4"]
    assert entry["metrics"]["frechet"]["n"] == 3


def test_seed_lists_are_checked(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--variant", "vae_upsample", "--seeds", "1,x"])
    assert "--seeds '1,x': expected seeds like 1,2,3 or 1-5" in capsys.readouterr().err


def test_pages_and_api_show_intervals_and_verdicts(replicated_store, tmp_path):
    from tests.conftest import make_client, wait_ready

    with make_client(replicated_store, tmp_path) as c:
        wait_ready(c)
        stats = c.get("/api/replicates").json()
        assert stats["models"]["vae_upsample"]["smoke"]["seeds"][:3] == [1, 2, 3]
        (summary,) = [m for m in c.get("/api/models").json() if m["name"] == "vae_upsample"]
        assert summary["replicates"]["smoke"]["metrics"]["frechet"]["n"] == 3
        assert summary["comparisons"] and summary["comparisons"][0]["metrics"]["frechet"]["verdict"]
        page = c.get("/").text
        assert "Across training seeds — smoke budget" in page and page.count('<svg class="interval"') >= 4
        assert "vae_upsample − vae_transpose, paired by seed (3 seeds)" in page
        model = c.get("/models/vae_upsample").text
        assert "Is the difference real?" in model and "bootstrap over its" in model
        assert "No replicate runs of this model yet" in c.get("/models/gan_upsample").text


def test_replicate_curves_are_per_epoch_intervals_and_drawn_as_bands(replicated_store, tmp_path):
    stats = json.loads((replicated_store / "replicates.json").read_text())
    curve = stats["models"]["vae_transpose"]["smoke"]["curves"]["curve_checkerboard_ratio"]
    assert [p["epoch"] for p in curve] == [1, 2] and all(p["n"] == 3 and p["low"] <= p["mean"] <= p["high"] for p in curve)
    per_seed = [json.loads((replicated_store / "_replicates" / f"smoke-seed{s}" / "vae_transpose" / "manifest.json").read_text())["history"][1]["curve_checkerboard_ratio"] for s in (1, 2, 3)]
    assert curve[1]["mean"] == pytest.approx(float(np.mean(per_seed)))
    assert (replicated_store / "comparison.png").is_file()
    from tests.conftest import make_client, wait_ready

    with make_client(replicated_store, tmp_path) as c:
        wait_ready(c)
        page = c.get("/").text
        assert "replicate spread" in page and "<polygon" in page
        assert "The shaded band is the 95 % t-interval" in c.get("/models/vae_transpose").text


def test_trained_on_names_the_machine_and_how_float32_ran(tmp_path):
    """A GPU run's label says whether float32 matmuls ran as TF32 (JAX's default on NVIDIA GPUs) or in full."""
    from arena.replicates import trained_on

    def label(hardware, backend="jax"):
        run = tmp_path / backend / str(len(list(tmp_path.glob("*/*"))))
        run.mkdir(parents=True)
        (run / "manifest.json").write_text(json.dumps({"hardware": hardware, "versions": {"backend": backend}}))
        return trained_on(run)

    gpu = ["gpu:NVIDIA H100 80GB HBM3"]
    assert label({"gpus": gpu, "float32_matmul": "jax default (TF32 on NVIDIA GPUs of compute capability >= 8.0)"}) == "NVIDIA H100 80GB HBM3, jax, TF32 (jax default)"
    assert label({"gpus": gpu, "float32_matmul": "jax precision highest"}) == "NVIDIA H100 80GB HBM3, jax, jax precision highest"
    assert label({"gpus": [], "float32_matmul": "float32"}, "tensorflow") == "CPU, tensorflow, float32"
    assert label({"gpus": gpu}) == "NVIDIA H100 80GB HBM3, jax, precision not recorded"
    assert trained_on(tmp_path / "missing") == "unknown"
    run = tmp_path / "old"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"hardware": {"gpus": []}, "versions": {"tensorflow": "2.21.0"}}))
    assert trained_on(run) == "CPU, tensorflow, float32"
