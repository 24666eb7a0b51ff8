"""`deconv-arena import FILE.onnx`: a generator made in another framework — here ONNX graphs built node by node with
the onnx helper API, laid out as PyTorch exports them — is checked, installed, evaluated, served, shown with its
spectrum and rated like the trained ones."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from onnx import TensorProto
from PIL import Image

from arena.latents import latents_from_seed, one_hot, with_labels
from arena.records import read_manifest, sha256_file, verify_files
from deconv_arena.cli import main
from tests.conftest import make_client, wait_ready
from tests.onnx_generators import generator
from training.interchange.onnx_import import session


def install(tmp_path, store, name="my_gan", family="gan", output="tanh", **kw):
    file = generator(tmp_path / f"{name}.onnx", output=output, **kw)
    argv = ["import", str(file), "--name", name, "--family", family, "--output", output, "--store", str(store)]
    return main(argv), file


def original_images(file, rows, d, conditional=False, label_first=False):
    """What the user's graph gives for rows of latent ⊕ label, fed in its own input order, as (n, 28, 28, 1)."""
    run = session(file)
    if not conditional:
        return run([rows]).reshape(-1, 28, 28, 1)
    latent, label = rows[:, :d], rows[:, d:]
    return run([label, latent] if label_first else [latent, label]).reshape(-1, 28, 28, 1)


@pytest.mark.parametrize(
    ("kw", "output", "normalised"),
    [
        ({}, "tanh", ["output NCHW reshaped to (batch, 28, 28, 1)"]),
        ({"layout": "flat"}, "sigmoid", ["output flat reshaped to (batch, 28, 28, 1)"]),
        ({"layout": "NHWC"}, "logits", []),
    ],
    ids=["pytorch-nchw-tanh", "flat-sigmoid", "nhwc-logits"],
)
def test_an_onnx_generator_is_installed_normalised_and_served_with_its_own_outputs(tmp_path, kw, output, normalised):
    store = tmp_path / "store"
    code, file = install(tmp_path, store, output=output, **kw)
    assert code == 0
    folder = store / "my_gan"
    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    assert set(manifest["files"]) == {"generator.onnx", "fixed_latents.npy"}  # no Keras file: the graph is the model
    assert (manifest["source_format"], manifest["source_sha256"], manifest["output"]) == (
        "onnx",
        sha256_file(file),
        output,
    )
    assert (manifest["latent_dim"], manifest["classes"], manifest["input_dim"]) == (16, 0, 16)
    record = manifest["onnx"]["imported"]
    assert record["normalised"] == normalised and record["determinism"]["repeat_identical"]
    assert manifest["params"]["total"] == 16 * 392 + 392 + 8 * 8 * 25 + 8 * 25  # Gemm, bias, two ConvTranspose
    assert [r["class"] for r in manifest["layers"] if r["class"] == "ConvTranspose"] == ["ConvTranspose"] * 2
    rows = latents_from_seed(5, 4, 16)
    np.testing.assert_array_equal(session(folder / "generator.onnx")([rows]), original_images(file, rows, 16))
    with make_client(store, tmp_path / "db") as c:
        wait_ready(c)
        r = c.post("/generate", params={"model": "my_gan", "seed": 5, "n": 4, "format": "json"})
        assert r.status_code == 200
        (mine,) = [m for m in c.get("/api/models").json() if m["name"] == "my_gan"]
        assert (mine["status"], mine["family"], mine["params"]) == ("ready", "gan", manifest["params"]["total"])
        page = c.get("/models/my_gan").text
        assert "ONNX, made by onnx-helper" in page and sha256_file(file) in page


@pytest.mark.parametrize("label_first", [False, True], ids=["latent-first", "label-first"])
def test_a_conditional_onnx_generator_takes_latent_and_one_hot_in_one_row(tmp_path, label_first):
    store = tmp_path / "store"
    code, file = install(tmp_path, store, "my_cgan", "cgan", conditional=True, label_first=label_first)
    assert code == 0
    manifest = read_manifest(store / "my_cgan")
    assert (manifest["latent_dim"], manifest["classes"], manifest["input_dim"]) == (16, 10, 26)
    assert manifest["onnx"]["imported"]["normalised"][0].startswith("one input row, latent ⊕ one-hot label")
    rows = with_labels(latents_from_seed(7, 20, 16), np.arange(20) % 10)
    installed = session(store / "my_cgan" / "generator.onnx")([rows])
    np.testing.assert_array_equal(installed, original_images(file, rows, 16, True, label_first))
    same_latent = with_labels(np.repeat(rows[:1, :16], 2, axis=0), [0, 1])
    assert not np.array_equal(*session(store / "my_cgan" / "generator.onnx")([same_latent]))  # the label matters
    assert np.array_equal(rows[:, 16:], one_hot(np.arange(20) % 10))
    with make_client(store, tmp_path / "db") as c:
        wait_ready(c)
        r = c.post("/generate", params={"model": "my_cgan", "seed": 5, "n": 4, "label": 3})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"


