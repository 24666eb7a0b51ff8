"""The one way to read, write and verify a model's manifest, and to install a model atomically."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
GENERATOR = "generator.keras"  # the trained Keras model: downloaded, imported, exported
SERVED = "generator.onnx"  # what the service runs (training/onnx_export.py), on onnxruntime


class ManifestError(Exception):
    """A manifest that is missing, unreadable or inconsistent with the files beside it."""


def classes(manifest: dict[str, Any]) -> int:
    """> 0: a conditional model, asked for one of that many labels (0 in manifests from before conditioning)."""
    return int(manifest.get("classes") or 0)


def generator_file(manifest: dict[str, Any]) -> str:
    """The generator's file of record, whose SHA-256 its metrics name: the Keras model it was trained or imported as,
    else (a generator imported from ONNX, from any framework) the served ONNX file itself."""
    return GENERATOR if GENERATOR in manifest["files"] else SERVED


def input_dim(manifest: dict[str, Any]) -> int:
    """The generator's input width: the latent, and a conditional model's one-hot label after it."""
    return int(manifest["latent_dim"]) + classes(manifest)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(model_dir: Path) -> dict[str, Any]:
    """Parse `manifest.json` and check the fields every consumer relies on."""
    path = Path(model_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise ManifestError(f"no {MANIFEST} in {model_dir}") from e
    except (OSError, ValueError) as e:
        raise ManifestError(f"{path} is not valid JSON: {e}") from e
    for key in ("name", "family", "upsampling", "latent_dim", "output", "files"):
        if key not in manifest:
            raise ManifestError(f"{path} lacks the field {key!r}")
    return manifest


def verify_files(model_dir: Path, manifest: dict[str, Any]) -> None:
    """Raise if any file the manifest lists is missing or has another SHA-256."""
    for name, expected in manifest["files"].items():
        path = Path(model_dir) / name
        if not path.is_file():
            raise ManifestError(f"{name} is missing from {model_dir}")
        actual = sha256_file(path)
        if actual != expected:
            raise ManifestError(f"{name} fails its checksum (sha256 {actual[:12]}…, manifest says {expected[:12]}…)")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file in the same folder, then rename over the target."""
    text = json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n"
    write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write bytes through a temporary file in the same folder (fsynced), then rename over the target: a reader sees
    the old file or the new one, never half of one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def install_dir(staging: Path, target: Path) -> None:
    """Swap a fully written staging folder into place; the old model survives any failure before the swap."""
    staging, target = Path(staging), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    backup = target.with_name(f".{target.name}.old")
    if backup.exists():
        shutil.rmtree(backup)
    if target.exists():
        os.replace(target, backup)
    try:
        os.replace(staging, target)
    except BaseException:
        if backup.exists() and not target.exists():
            os.replace(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def staging_dir(store: Path, name: str) -> Path:
    """A fresh temporary folder on the same filesystem as the store (so rename is atomic)."""
    Path(store).mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=store, prefix=f".{name}.staging-"))
    path.chmod(0o755)  # mkdtemp makes 0700; the service may run as another user
    return path
