"""`deconv-arena import`: bring your own generator. The file is checked (loads, takes one latent vector — or a latent
and a one-hot label: a conditional generator — gives one 28×28×1 image per example, finite) and installed with a
manifest into the models store, atomically; after a restart it is served, evaluated and rated like the trained ones.

The project feeds every generator one input row per example, so a two-input conditional generator is installed
wrapped: its input is one row, the latent followed by the one-hot label (as `arena.latents.with_labels` makes it),
which the wrapper slices back into the original's two inputs."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from arena.latents import CLASSES, class_grid, latents_from_seed
from arena.records import GENERATOR, SERVED, install_dir, sha256_file, staging_dir, write_manifest
from arena.variants import VARIANTS

NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
PROGRESS_SEED = 2023
CONDITIONAL = f"a latent (None, d) and a one-hot label (None, {CLASSES})"  # what a two-input generator takes


class GeneratorRefused(Exception):
    """One line naming what is wrong with the file or the arguments."""


@dataclass(frozen=True)
class Checked:
    """A file that passed every check: its model, and the one-input generator the store will hold."""

    source: Any  # the model as the file holds it
    generator: Any  # one input row per example: `source` itself, or its conditional wrapper
    latent_dim: int
    input_shapes: tuple  # of `source`, in its order
    label_index: int | None = None  # which input of `source` is the one-hot label; None: unconditional

    @property
    def classes(self) -> int:
        return 0 if self.label_index is None else CLASSES

    def probe_rows(self) -> np.ndarray:
        """The rows the checks run: two latents, under every label when conditional (a class grid)."""
        latents = latents_from_seed(0, 2, self.latent_dim)
        return class_grid(latents, self.classes)[0] if self.classes else latents


def check_name(name: str, store: Path) -> None:
    if not NAME.match(name):
        raise GeneratorRefused(f"--name {name!r}: use 1–48 lower-case letters, digits and _, starting with a letter")
    if name in VARIANTS or (Path(store) / name).exists():
        raise GeneratorRefused(
            f"--name {name!r} is taken "
            f"({'a variant of the table' if name in VARIANTS else f'{Path(store) / name} exists'}); choose another name"
        )


def _load(file: Path):
    import keras

    import training.families.layers  # noqa: F401  (generators may use our DepthToSpace)

    if not file.is_file():
        raise GeneratorRefused(f"{file}: no such file")
    if file.suffix != ".keras":
        raise GeneratorRefused(f"{file}: expected a Keras 3 model file (.keras, from model.save('x.keras'))")
    try:
        return keras.saving.load_model(file, compile=False, safe_mode=True)
    except Exception as e:  # a damaged or foreign file raises anything
        raise GeneratorRefused(
            f"{file} could not be loaded as a Keras model ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:160] if str(e) else ''})"
        ) from None


def _input_shapes(model) -> list[tuple] | None:
    try:
        return [tuple(t.shape) for t in model.inputs]
    except (AttributeError, TypeError):  # a subclassed model declares no inputs
        return None


def _is_vector(shape: tuple) -> bool:
    return len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0


def _label_index(file: Path, shapes: list[tuple]) -> int:
    """Which of a two-input generator's inputs is the one-hot label: the one CLASSES wide."""
    if not all(_is_vector(s) for s in shapes):
        raise GeneratorRefused(f"{file}: a two-input generator must take {CONDITIONAL}; it takes {shapes}")
    labels = [i for i, s in enumerate(shapes) if s[1] == CLASSES]
    if len(labels) != 1:
        raise GeneratorRefused(
            f"{file}: a two-input generator must take {CONDITIONAL}, told apart by width; "
            f"it takes {shapes} ({'both' if labels else 'neither'} {CLASSES} wide)"
        )
    return labels[0]


def split_row(model, rows, latent_dim: int, label_index: int):
    """`model`'s two inputs from rows of latent ⊕ one-hot label: NumPy arrays, or tensors of a functional graph."""
    import keras

    latent, label = rows[:, :latent_dim], rows[:, latent_dim:]
    return keras.tree.pack_sequence_as(model.input, [label, latent] if label_index == 0 else [latent, label])


def one_row(model, latent_dim: int, label_index: int):
    """A conditional `model` (a latent input and a one-hot label input) as a model of one row per example.

    The slices are Keras operations recorded in the functional graph (GetItem nodes), not a Lambda layer, so the
    wrapper saves and loads with safe_mode=True; it runs the very same model, so its outputs are the original's."""
    import keras

    row = keras.Input((latent_dim + CLASSES,), name="latent_and_label")
    return keras.Model(row, model(split_row(model, row, latent_dim, label_index)), name="conditional_as_one_row")


