"""The ONNX export the service runs: checked against the Keras model, refused when it disagrees, current only while
it was made from the .keras file beside it, and reading its unchanged weights from that file."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from arena.latents import latents_from_seed
from arena.manifest import SERVED, read_manifest, sha256_file


def test_the_export_matches_keras_and_reads_its_weights_from_the_keras_file(tiny_store):
    import keras

    import training.layers  # noqa: F401
    from training.onnx_export import TOLERANCE, run_onnx

    for name in ("gan_transpose", "vae_upsample"):
        folder = tiny_store / name
        manifest = read_manifest(folder)
        z = latents_from_seed(99, 16, manifest["latent_dim"])
        keras_out = np.asarray(keras.saving.load_model(folder / "generator.keras", compile=False)(z, training=False))
        assert np.abs(run_onnx(folder / SERVED, z) - keras_out).max() <= TOLERANCE
        record = manifest["onnx"]
        assert record["check"]["max_abs_diff"] <= TOLERANCE and record["generator_keras_sha256"] == sha256_file(
            folder / "generator.keras"
        )
    # the large dense kernel lives once, in the .keras file: the ONNX file is smaller than the weights it uses
    gan = read_manifest(tiny_store / "gan_transpose")["onnx"]
    assert gan["shared_weight_bytes"] > 0 and gan["weights_read_from"] == "generator.keras"


def test_an_export_that_disagrees_with_keras_is_refused_and_leaves_nothing(tiny_store, tmp_path, monkeypatch):
    from training import onnx_export

    folder = tmp_path / "vae_upsample"
    shutil.copytree(tiny_store / "vae_upsample", folder)
    (folder / SERVED).unlink()
    real = onnx_export.run_onnx
    monkeypatch.setattr(onnx_export, "run_onnx", lambda path, z: real(path, z) + 10 * onnx_export.TOLERANCE)
    with pytest.raises(onnx_export.ExportError, match="differ from Keras"):
        onnx_export.export_onnx(folder)
    assert not (folder / SERVED).exists()


def test_an_export_is_current_only_while_made_from_the_keras_file_beside_it(tiny_store, tmp_path):
    from training.onnx_export import export_installed, is_current

    folder = tmp_path / "vae_upsample"
    shutil.copytree(tiny_store / "vae_upsample", folder)
    assert is_current(folder)
    (folder / SERVED).write_bytes(b"not the export")
    assert not is_current(folder)
    record = export_installed(folder)
    assert is_current(folder) and read_manifest(folder)["files"][SERVED] == sha256_file(folder / SERVED)
    assert record["check"]["rows"] == 64
