"""MNIST from a local npz (Keras' layout), or Keras' own cache/download; checked and checksummed."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KEYS = {"x_train": (28, 28), "y_train": (), "x_test": (28, 28), "y_test": ()}
HOW_TO_FIX = "pass --data PATH (or set MNIST_NPZ) to a file in Keras' mnist.npz layout"


class DataError(Exception):
    """The dataset could not be found or is not MNIST-shaped."""


@dataclass(frozen=True)
class Mnist:
    x_train: np.ndarray  # uint8 (N, 28, 28)
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def checksums(self) -> dict[str, str]:
        """SHA-256 of each array's raw bytes, independent of how the file was compressed."""
        return {k: hashlib.sha256(np.ascontiguousarray(getattr(self, k)).tobytes()).hexdigest() for k in KEYS}


def load_mnist(path: str | os.PathLike | None = None) -> Mnist:
    """`path`, else $MNIST_NPZ, else keras.datasets.mnist.load_data(); one clear error if none works."""
    path = path or os.environ.get("MNIST_NPZ")
    if path:
        return _from_npz(Path(path))
    try:
        import keras

        (xt, yt), (xs, ys) = keras.datasets.mnist.load_data()
    except Exception as e:  # no cache and no network
        raise DataError(
            f"MNIST is not available locally and the Keras download failed ({type(e).__name__}); {HOW_TO_FIX}"
        ) from None
    return _checked({"x_train": xt, "y_train": yt, "x_test": xs, "y_test": ys}, "keras.datasets.mnist")


def _from_npz(path: Path) -> Mnist:
    if not path.is_file():
        raise DataError(f"data file {path} does not exist; {HOW_TO_FIX}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in KEYS if k in f.files}
            missing = [k for k in KEYS if k not in f.files]
    except Exception as e:
        raise DataError(f"data file {path} is not a readable .npz ({e}); {HOW_TO_FIX}") from None
    if missing:
        raise DataError(f"data file {path} lacks {', '.join(missing)}; it needs x_train, y_train, x_test, y_test")
    # the manifest names the data by file name and checksums, never by this machine's path to it
    return dataclasses.replace(_checked(arrays, str(path)), source=path.name)


def _checked(arrays: dict[str, np.ndarray], source: str) -> Mnist:
    for key, tail in KEYS.items():
        a = arrays[key]
        if a.dtype != np.uint8:
            raise DataError(f"{source}: {key} has dtype {a.dtype}, expected uint8")
        if a.ndim != 1 + len(tail) or a.shape[1:] != tail or a.shape[0] == 0:
            raise DataError(
                f"{source}: {key} has shape {a.shape}, expected (N, {', '.join(map(str, tail))})".replace(", )", ")")
            )
    for x, y in (("x_train", "y_train"), ("x_test", "y_test")):
        if arrays[x].shape[0] != arrays[y].shape[0]:
            raise DataError(f"{source}: {x} has {arrays[x].shape[0]} images but {y} has {arrays[y].shape[0]} labels")
        if arrays[y].max() > 9:
            raise DataError(f"{source}: {y} holds label {arrays[y].max()}, expected 0..9")
    return Mnist(source=source, **arrays)


def synthetic_mnist(n_train: int = 512, n_test: int = 128, seed: int = 0) -> Mnist:
    """Digit-like strokes for tests that must run without the real dataset."""
    rng = np.random.default_rng(seed)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 10, n).astype(np.uint8)
        yy, xx = np.mgrid[0:28, 0:28]
        x = np.zeros((n, 28, 28), np.float32)
        for i, label in enumerate(y):
            angle = np.pi * label / 10 + rng.normal(0, 0.1)
            cy, cx = 14 + rng.normal(0, 1.5, 2)
            d = np.abs((yy - cy) * np.cos(angle) - (xx - cx) * np.sin(angle))
            ring = np.abs(np.hypot(yy - cy, xx - cx) - 4 - label % 4)
            x[i] = np.exp(-((np.minimum(d, ring + 10 * (label % 2))) ** 2) / 2.0) * (np.hypot(yy - cy, xx - cx) < 10)
        return (x * 255).astype(np.uint8), y

    xt, yt = make(n_train)
    xs, ys = make(n_test)
    return Mnist(xt, yt, xs, ys, source=f"synthetic(seed={seed})")


def save_npz(data: Mnist, path: Path) -> None:
    """Write in Keras' layout (used by tests to exercise the --data path)."""
    np.savez_compressed(path, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test)


def gan_images(x: np.ndarray) -> np.ndarray:
    """The DCGAN tutorial's scaling: (x − 127.5) / 127.5 into [-1, 1], NHWC float32."""
    return ((x.astype(np.float32) - 127.5) / 127.5)[..., None]


def vae_images(x: np.ndarray) -> np.ndarray:
    """The CVAE tutorial's preprocessing: /255 then binarised at 0.5, NHWC float32."""
    return np.where(x[..., None] / 255.0 > 0.5, 1.0, 0.0).astype(np.float32)
