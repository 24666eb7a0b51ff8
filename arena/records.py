"""The model store's contract: the one reader and writer of a model's two records, `manifest.json` (what the model
is and how it was made) and `metrics.json` (what evaluation measured), typed and versioned; checksums of the files a
manifest lists; and installing a model atomically. Every record names its `record_version`; one written before
versioning reads as version 0 and is never rewritten to a newer version (an edit keeps the version it has)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MANIFEST = "manifest.json"
METRICS_FILE = "metrics.json"
GENERATOR = "generator.keras"  # the trained Keras model: downloaded, imported, exported
SERVED = "generator.onnx"  # what the service runs (training/interchange/onnx_export.py), on onnxruntime
VERSION = "record_version"  # the field; absent: a record from before versioning (version 0)
MANIFEST_VERSION = 1  # 1: `record_version` and `classes` (0 for an unconditional model) always written
METRICS_VERSION = 1  # 1: `record_version` written


class RecordError(Exception):
    """A record that is missing, unreadable or invalid, or files inconsistent with their manifest."""


class ManifestError(RecordError):
    """A manifest that is missing, unreadable or inconsistent with the files beside it."""


class MetricsError(RecordError):
    """A metrics.json that is unreadable or invalid."""


class _Record(BaseModel):
    """The fields consumers rely on, with their types; every other field passes through unchanged."""

    model_config = ConfigDict(extra="allow", strict=True)


class _Manifest(_Record):
    record_version: int = Field(0, ge=0, le=MANIFEST_VERSION)
    name: str
    family: str
    upsampling: str | None
    latent_dim: int | None
    output: str
    files: dict[str, str]
    classes: int = Field(0, ge=0)
    reference: str | None = None
    role: str | None = None
    epochs_done: int | None = None
    epochs_planned: int | None = None
    history: list[dict[str, Any]] = []
    resumed_after_epochs: list[int] = []
    study: dict[str, Any] | None = None
    config: dict[str, Any] = {}
    hardware: dict[str, Any] = {}
    created_at: str | None = None


class _ManifestV1(_Manifest):
    record_version: int = Field(ge=1, le=MANIFEST_VERSION)


class _GeneratorManifest(_Manifest):
    latent_dim: int = Field(ge=1)


class _GeneratorManifestV1(_ManifestV1):
    latent_dim: int = Field(ge=1)
    classes: int = Field(ge=0)


class _Metrics(_Record):
    record_version: int = Field(0, ge=0, le=METRICS_VERSION)
    model: str
    generator_sha256: str
    samples: int = Field(ge=1)
    seed: int | None = None
    evaluator_sha256: str | None = None
    frechet: dict[str, float | None] = {}


class _MetricsV1(_Metrics):
    record_version: int = Field(ge=1, le=METRICS_VERSION)


def _validate(path: Path, record: Any, schemas: tuple[type[_Record], type[_Record]], error: type[RecordError]) -> None:
    """Check `record` against the schema of its version; the error names the file, the field and what was wrong."""
    if not isinstance(record, dict):
        raise error(f"{path} holds {type(record).__name__}, not a JSON object")
    version, newest = record.get(VERSION, 0), schemas[1].model_fields[VERSION].metadata[-1].le
    if isinstance(version, int) and version > newest:
        raise error(f"{path}: field {VERSION!r}: {version} is newer than this deconv-arena reads (up to {newest})")
    try:
        (schemas[1] if isinstance(version, int) and version >= 1 else schemas[0]).model_validate(record)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(x) for x in first["loc"]) or "(the record)"
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise error(f"{path}: field {field!r}: {first['msg']}{more}") from None


def _read(path: Path, error: type[RecordError]) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as e:
        raise error(f"no {path.name} in {path.parent}") from e
    except (OSError, ValueError) as e:
        raise error(f"{path} is not valid JSON: {e}") from e


def _schemas(record: Any) -> tuple[type[_Record], type[_Record]]:
    generator = not (isinstance(record, dict) and record.get("family") == "classifier")  # the evaluator: no latent
    return (_GeneratorManifest, _GeneratorManifestV1) if generator else (_Manifest, _ManifestV1)


def _write_valid(path: Path, record: dict[str, Any], schemas, error: type[RecordError]) -> None:
    """Validate the record as it will read back (its JSON text, serialised once), then write that text atomically."""
    text = _dumps(record)
    _validate(path, json.loads(text), schemas, error)
    write_bytes_atomic(path, text.encode())


def record_version(record: dict[str, Any]) -> int:
    """The version a record was written at (0: before versioning)."""
    return int(record.get(VERSION, 0))


def read_manifest(model_dir: Path, missing_ok: bool = False) -> dict[str, Any]:
    """A model's manifest, validated against its version's schema (ManifestError names the file and the field); {}
    when there is none and `missing_ok` (a model not trained yet)."""
    path = Path(model_dir) / MANIFEST
    if missing_ok and not path.is_file():
        return {}
    manifest = _read(path, ManifestError)
    _validate(path, manifest, _schemas(manifest), ManifestError)
    return manifest


def write_manifest(model_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write a new manifest at the current version, atomically, after validating it (a wrong field fails here,
    before anything is written); returns what was written."""
    record = {VERSION: MANIFEST_VERSION, **{k: v for k, v in manifest.items() if k != VERSION}}
    path = Path(model_dir) / MANIFEST
    _write_valid(path, record, _schemas(record), ManifestError)
    return record


def update_manifest(model_dir: Path, changes: dict[str, Any]) -> dict[str, Any]:
    """Change fields of an existing manifest, keeping the version it was written at; returns the new record."""
    path = Path(model_dir) / MANIFEST
    record = {**read_manifest(model_dir), **changes}
    _write_valid(path, record, _schemas(record), ManifestError)
    return record


def read_metrics(model_dir: Path, missing_ok: bool = False) -> dict[str, Any]:
    """A model's metrics.json, validated against its version's schema; {} when there is none and `missing_ok`
    (a model not evaluated yet)."""
    path = Path(model_dir) / METRICS_FILE
    if missing_ok and not path.is_file():
        return {}
    metrics = _read(path, MetricsError)
    _validate(path, metrics, (_Metrics, _MetricsV1), MetricsError)
    return metrics


def write_metrics(model_dir: Path, metrics: dict[str, Any], keep_version: bool = False) -> dict[str, Any]:
    """Write a model's metrics.json atomically after validating it: a new record at the current version, or (with
    `keep_version`: sections added to an existing record) at the version it has."""
    if keep_version:
        record = dict(metrics)
    else:
        record = {VERSION: METRICS_VERSION, **{k: v for k, v in metrics.items() if k != VERSION}}
    path = Path(model_dir) / METRICS_FILE
    _write_valid(path, record, (_Metrics, _MetricsV1), MetricsError)
    return record


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


def verify_files(model_dir: Path, manifest: dict[str, Any]) -> None:
    """Raise if any file the manifest lists is missing or has another SHA-256."""
    for name, expected in manifest["files"].items():
        path = Path(model_dir) / name
        if not path.is_file():
            raise ManifestError(f"{name} is missing from {model_dir}")
        actual = sha256_file(path)
        if actual != expected:
            raise ManifestError(f"{name} fails its checksum (sha256 {actual[:12]}…, manifest says {expected[:12]}…)")


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file in the same folder, then rename over the target."""
    write_bytes_atomic(path, _dumps(data).encode())


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
