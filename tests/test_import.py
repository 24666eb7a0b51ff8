"""`deconv-arena import`: a researcher's own generator is checked, installed atomically, then served like ours."""

from __future__ import annotations

import re
import shutil

import keras
import numpy as np
import pytest

from arena.latents import balanced_labels, latents_from_seed, one_hot, with_labels
from arena.records import read_manifest, sha256_file, verify_files
from deconv_arena.cli import main
from tests.conftest import make_client, wait_ready


def _save(model, path):
    model.save(path)
    return path


def _generator(latent_dim=8, out=(28, 28, 1), activation="sigmoid"):
    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [
            keras.Input((latent_dim,)),
            keras.layers.Dense(int(np.prod(out)), activation=activation),
            keras.layers.Reshape(out),
        ]
    )


def _conditional(widths=(8, 10), out=(28, 28, 1)):
    """A two-input generator like the Keras conditional-GAN example's: an input per width (an int is a vector)."""
    keras.utils.set_random_seed(3)
    inputs = [keras.Input(w if isinstance(w, tuple) else (w,)) for w in widths]
    h = keras.layers.Concatenate()([keras.layers.Flatten()(x) if len(x.shape) > 2 else x for x in inputs])
    return keras.Model(
        inputs, keras.layers.Reshape(out)(keras.layers.Dense(int(np.prod(out)), activation="sigmoid")(h))
    )


@pytest.fixture()
def store(tiny_store, tmp_path):
    target = tmp_path / "store"
    shutil.copytree(tiny_store, target)
    return target


def _entries(store):
    return sorted(p.name for p in store.iterdir())


def test_import_installs_a_checked_generator_with_a_manifest(store, tmp_path):
    file = _save(_generator(), tmp_path / "mine.keras")
    assert (
        main(
            [
                "import",
                str(file),
                "--name",
                "my_gan",
                "--family",
                "gan",
                "--output",
                "sigmoid",
                "--notes",
                "PixelShuffle decoder",
                "--store",
                str(store),
            ]
        )
        == 0
    )
    manifest = read_manifest(store / "my_gan")
    verify_files(store / "my_gan", manifest)
    assert (
        manifest["provenance"] == "imported"
        and manifest["latent_dim"] == 8
        and manifest["family"] == "gan"
        and manifest["output"] == "sigmoid"
        and (manifest["classes"], manifest["input_dim"]) == (0, 8)
        and "conditioning" not in manifest
    )
    assert manifest["files"]["generator.keras"] == sha256_file(file) and manifest["params"]["total"] == 8 * 784 + 784
    assert manifest["layers"] and manifest["notes"] == "PixelShuffle decoder"
    with make_client(store, tmp_path / "db") as c:
        wait_ready(c)
        r = c.post("/generate", params={"model": "my_gan", "seed": 5, "n": 4})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        page = c.get("/")
        first = [re.search(rf"\b{n}\b", page.text) for n in ("gan_transpose", "my_gan", "vae_transpose")]
        assert all(first) and first[0].start() < first[1].start() < first[2].start()  # not cgan_…, cvae_…
        assert "PixelShuffle decoder" in c.get("/models/my_gan").text
        (mine,) = [m for m in c.get("/api/models").json() if m["name"] == "my_gan"]
        assert (mine["status"], mine["family"], mine["latent_dim"], mine["params"]) == (
            "ready",
            "gan",
            8,
            8 * 784 + 784,
        )
        installed = store / "my_gan"
        assert mine["version"] == sha256_file(installed / "generator.onnx")[:16] and mine["batch_shapes"]
        assert sha256_file(installed / "generator.keras") == sha256_file(file)  # the user's file, kept for download


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda p: _save(_generator(out=(14, 14, 1)), p), [], "expected (2, 28, 28, 1)"),
        (
            lambda p: _save(keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(1, 3, padding="same")]), p),
            [],
            "input shape (None, d)",
        ),
        (lambda p: (p.write_bytes(b"not a model"), p)[1], [], "could not be loaded as a Keras model"),
        (
            lambda p: (p.with_suffix(".h5").write_bytes(b"HDF"), p.with_suffix(".h5"))[1],
            [],
            "expected a Keras 3 model file",
        ),
        (lambda p: p.with_name("absent.keras"), [], "no such file"),
        (
            lambda p: _save(_conditional((10, 10)), p),
            [],
            "told apart by width; it takes [(None, 10), (None, 10)] (both 10 wide)",
        ),
        (
            lambda p: _save(_conditional((8, 5)), p),
            [],
            "told apart by width; it takes [(None, 8), (None, 5)] (neither 10 wide)",
        ),
        (
            lambda p: _save(_conditional((8, (28, 28, 1))), p),
            [],
            "must take a latent (None, d) and a one-hot label (None, 10); it takes [(None, 8), (None, 28, 28, 1)]",
        ),
        (lambda p: _save(_conditional(out=(14, 14, 1)), p), [], "(2 latents × 10 labels) gave output shape (20, 14"),
        (lambda p: _save(_generator(), p), ["--name", "gan_transpose"], "is taken (a variant of the table)"),
        (lambda p: _save(_generator(), p), ["--name", "Bad-Name"], "lower-case letters"),
    ],
    ids=[
        "wrong-output-shape",
        "not-a-latent-input",
        "not-keras",
        "wrong-suffix",
        "missing",
        "two-labels",
        "no-label",
        "label-not-a-vector",
        "conditional-wrong-output-shape",
        "taken",
        "bad-name",
    ],
)
def test_a_bad_import_says_why_in_one_line_and_writes_nothing(store, tmp_path, capsys, make, args, message):
    file = make(tmp_path / "x.keras")
    before = _entries(store)
    argv = ["import", str(file), "--name", "mine", "--family", "vae", "--output", "logits", "--store", str(store)]
    if args:
        argv[argv.index("--name") + 1] = args[1]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert _entries(store) == before


