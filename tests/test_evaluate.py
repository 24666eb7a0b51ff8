"""The evaluation job end to end on tiny models, its files, and its errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from arena.variants import VARIANTS
from deconv_arena.cli import main
from training.evaluation.classifier import NAME, load_evaluator, train_evaluator


@pytest.fixture(scope="module")
def evaluated_store(tiny_store, tiny_data, tiny_npz, tmp_path_factory):
    store = tmp_path_factory.mktemp("eval") / "store"
    shutil.copytree(tiny_store, store)
    train_evaluator(tiny_data, store, epochs=1, log=lambda _: None)
    assert main(["evaluate", "--all", "--samples", "64", "--data", str(tiny_npz), "--store", str(store)]) == 0
    return store


class FakeClock:
    """time.perf_counter for one module: every reading is `step` seconds after the previous one."""

    def __init__(self, step: float):
        self.now, self.step = 1000.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def frechet_by_eigenvalues(features: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> float:
    """‖μ − μ_r‖² + tr Σ + tr Σ_r − 2 Σ √λ_i(Σ Σ_r): the eigenvalues of the product (real and ≥ 0, as those of
    Σ^½ Σ_r Σ^½), not the symmetric square roots training/evaluation/measures.py takes."""
    f = np.asarray(features, np.float64)
    m, cov = f.mean(axis=0), np.cov(f, rowvar=False, ddof=1)
    roots = np.sqrt(np.clip(np.linalg.eigvals(cov @ sigma).real, 0.0, None))
    return float(np.sum((m - mu) ** 2) + np.trace(cov) + np.trace(sigma) - 2.0 * roots.sum())


def decode_by_hand(model_dir, seed: int, n: int, latent_dim: int) -> np.ndarray:
    """The VAE's samples for a seed: the documented latents, the Keras model called directly, a sigmoid."""
    import keras

    z = np.random.default_rng(seed).standard_normal((n, latent_dim), dtype=np.float32)
    model = keras.saving.load_model(model_dir / "generator.keras", compile=False)
    logits = np.asarray(model(z, training=False), np.float64).reshape(n, 28, 28)
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def test_metrics_files_are_complete(evaluated_store):
    _, _, reference = load_evaluator(evaluated_store)
    summary = json.loads((evaluated_store / "summary.json").read_text())
    for name, variant in VARIANTS.items():
        m = json.loads((evaluated_store / name / "metrics.json").read_text())
        manifest = json.loads((evaluated_store / name / "manifest.json").read_text())
        assert m["samples"] == 64 and m["seed"] == 20230214 and m["evaluator_sha256"]
        assert m["generator_sha256"] == manifest["files"]["generator.keras"]
        assert np.isfinite(m["frechet"]["distance"]) and m["frechet"]["distance"] == summary["models"][name]["frechet"]
        assert m["frechet"]["noise_floor"] == float(reference["noise_floor_frechet"])
        assert set(m["prdc"]) >= {"precision", "recall", "density", "coverage"}
        cb = m["checkerboard"]
        assert (
            cb["nyquist_index_real"] == float(reference["checkerboard_index"])
            and cb["nyquist_ratio"] == cb["nyquist_index"] / cb["nyquist_index_real"]
        )
        assert (
            cb["period4_index_real"] == float(reference["period4_index"])
            and cb["period4_ratio"] == cb["period4_index"] / cb["period4_index_real"]
        )
        assert (
            m["cost"]["params"] == manifest["params"]["total"]
            and m["cost"]["bytes_on_disk"] == (evaluated_store / name / "generator.keras").stat().st_size
        )
        sp = m["spectrum"]  # the spectral pictures' data: the samples' and real digits' mean log spectra, profiles
        assert (sp["samples"], sp["real_samples"], sp["size"], sp["crop_pixels"]) == (64, 64, 24, 2)
        real = np.array(sp["log10_power"]["real"], dtype=float)
        ref = reference["mean_spectrum"]
        with np.errstate(divide="ignore"):
            np.testing.assert_allclose(real, np.where(ref > 0, np.log10(ref), np.nan), atol=1e-4)  # DC: NaN
        assert np.isnan(np.array(sp["log10_power"]["model"], dtype=float)[12, 12])
        assert len(sp["profile"]["model"]) == len(sp["profile"]["real"]) == len(sp["profile"]["cycles_per_pixel"])
        if name.startswith("vae"):
            assert (evaluated_store / name / "report" / "reconstructions.png").is_file() and m["cost"]["test_elbo"] < 0
        kernels = m["checkerboard"]["transposed_kernels"]
        assert len(kernels) == (2 if variant.upsampling == "transpose" else 0), name
    summary = json.loads((evaluated_store / "summary.json").read_text())
    assert set(summary["models"]) == set(VARIANTS)
    assert (evaluated_store / "comparison.png").is_file()