def load_checked(file: Path) -> Checked:
    """The file's model and the one-input generator to install, if it passes every check; GeneratorRefused otherwise."""
    import keras

    file = Path(file)
    model = _load(file)
    shapes = _input_shapes(model)
    if shapes and len(shapes) == 2:
        label = _label_index(file, shapes)
        d = shapes[1 - label][1]
        checked = Checked(model, one_row(model, d, label), d, tuple(shapes), label)
    elif shapes and len(shapes) == 1 and _is_vector(shapes[0]):
        checked = Checked(model, model, shapes[0][1], tuple(shapes))
    else:
        raise GeneratorRefused(
            f"{file}: the generator must take one latent vector per example, input shape (None, d), or {CONDITIONAL}; "
            f"it takes {shapes[0] if shapes and len(shapes) == 1 else shapes}"
        )
    rows = checked.probe_rows()
    out = np.asarray(keras.ops.convert_to_numpy(checked.generator(rows, training=False)))
    asked = f"{len(rows)} input rows (2 latents × {CLASSES} labels)" if checked.classes else "two latent vectors"
    if out.shape != (len(rows), 28, 28, 1):
        raise GeneratorRefused(
            f"{file}: {asked} gave output shape {out.shape}; expected {(len(rows), 28, 28, 1)}: one 28×28×1 image each"
        )
    if not np.all(np.isfinite(out)):
        raise GeneratorRefused(
            f"{file}: the output has non-finite values (NaN or infinity) for standard-normal latents"
        )
    return checked


def _install_generator(checked: Checked, file: Path, target: Path) -> None:
    """The file itself; for a conditional generator its saved wrapper, reloaded as the service loads it and held to
    the original's outputs exactly."""
    import keras

    if not checked.classes:
        shutil.copyfile(file, target)
        return
    checked.generator.save(target)
    reloaded = keras.saving.load_model(target, compile=False, safe_mode=True)
    rows = checked.probe_rows()
    original = checked.source(split_row(checked.source, rows, checked.latent_dim, checked.label_index), training=False)
    if not np.array_equal(
        keras.ops.convert_to_numpy(reloaded(rows, training=False)), keras.ops.convert_to_numpy(original)
    ):
        raise GeneratorRefused(
            f"{file}: wrapped into one input row (latent ⊕ one-hot label), saved and reloaded, the generator gives "
            "other outputs than the original given its two inputs; is its output random at inference?"
        )


def import_generator(file: Path, name: str, family: str, output: str, store: Path, notes: str = "") -> Path:
    from training.loop import provenance

    check_name(name, store)
    checked = load_checked(file)
    d, classes = checked.latent_dim, checked.classes
    staging = staging_dir(store, name)
    try:
        _install_generator(checked, Path(file), staging / GENERATOR)
        np.save(staging / "fixed_latents.npy", latents_from_seed(PROGRESS_SEED, 16, d))
        manifest: dict[str, Any] = {
            "name": name,
            "family": family,
            "upsampling": "imported",
            "architecture": f"imported {'conditional ' if classes else ''}generator{': ' + notes if notes else ''}",
            "output": output,
            "latent_dim": d,
            "classes": classes,  # > 0: the generator's input is the latent followed by a one-hot label
            "input_dim": d + classes,
            "provenance": "imported",
            "source_file": Path(file).name,
            "source_sha256": sha256_file(file),
            "notes": notes,
            "layers": provenance.layer_table(checked.source),
            "params": provenance.param_counts(checked.source),
            "epochs_done": None,
            "history": [],
            "versions": provenance.versions(),
            "created_at": provenance.now_iso(),
        }
        from training.interchange.onnx_export import ExportError, export_onnx

        try:
            manifest["onnx"] = export_onnx(staging)  # the file the service runs, checked against the Keras model
        except ExportError as e:
            raise GeneratorRefused(str(e)) from None
        manifest["files"] = {p: sha256_file(staging / p) for p in (GENERATOR, SERVED, "fixed_latents.npy")}
        if classes:
            manifest["conditioning"] = (
                f"the file's two-input model (inputs {list(checked.input_shapes)}) is installed wrapped into one input "
                f"row: the latent ({d}) followed by the one-hot label ({classes}); layers and params are the original's"
            )
        write_manifest(staging, manifest)
        if (Path(store) / name).exists():  # taken while we checked
            raise GeneratorRefused(
                f"--name {name!r} is taken ({Path(store) / name} appeared meanwhile); choose another name"
            )
        install_dir(staging, Path(store) / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Path(store) / name
