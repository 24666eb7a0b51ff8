"""Our own MNIST feature network: a LeNet-style classifier whose penultimate layer gives the features."""

from __future__ import annotations

import functools
import io
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from arena import spectra
from arena.records import (
    MANIFEST,
    ManifestError,
    install_dir,
    read_manifest,
    sha256_file,
    staging_dir,
    update_manifest,
    verify_files,
    write_bytes_atomic,
    write_manifest,
)
from training.evaluation import measures as metrics
from training.loop import provenance
from training.loop.data import Mnist

NAME = "_evaluator"
# A second classifier, trained apart with another architecture and seed: the study's primary measured in a feature
# space the project's own classifier did not shape (`frechet_independent`, a declared secondary of the plan).
INDEPENDENT = "_evaluator_independent"
KINDS = {NAME: ("lenet", 7), INDEPENDENT: ("allconv", 20261202)}  # folder: (architecture, seed)
MODEL_FILE = "classifier.keras"
REFERENCE = "reference.npz"
FEATURE_LAYER = "features"


class EvaluatorError(Exception):
    pass


def build_classifier(architecture: str = "lenet") -> keras.Model:
    """Functional, so the penultimate layer's output can be read directly. "lenet": the project's evaluator;
    "allconv": the independent one (pairs of 3×3 convolutions, 64 features, another seed)."""
    image = keras.Input((28, 28, 1), name="image")
    if architecture == "allconv":
        x = layers.Conv2D(32, 3, activation="relu", padding="same")(image)
        x = layers.Conv2D(32, 3, activation="relu", padding="same")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
        x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(0.25)(layers.Flatten()(x))
        features = layers.Dense(64, activation="relu", name=FEATURE_LAYER)(x)
        features = layers.Dropout(0.25)(features)
        return keras.Model(image, layers.Dense(10, name="logits")(features), name="allconv_evaluator")
    x = layers.Conv2D(32, 5, activation="relu", padding="same")(image)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(64, 5, activation="relu", padding="same")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    features = layers.Dense(128, activation="relu", name=FEATURE_LAYER)(x)
    logits = layers.Dense(10, name="logits")(layers.Dropout(0.4)(features))
    return keras.Model(image, logits, name="lenet_evaluator")


def unit_images(x_uint8: np.ndarray) -> np.ndarray:
    return (x_uint8.astype(np.float32) / 255.0)[..., None]


def train_evaluator(
    data: Mnist,
    store: Path,
    epochs: int = 4,
    seed: int | None = None,
    log=print,
    name: str = NAME,
    min_accuracy: float | None = None,
) -> dict[str, Any]:
    """Train, cache the real-data reference statistics, install atomically; below `min_accuracy` on the test set,
    raise EvaluatorError and install nothing."""
    architecture, default_seed = KINDS[name]
    seed = default_seed if seed is None else seed
    model, accuracy, seconds = _fit(architecture, seed, data, epochs)
    log(f"evaluator: test accuracy {accuracy:.4f} after {epochs} epochs ({seconds:.0f} s)")
    if min_accuracy is not None and accuracy < min_accuracy:
        raise EvaluatorError(
            f"evaluator reached only {accuracy:.4f} test accuracy (< {min_accuracy}); nothing installed; train longer "
            "with --epochs"
        )
    staging = staging_dir(store, name)
    try:
        model.save(staging / MODEL_FILE)
        reference = reference_statistics(Evaluator(model), data)
        np.savez(staging / REFERENCE, **reference)
        manifest = {
            "name": name,
            "family": "classifier",
            "architecture": architecture,
            "upsampling": None,
            "latent_dim": None,
            "output": "logits",
            "layers": provenance.layer_table(model),
            "params": provenance.param_counts(model),
            "config": {"epochs": epochs, "batch_size": 128, "optimizer": "Adam 1e-3", "seed": seed},
            "test_accuracy": float(accuracy),
            "train_seconds": round(seconds, 1),
            "noise_floor_frechet": float(reference["noise_floor_frechet"]),
            "dataset": {"source": data.source, "sha256": data.checksums()},
            "versions": provenance.versions(),
            "hardware": provenance.hardware(),
            "git_commit": provenance.git_commit(),
            "created_at": provenance.now_iso(),
        }
        manifest["files"] = {MODEL_FILE: sha256_file(staging / MODEL_FILE), REFERENCE: sha256_file(staging / REFERENCE)}
        write_manifest(staging, manifest)
        install_dir(staging, Path(store) / name)
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _fit(architecture: str, seed: int, data: Mnist, epochs: int) -> tuple[keras.Model, float, float]:
    """(the trained classifier, its test accuracy, seconds it trained)."""
    keras.utils.set_random_seed(seed)
    model = build_classifier(architecture)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x, xt = unit_images(data.x_train), unit_images(data.x_test)
    t0 = time.perf_counter()
    model.fit(x, data.y_train.astype(np.int64), batch_size=128, epochs=epochs, verbose=2, shuffle=True)
    seconds = time.perf_counter() - t0
    _, accuracy = model.evaluate(xt, data.y_test.astype(np.int64), batch_size=1000, verbose=0)
    return model, accuracy, seconds