def test_one_models_figures_match_an_independent_computation(evaluated_store, tiny_data, tmp_path, monkeypatch):
    """vae_upsample evaluated on 64 samples, against the same figures computed here: the samples from the documented
    latents of the evaluation seed through the Keras model, the Fréchet distance by another formula, the legibility
    as the mean top probability; timings from a clock that advances 0.5 s per reading (known answers)."""
    from types import SimpleNamespace

    import training.evaluation.evaluate as evaluate
    from training.evaluation import measures as metrics

    store = tmp_path / "store"
    shutil.copytree(evaluated_store, store)
    evaluator, ev_manifest, reference = load_evaluator(store)
    real = tiny_data.x_test[:64].astype(np.float32) / 255.0
    monkeypatch.setattr(evaluate, "time", SimpleNamespace(perf_counter=FakeClock(0.5)))
    r = evaluate.evaluate_model(
        "vae_upsample", store, real, evaluator.features(real), evaluator, ev_manifest, reference, 64
    )

    samples = decode_by_hand(store / "vae_upsample", 20230214, 64, 2)
    feats, probs = evaluator.features_and_probs(samples)
    assert r["frechet"]["distance"] == pytest.approx(
        frechet_by_eigenvalues(feats, reference["test_mu"], reference["test_sigma"]), rel=1e-5
    )
    assert r["legibility"]["mean_top_probability"] == pytest.approx(float(probs.max(axis=1).mean()), rel=1e-5)
    assert r["checkerboard"]["nyquist_index"] == pytest.approx(metrics.checkerboard_index(samples), rel=1e-4)
    # readings: start, batch-1 timing (2), batch-64 timing (2), end; 0.5 s over 20 × 1 and 5 × 64 images
    assert r["cost"]["ms_per_image_batch1"] == pytest.approx(25.0, rel=1e-12)
    assert r["cost"]["ms_per_image_batch64"] == pytest.approx(1.5625, rel=1e-12)
    assert r["seconds"] == 2.5
    assert json.loads((store / "vae_upsample" / "metrics.json").read_text())["frechet"] == r["frechet"]


def test_evaluating_one_model_leaves_the_others_alone(evaluated_store, tiny_npz):
    before = (evaluated_store / "gan_transpose" / "metrics.json").read_bytes()
    assert (
        main(
            [
                "evaluate",
                "--variant",
                "vae_upsample",
                "--samples",
                "32",
                "--data",
                str(tiny_npz),
                "--store",
                str(evaluated_store),
            ]
        )
        == 0
    )
    assert (evaluated_store / "gan_transpose" / "metrics.json").read_bytes() == before
    summary = json.loads((evaluated_store / "summary.json").read_text())
    assert len(summary["models"]) == len(VARIANTS)


def test_service_shows_metrics_when_present(evaluated_store, tmp_path):
    from tests.conftest import make_client, wait_ready

    with make_client(evaluated_store, tmp_path) as c:
        wait_ready(c)
        m = {x["name"]: x for x in c.get("/api/models").json()}
        assert m["gan_upsample"]["metrics"]["samples"] in (32, 64)
        page = c.get("/").text
        assert "Legibility" in page and "× real" in page
        page = c.get("/models/gan_upsample").text
        assert "/models/gan_upsample/spectrum.png?of=difference" in page and "azimuthal-average-of-the" in page
        assert c.get("/models/gan_upsample/spectrum.png").headers["content-type"] == "image/png"


def test_errors_are_one_line_exit_2(evaluated_store, tiny_npz, tmp_path, capsys):
    store = tmp_path / "s"
    shutil.copytree(evaluated_store, store)
    with open(store / "gan_upsample" / "generator.keras", "r+b") as f:
        f.seek(500)
        f.write(b"\xff" * 16)
    assert main(["evaluate", "--variant", "gan_upsample", "--data", str(tiny_npz), "--store", str(store)]) == 2
    assert "checksum" in capsys.readouterr().err
    shutil.rmtree(store / NAME)
    assert main(["evaluate", "--variant", "vae_upsample", "--data", str(tiny_npz), "--store", str(store)]) == 2
    assert "train-evaluator" in capsys.readouterr().err
    shutil.rmtree(store / "vae_upsample")
    assert main(["evaluate", "--variant", "vae_upsample", "--data", str(tiny_npz), "--store", str(store)]) == 2
    assert "not in" in capsys.readouterr().err


def test_shipped_evaluator_reaches_99_percent(real_mnist):
    from tests.conftest import ROOT

    if not (ROOT / "models_store" / NAME / "manifest.json").is_file():
        pytest.skip("no shipped evaluator in models_store/")
    ev, manifest, _ = load_evaluator(ROOT / "models_store")
    _, probs = ev.features_and_probs(real_mnist.x_test.astype(np.float32) / 255.0)
    accuracy = float((probs.argmax(1) == real_mnist.y_test).mean())
    assert accuracy >= 0.99 and accuracy == pytest.approx(manifest["test_accuracy"], abs=1e-4)


