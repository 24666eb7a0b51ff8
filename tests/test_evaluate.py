"""The evaluation job end to end on tiny models, its files, and its errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from deconv_arena.cli import main
from arena.variants import VARIANTS
from training.evaluator import NAME, load_evaluator, train_evaluator


@pytest.fixture(scope="module")
def evaluated_store(tiny_store, tiny_data, tiny_npz, tmp_path_factory):
    store = tmp_path_factory.mktemp("eval") / "store"
    shutil.copytree(tiny_store, store)
    train_evaluator(tiny_data, store, epochs=1, log=lambda _: None)
    assert main(["evaluate", "--all", "--samples", "64", "--data", str(tiny_npz), "--store", str(store)]) == 0
    return store


def test_metrics_files_are_complete(evaluated_store):
    for name, variant in VARIANTS.items():
        m = json.loads((evaluated_store / name / "metrics.json").read_text())
        assert m["samples"] == 64 and m["seed"] and m["evaluator_sha256"]
        assert m["frechet"]["distance"] >= 0 and m["frechet"]["noise_floor"] >= 0
        assert set(m["prdc"]) >= {"precision", "recall", "density", "coverage"}
        assert 0 <= m["legibility"]["mean_top_probability"] <= 1
        assert m["checkerboard"]["nyquist_ratio"] > 0 and m["cost"]["ms_per_image_batch64"] > 0
        assert (evaluated_store / name / "report" / "radial_spectrum.png").is_file()
        if name.startswith("vae"):
            assert (evaluated_store / name / "report" / "reconstructions.png").is_file() and m["cost"]["test_elbo"] < 0
        kernels = m["checkerboard"]["transposed_kernels"]
        assert len(kernels) == (2 if variant.upsampling == "transpose" else 0), name
    summary = json.loads((evaluated_store / "summary.json").read_text())
    assert set(summary["models"]) == set(VARIANTS)
    assert (evaluated_store / "comparison.png").is_file()


def test_evaluating_one_model_leaves_the_others_alone(evaluated_store, tiny_npz):
    before = (evaluated_store / "gan_transpose" / "metrics.json").read_bytes()
    assert main(["evaluate", "--variant", "vae_upsample", "--samples", "32", "--data", str(tiny_npz), "--store", str(evaluated_store)]) == 0
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
        assert "radial_spectrum.png" in c.get("/models/gan_upsample").text


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
        cb = s["checkerboard_ratio"]
        assert s["inits"] == 3 == len(s["checkerboard_ratio_values"]) and cb["low"] <= cb["mean"] <= cb["high"]
        assert (s["polyphase_cv"] is not None) == (VARIANTS[name].upsampling == "transpose")


def test_init_stats_refuses_a_single_init(evaluated_store, capsys):
    assert main(["init-stats", "--inits", "1", "--store", str(evaluated_store)]) == 2
    assert "--inits 1" in capsys.readouterr().err



def test_training_curves_every_epoch_and_on_the_pages(evaluated_store, tiny_data, tmp_path):
    from app.api.pages import model_curves
    from arena.figures import curve_svg, training_curves
    from training.config import profile_config
    from training.runner import CURVE_SAMPLES, train_variant

    variant = VARIANTS["vae_subpixel"]
    out = train_variant(variant, profile_config("smoke", "vae"), tiny_data, tmp_path / "store", tmp_path / "runs", log=lambda _: None, curves_from=evaluated_store)
    history = json.loads((out / "manifest.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2] and CURVE_SAMPLES >= 2000
    for h in history:
        assert h["curve_frechet"] > 0 and h["curve_checkerboard_ratio"] > 0 and h["curve_seconds"] > 0
    manifest = json.loads((out / "manifest.json").read_text())
    curves = model_curves("vae_subpixel", manifest)
    assert len(curves["charts"]) == 2 and all("<polyline" in c for c in curves["charts"]) and not curves["partial"]
    resumed = {**manifest, "history": [{k: v for k, v in history[0].items() if not k.startswith("curve_")}, history[1]]}
    assert model_curves("vae_subpixel", resumed)["first_epoch"] == 2 and model_curves("vae_subpixel", resumed)["partial"]
    assert model_curves("x", {"history": [{"epoch": 1, "loss": 1.0}]})["charts"] == []
    assert training_curves(manifest, "curve_frechet") == [(1, history[0]["curve_frechet"]), (2, history[1]["curve_frechet"])]
    assert curve_svg({}, "nothing") == ""