def reference_statistics(ev: "Evaluator", data: Mnist, n: int = 10000) -> dict[str, np.ndarray]:
    """Real-data figures every evaluation compares against, computed once."""
    test = data.x_test[:n].astype(np.float32) / 255.0
    train = data.x_train[:n].astype(np.float32) / 255.0
    f_test, f_train = ev.features(test), ev.features(train)
    mu, sigma = metrics.gaussian_stats(f_test)
    freqs, spectrum = metrics.radial_spectrum(test)
    return {
        "test_mu": mu,
        "test_sigma": sigma,
        "noise_floor_frechet": np.array(metrics.frechet_of(f_train, f_test)),
        "checkerboard_index": np.array(metrics.checkerboard_index(test)),
        "period4_index": np.array(metrics.period4_index(test)),
        "nyquist_prominence": np.array(metrics.spectral_prominence(test, 2)),
        "period4_prominence": np.array(metrics.spectral_prominence(test, 4)),
        "radial_freqs": freqs,
        "radial_spectrum": spectrum,
        **spectral_reference(test),
    }


def spectral_reference(test: np.ndarray) -> dict[str, np.ndarray]:
    """The real digits' mean 2-D power spectrum (arena/spectra.py), which the spectral pictures are drawn beside."""
    return {"mean_spectrum": spectra.mean_spectrum(test), "mean_spectrum_samples": np.array(len(test))}


def extend_reference(store: Path, data: Mnist, n: int = 10000, name: str = NAME) -> list[str]:
    """Add the reference figures an evaluator installed before them lacks (they need only the test digits, not the
    classifier), rewriting reference.npz and its checksum atomically; returns the keys added (none: nothing written)."""
    folder = Path(store) / name
    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    with np.load(folder / REFERENCE) as f:
        reference = {k: f[k] for k in f.files}
    test = data.x_test[:n].astype(np.float32) / 255.0
    new = {k: v for k, v in spectral_reference(test).items() if k not in reference}
    if not new:
        return []
    buffer = io.BytesIO()
    np.savez(buffer, **reference, **new)
    write_bytes_atomic(folder / REFERENCE, buffer.getvalue())
    note = f"{', '.join(new)} of the {n:,} test digits added on {provenance.now_iso()[:10]}"
    changes = {
        "files": {**manifest["files"], REFERENCE: sha256_file(folder / REFERENCE)},
        "reference_added": "; ".join(x for x in (manifest.get("reference_added"), note) if x),
    }
    update_manifest(folder, changes)
    return list(new)


class Evaluator:
    def __init__(self, model: keras.Model):
        self.model = model
        self.feature_model = keras.Model(model.inputs, [model.get_layer(FEATURE_LAYER).output, model.output])

    def _run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(images, np.float32).reshape(-1, 28, 28, 1)
        feats, logits = self.feature_model.predict(x, batch_size=1000, verbose=0)
        return feats, logits

    def features(self, images: np.ndarray) -> np.ndarray:
        return self._run(images)[0]

    def features_and_probs(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feats, logits = self._run(images)
        e = np.exp(logits - logits.max(1, keepdims=True))
        return feats, e / e.sum(1, keepdims=True)


def load_evaluator(store: Path, name: str = NAME) -> tuple[Evaluator, dict[str, Any], dict[str, np.ndarray]]:
    folder = Path(store) / name
    if not (folder / MANIFEST).is_file():
        raise EvaluatorError(f"no evaluator in {folder}; run `deconv-arena train-evaluator` first")
    try:
        manifest = read_manifest(folder)
        verify_files(folder, manifest)
    except ManifestError as e:
        raise EvaluatorError(
            f"evaluator in {folder} is damaged ({e}); run `deconv-arena train-evaluator` again"
        ) from None
    model = keras.saving.load_model(folder / MODEL_FILE, compile=False)
    with np.load(folder / REFERENCE) as f:
        reference = {k: f[k] for k in f.files}
    return Evaluator(model), manifest, reference


def load_evaluator_once(store: Path, name: str = NAME) -> tuple[Evaluator, dict[str, Any], dict[str, np.ndarray]]:
    """`load_evaluator`, loaded once per process for each evaluator folder as it is on disk (a retrained one, with a
    new manifest, is loaded again): for loops that score many runs with the same evaluator."""
    folder = (Path(store) / name).resolve()
    stamp = (folder / MANIFEST).stat().st_mtime_ns if (folder / MANIFEST).is_file() else None
    return _load_cached(str(folder.parent), name, stamp)


@functools.lru_cache(maxsize=4)
def _load_cached(store: str, name: str, stamp: int | None):
    return load_evaluator(Path(store), name)