def test_init_stats_cover_every_variant_with_intervals(evaluated_store):
    assert main(["init-stats", "--inits", "3", "--samples", "16", "--store", str(evaluated_store)]) == 0
    stats = json.loads((evaluated_store / "init_stats.json").read_text())["models"]
    assert set(stats) == set(VARIANTS)
    for name, s in stats.items():
        cb, values = s["checkerboard_ratio"], np.asarray(s["checkerboard_ratio_values"], np.float64)
        assert s["inits"] == 3 == len(values) == cb["n"]
        half = 4.30265272974946 * values.std(ddof=1) / np.sqrt(3)  # Student's t, 97.5 %, 2 degrees of freedom (tables)
        assert cb["mean"] == pytest.approx(values.mean(), abs=1e-5)  # the listed values are rounded to 5 places
        assert (cb["low"], cb["high"]) == (
            pytest.approx(values.mean() - half, abs=1e-4),
            pytest.approx(values.mean() + half, abs=1e-4),
        ), (name, cb)
        assert (s["polyphase_cv"] is not None) == (VARIANTS[name].upsampling == "transpose")


def test_init_stats_refuses_a_single_init(evaluated_store, capsys):
    assert main(["init-stats", "--inits", "1", "--store", str(evaluated_store)]) == 2
    assert "--inits 1" in capsys.readouterr().err


def test_training_curves_every_epoch_and_on_the_pages(evaluated_store, tiny_data, tmp_path, monkeypatch):
    """The last epoch's curve values are the exported generator's, computed here from the documented curve latents;
    the curve's seconds come from a clock that advances 0.5 s per reading (one reading before and one after)."""
    from types import SimpleNamespace

    from app.api.pages import model_curves
    from app.views.charts import curve_chart
    from arena.readouts import training_curves
    from training.evaluation import measures as metrics
    from training.loop import epochs as runner
    from training.loop.config import profile_config
    from training.loop.epochs import CURVE_SAMPLES, train_variant

    variant = VARIANTS["vae_subpixel"]
    monkeypatch.setattr(runner, "time", SimpleNamespace(perf_counter=FakeClock(0.5)))
    out = train_variant(
        variant,
        profile_config("smoke", "vae"),
        tiny_data,
        tmp_path / "store",
        tmp_path / "runs",
        log=lambda _: None,
        curves_from=evaluated_store,
    )
    monkeypatch.undo()
    history = json.loads((out / "manifest.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2] and CURVE_SAMPLES == 2000
    assert [(h["seconds"], h["curve_seconds"]) for h in history] == [(0.5, 0.5), (0.5, 0.5)]
    evaluator, _, reference = load_evaluator(evaluated_store)
    samples = decode_by_hand(out, 4049, 2000, 2)
    assert history[1]["curve_frechet"] == pytest.approx(
        frechet_by_eigenvalues(evaluator.features(samples), reference["test_mu"], reference["test_sigma"]),
        rel=1e-5,
        abs=1e-4,
    )  # recorded to 4 places
    assert history[1]["curve_checkerboard_ratio"] == pytest.approx(
        metrics.checkerboard_index(samples) / float(reference["checkerboard_index"]), abs=2e-4
    )
    manifest = json.loads((out / "manifest.json").read_text())
    curves = model_curves("vae_subpixel", manifest)
    assert len(curves["charts"]) == 2 and not curves["partial"]
    drawn = [(r[1], r[2]) for r in curves["charts"][1].rows]  # (epoch, Fréchet distance), as the chart's table
    assert drawn == [(h["epoch"], pytest.approx(h["curve_frechet"], rel=1e-5)) for h in history]
    resumed = {**manifest, "history": [{k: v for k, v in history[0].items() if not k.startswith("curve_")}, history[1]]}
    assert (
        model_curves("vae_subpixel", resumed)["first_epoch"] == 2 and model_curves("vae_subpixel", resumed)["partial"]
    )
    assert model_curves("x", {"history": [{"epoch": 1, "loss": 1.0}]})["charts"] == []
    assert training_curves(manifest, "curve_frechet") == [
        (1, history[0]["curve_frechet"]),
        (2, history[1]["curve_frechet"]),
    ]
    assert curve_chart({}, "nothing") is None


def test_an_evaluator_below_its_accuracy_is_refused_and_nothing_is_installed(tmp_path, tiny_data):
    from training.evaluation.classifier import INDEPENDENT, EvaluatorError

    with pytest.raises(EvaluatorError, match="nothing installed"):
        train_evaluator(tiny_data, tmp_path, epochs=1, log=lambda _: None, name=INDEPENDENT, min_accuracy=0.9999)
    assert not (tmp_path / INDEPENDENT).exists() and not list(tmp_path.glob(".*staging*"))
