"""`deconv-arena import`: a researcher's own generator is checked, installed atomically, then served like ours."""

from __future__ import annotations

import shutil

import keras
import numpy as np
import pytest

from arena.manifest import read_manifest, sha256_file, verify_files
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
    )
    assert manifest["files"]["generator.keras"] == sha256_file(file) and manifest["params"]["total"] == 8 * 784 + 784
    assert manifest["layers"] and manifest["notes"] == "PixelShuffle decoder"
    with make_client(store, tmp_path / "db") as c:
        wait_ready(c)
        r = c.post("/generate", params={"model": "my_gan", "seed": 5, "n": 4})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        page = c.get("/")
        assert "my_gan" in page.text and page.text.index("gan_transpose") < page.text.index("my_gan") < page.text.index(
            "vae_transpose"
        )
        assert "PixelShuffle decoder" in c.get("/models/my_gan").text
        (mine,) = [m for m in c.get("/api/models").json() if m["name"] == "my_gan"]
        assert (mine["status"], mine["family"], mine["latent_dim"], mine["params"]) == (
            "ready",
            "gan",
            8,
            8 * 784 + 784,
        )
        assert mine["version"] == sha256_file(file)[:16] and mine["batch_shapes"]


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
        (lambda p: _save(_generator(), p), ["--name", "gan_transpose"], "is taken (a variant of the table)"),
        (lambda p: _save(_generator(), p), ["--name", "Bad-Name"], "lower-case letters"),
    ],
    ids=["wrong-output-shape", "not-a-latent-input", "not-keras", "wrong-suffix", "missing", "taken", "bad-name"],
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