@pytest.mark.parametrize(
    ("kw", "output", "message"),
    [
        ({"noise": True}, "tanh", "random at inference"),
        ({"batch_dependent": True}, "tanh", "depends on the batch it is in"),
        ({"fixed_batch": 1}, "tanh", "input 'z_in' has a fixed batch size 1; export it with a free batch axis"),
        ({"output": "logits"}, "tanh", "--output tanh promises values in [-1, 1], but standard-normal latents gave"),
        ({"layout": "wrong"}, "tanh", "gave output shape (2, 1, 14, 56); expected one 28×28 image per row"),
        ({"latent_type": TensorProto.INT64}, "tanh", "input 'z_in' is int64; the generator must take float32"),
        ({"extra_input": True}, "tanh", "told apart by width"),
        ({"conditional": True, "extra_input": True}, "tanh", "it takes 3 inputs: z_in"),
        ({"conditional": True, "latent_dim": 10}, "tanh", "(both 10 wide)"),
        ({"conditional": True, "label_width": 5}, "tanh", "(neither 10 wide)"),
    ],
    ids=[
        "random",
        "batch-dependent",
        "fixed-batch",
        "range",
        "shape",
        "dtype",
        "second-input-not-a-label",
        "three-inputs",
        "two-labels",
        "no-label",
    ],
)
def test_a_bad_onnx_generator_says_why_in_one_line_and_writes_nothing(tmp_path, capsys, kw, output, message):
    store = tmp_path / "store"
    store.mkdir()
    kw = dict(kw)
    made_output = kw.pop("output", output)
    file = generator(tmp_path / "bad.onnx", output=made_output, **kw)
    argv = ["import", str(file), "--name", "mine", "--family", "gan", "--output", output, "--store", str(store)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert list(store.iterdir()) == []  # no folder, no staging left behind


def test_a_file_that_is_not_onnx_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "x.onnx").write_bytes(b"not a graph")
    argv = ["import", str(tmp_path / "x.onnx"), "--name", "mine", "--family", "gan", "--output", "tanh"]
    assert main([*argv, "--store", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not a valid ONNX model" in err and len(err.splitlines()) == 1
    assert main([*argv[:1], str(tmp_path / "absent.onnx"), *argv[2:], "--store", str(tmp_path / "s")]) == 2
    assert "absent.onnx: no such file" in capsys.readouterr().err


def corner_colour(png: bytes) -> tuple:
    return tuple(np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))[0, 0])


@pytest.mark.slow
def test_onnx_generators_are_evaluated_served_shown_with_their_spectrum_and_rated(tmp_path, tiny_data, tiny_npz):
    """Two generators from another framework, one with a planted (−1)^(i+j) checkerboard: evaluation finds the
    checkerboard at the Nyquist corner of the spectrum and in the transposed kernels read from the graph; the pages
    draw it; raters are asked to compare the two."""
    from app.views.spectrum_pictures import VIRIDIS
    from training.evaluation.classifier import train_evaluator

    store = tmp_path / "store"
    assert install(tmp_path, store, "onnx_clean", seed=1)[0] == 0
    assert install(tmp_path, store, "onnx_planted", seed=1, planted=1.5)[0] == 0
    train_evaluator(tiny_data, store, epochs=1, log=lambda _: None)
    for name in ("onnx_clean", "onnx_planted"):
        argv = ["evaluate", "--variant", name, "--samples", "64", "--data", str(tiny_npz), "--store", str(store)]
        assert main(argv) == 0
    clean, planted = (json.loads((store / n / "metrics.json").read_text()) for n in ("onnx_clean", "onnx_planted"))
    assert planted["generator_sha256"] == read_manifest(store / "onnx_planted")["files"]["generator.onnx"]
    power = np.array(planted["spectrum"]["log10_power"]["model"], dtype=float)
    clean_power = np.array(clean["spectrum"]["log10_power"]["model"], dtype=float)
    assert np.nanargmax(power) == 0 and power[0, 0] > clean_power[0, 0] + 0.3  # the corner: (N/2, N/2)
    assert planted["artefact"]["nyquist_prominence"] > clean["artefact"]["nyquist_prominence"]
    kernels = planted["checkerboard"]["transposed_kernels"]
    assert [k["layer"] for k in kernels] == ["up1", "up2"] and all(k["kernel_size"] == [5, 5] for k in kernels)
    assert planted["cost"]["bytes_on_disk"] == (store / "onnx_planted" / "generator.onnx").stat().st_size
    with make_client(store, tmp_path / "db", secret_key="k" * 32, gold_rate=0.0, four_rate=0.0, repeat_rate=0.0) as c:
        wait_ready(c)
        page = c.get("/models/onnx_planted").text
        assert "/models/onnx_planted/spectrum.png" in page and "azimuthal average" in page
        assert "Nyquist" in page and "10,000 MNIST test digits" not in page  # the tiny evaluator's 64 test digits
        compare = c.get("/").text
        assert "/models/onnx_clean/spectrum.png?of=difference" in compare
        r = c.get("/models/onnx_planted/spectrum.png")
        assert r.status_code == 200 and corner_colour(r.content) == VIRIDIS[-1]  # the family's hottest bin
        assert corner_colour(c.get("/models/onnx_clean/spectrum.png").content) != VIRIDIS[-1]
        bad = c.get("/models/onnx_clean/spectrum.png", params={"of": "fake"})
        assert bad.status_code == 400 and "accepted: model, real, difference" in bad.json()["detail"]
        assert (
            c.post("/rate/start", data={"consent": "yes", "display_name": "r"}, follow_redirects=False).status_code
            == 303
        )
        task = c.post("/api/rate/tasks").json()
        vote = {"task_id": task["task_id"], "overall": "A", "legibility": "A", "noise": "B"}
        assert c.post("/api/rate/votes", json=vote).status_code == 201
        (stored,) = c.app.state.ratings.store.votes()
        assert sorted(stored.models) == ["onnx_clean", "onnx_planted"]


def test_export_leaves_an_onnx_import_as_it_is(tmp_path, capsys):
    store = tmp_path / "store"
    assert install(tmp_path, store)[0] == 0
    before = sha256_file(store / "my_gan" / "generator.onnx")
    assert main(["export", "--force", "--store", str(store)]) == 0
    assert "imported from ONNX" in capsys.readouterr().out
    assert sha256_file(store / "my_gan" / "generator.onnx") == before
