"""`deconv-arena import`: bring your own generator. The file is checked (loads, takes one latent vector, gives one
28×28×1 image per vector, finite) and installed with a manifest into the models store, atomically; after a restart it
is served, evaluated and rated like the trained ones."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from arena.latents import latents_from_seed
from arena.manifest import GENERATOR, MANIFEST, install_dir, sha256_file, staging_dir, write_json_atomic
from arena.variants import VARIANTS

NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
PROGRESS_SEED = 2023


class ImportError_(Exception):
    """One line naming what is wrong with the file or the arguments."""


def check_name(name: str, store: Path) -> None:
    if not NAME.match(name):
        raise ImportError_(f"--name {name!r}: use 1–48 lower-case letters, digits and _, starting with a letter")
    if name in VARIANTS or (Path(store) / name).exists():
        raise ImportError_(
            f"--name {name!r} is taken "
            f"({'a variant of the table' if name in VARIANTS else f'{Path(store) / name} exists'}); choose another name"
        )


def load_checked(file: Path):
    """(model, latent_dim) for a file that passes every check; ImportError_ otherwise."""
    import keras

    import arena.layers  # noqa: F401  (generators may use our DepthToSpace)

    file = Path(file)
    if not file.is_file():
        raise ImportError_(f"{file}: no such file")
    if file.suffix != ".keras":
        raise ImportError_(f"{file}: expected a Keras 3 model file (.keras, from model.save('x.keras'))")
    try:
        model = keras.saving.load_model(file, compile=False, safe_mode=True)
    except Exception as e:  # a damaged or foreign file raises anything
        raise ImportError_(
            f"{file} could not be loaded as a Keras model ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:160] if str(e) else ''})"
        ) from None
    shape = getattr(model, "input_shape", None)
    if not (isinstance(shape, tuple) and len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0):
        raise ImportError_(
            f"{file}: the generator must take one latent vector per example, input shape (None, d); it takes {shape}"
        )
    latent_dim = shape[1]
    out = np.asarray(keras.ops.convert_to_numpy(model(latents_from_seed(0, 2, latent_dim), training=False)))
    if out.shape != (2, 28, 28, 1):
        raise ImportError_(
            f"{file}: two latent vectors gave output shape {out.shape}; expected (2, 28, 28, 1): one 28×28×1 image each"
        )
    if not np.all(np.isfinite(out)):
        raise ImportError_(f"{file}: the output has non-finite values (NaN or infinity) for standard-normal latents")
    return model, latent_dim


def import_generator(file: Path, name: str, family: str, output: str, store: Path, notes: str = "") -> Path:
    from training import provenance

    check_name(name, store)
    model, latent_dim = load_checked(file)
    staging = staging_dir(store, name)
    try:
        shutil.copyfile(file, staging / GENERATOR)
        np.save(staging / "fixed_latents.npy", latents_from_seed(PROGRESS_SEED, 16, latent_dim))
        manifest: dict[str, Any] = {
            "name": name,
            "family": family,
            "upsampling": "imported",
            "architecture": f"imported generator{': ' + notes if notes else ''}",
            "output": output,
            "latent_dim": latent_dim,
            "provenance": "imported",
            "source_file": Path(file).name,
            "notes": notes,
            "layers": provenance.layer_table(model),
            "params": provenance.param_counts(model),
            "epochs_done": None,
            "history": [],
            "versions": provenance.versions(),
            "created_at": provenance.now_iso(),
            "files": {
                GENERATOR: sha256_file(staging / GENERATOR),
                "fixed_latents.npy": sha256_file(staging / "fixed_latents.npy"),
            },
        }
        write_json_atomic(staging / MANIFEST, manifest)
        if (Path(store) / name).exists():  # taken while we checked
            raise ImportError_(
                f"--name {name!r} is taken ({Path(store) / name} appeared meanwhile); choose another name"
            )
        install_dir(staging, Path(store) / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Path(store) / name
