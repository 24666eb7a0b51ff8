"""Facts about how and where a model was made, for its manifest."""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
from pathlib import Path
from typing import Any

import keras


def versions() -> dict[str, str]:
    import numpy

    out = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "numpy": numpy.__version__,
    }
    framework = __import__("tensorflow" if out["backend"] == "tensorflow" else out["backend"])
    out[out["backend"]] = framework.__version__
    return out


def _accelerators() -> list[str]:
    if keras.backend.backend() == "jax":
        import jax

        return [f"{d.platform}:{getattr(d, 'device_kind', d)}" for d in jax.devices() if d.platform != "cpu"]
    import tensorflow as tf

    return [d.name for d in tf.config.list_physical_devices("GPU")]


def hardware() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus = _accelerators()
    import os

    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
        "float32_matmul": _float32_matmul(gpus),
        "machine": platform.machine(),
        "system": platform.system(),
    }


def _float32_matmul(gpus: list[str]) -> str:
    """How float32 convolutions and matmuls are computed: full float32 on CPUs; JAX's default on NVIDIA GPUs
    (Ampere and later) is TF32 unless `JAX_DEFAULT_MATMUL_PRECISION` says otherwise."""
    if not gpus:
        return "float32"
    if keras.backend.backend() == "jax":
        import jax

        setting = jax.config.jax_default_matmul_precision
        return (
            f"jax precision {setting}" if setting else "jax default (TF32 on NVIDIA GPUs of compute capability >= 8.0)"
        )
    return "tensorflow default (TF32 on NVIDIA GPUs of compute capability >= 8.0)"


CHECKOUT = Path(__file__).resolve().parents[2]  # the checkout: training/loop/ is two below it

SOURCE_DIFF_EXCLUDES = (
    ":(exclude)models_store",
    ":(exclude)*.png",
    ":(exclude)*.npy",
    ":(exclude)*.npz",
    ":(exclude)*.keras",
)


def git_commit(root: Path = CHECKOUT) -> str | None:
    """The checkout's commit, "-dirty" when its tracked source differs from it. The models store and binary files
    are not source (the same excludes as source_diff): a sweep that writes runs into the store left every later run
    "-dirty" with no source diff to show for it."""
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", ".", *SOURCE_DIFF_EXCLUDES],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def source_diff(root: Path = CHECKOUT) -> str | None:
    """`git diff HEAD` of the tracked source files when the tree is dirty (so a run from uncommitted code can be
    recovered); None when clean or not a git checkout. The models store and binary files are left out: a run's code is
    its provenance, not the other runs' weights and PNGs (which made single diffs 1.6 MB)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "diff", "HEAD", "--no-color", "--", ".", *SOURCE_DIFF_EXCLUDES],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 and out.stdout.strip() else None


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def _shape(shape: Any) -> list[int | None]:
    return [None if d is None else int(d) for d in shape]


def layer_table(model: keras.Model) -> list[dict[str, Any]]:
    """Each layer's class, key settings, output shape and parameter count."""
    keys = (
        "units",
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "use_bias",
        "activation",
        "size",
        "target_shape",
        "rate",
        "interpolation",
    )
    rows = []
    for layer in model.layers:
        cfg = layer.get_config()
        rows.append(
            {
                "name": layer.name,
                "class": type(layer).__name__,
                "config": {k: cfg[k] for k in keys if k in cfg},
                "output_shape": _shape(layer.output.shape) if layer._inbound_nodes else None,
                "params": int(layer.count_params()),
            }
        )
    return rows


def param_counts(model: keras.Model) -> dict[str, int]:
    trainable = sum(int(v.numpy().size) for v in model.trainable_variables)
    total = int(model.count_params())
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}