@pytest.mark.parametrize("widths", [(8, 10), (10, 8)], ids=["latent-first", "label-first"])
def test_a_conditional_generator_is_installed_taking_latent_and_one_hot_in_one_row(tmp_path, widths):
    store = tmp_path / "store"  # only the imported model: the service starts in seconds
    original = _conditional(widths)
    file = _save(original, tmp_path / "cond.keras")
    argv = ["import", str(file), "--name", "my_cgan", "--family", "cgan", "--output", "sigmoid", "--store", str(store)]
    assert main(argv) == 0
    manifest = read_manifest(store / "my_cgan")
    verify_files(store / "my_cgan", manifest)
    assert (manifest["latent_dim"], manifest["classes"], manifest["input_dim"]) == (8, 10, 18)
    assert "wrapped into one input row" in manifest["conditioning"] and "(None, 10)" in manifest["conditioning"]
    assert manifest["source_sha256"] == sha256_file(file) != manifest["files"]["generator.keras"]
    assert manifest["params"]["total"] == 18 * 784 + 784 and manifest["layers"]
    installed = keras.saving.load_model(store / "my_cgan" / "generator.keras", compile=False, safe_mode=True)
    assert installed.input_shape == (None, 18)
    latents, labels = latents_from_seed(7, 20, 8), balanced_labels(20)
    got = keras.ops.convert_to_numpy(installed(with_labels(latents, labels), training=False))
    two = [latents, one_hot(labels)] if widths[0] == 8 else [one_hot(labels), latents]
    want = keras.ops.convert_to_numpy(original(two, training=False))
    assert got.shape == (20, 28, 28, 1) and np.array_equal(got, want)
    same_latent = with_labels(np.repeat(latents[:1], 2, axis=0), [0, 1])
    assert not np.array_equal(*keras.ops.convert_to_numpy(installed(same_latent)))  # the label reaches the model
    with make_client(store, tmp_path / "db") as c:
        wait_ready(c)
        r = c.post("/generate", params={"model": "my_cgan", "seed": 5, "n": 4, "label": 3})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        (mine,) = [m for m in c.get("/api/models").json() if m["name"] == "my_cgan"]
        assert (mine["status"], mine["classes"], mine["latent_dim"]) == ("ready", 10, 8)


def test_non_finite_outputs_are_refused(store, tmp_path, capsys):
    model = _generator(activation="linear")
    model.layers[0].kernel.assign(np.full(model.layers[0].kernel.shape, np.inf, np.float32))
    file = _save(model, tmp_path / "nan.keras")
    assert (
        main(["import", str(file), "--name", "nan_gen", "--family", "gan", "--output", "tanh", "--store", str(store)])
        == 2
    )
    assert "non-finite" in capsys.readouterr().err and not (store / "nan_gen").exists()


def test_an_existing_folder_is_a_taken_name(store, tmp_path, capsys):
    file = _save(_generator(), tmp_path / "m.keras")
    assert (
        main(["import", str(file), "--name", "dup", "--family", "gan", "--output", "sigmoid", "--store", str(store)])
        == 0
    )
    assert (
        main(["import", str(file), "--name", "dup", "--family", "gan", "--output", "sigmoid", "--store", str(store)])
        == 2
    )
    assert "is taken" in capsys.readouterr().err
