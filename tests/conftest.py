"""Shared fixtures: tiny MNIST-shaped data and a models store trained on it with the smoke profile."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from training.data import Mnist, load_mnist, save_npz, synthetic_mnist

REAL_MNIST = os.environ.get("MNIST_NPZ") or str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_data() -> Mnist:
    return synthetic_mnist(n_train=256, n_test=64, seed=0)


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory, tiny_data) -> Path:
    path = tmp_path_factory.mktemp("data") / "mnist.npz"
    save_npz(tiny_data, path)
    return path


@pytest.fixture(scope="session")
def real_mnist() -> Mnist:
    if not Path(REAL_MNIST).is_file():
        pytest.skip(f"the full MNIST is not at {REAL_MNIST}; set MNIST_NPZ to run this test")
    return load_mnist(REAL_MNIST)


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory, tiny_data) -> Path:
    """Every variant of the table trained for 2 smoke epochs on synthetic digits, in the real on-disk format."""
    from arena.variants import VARIANTS
    from training.config import profile_config
    from training.runner import train_variant

    store = tmp_path_factory.mktemp("models_store")
    work = tmp_path_factory.mktemp("runs")
    for variant in VARIANTS.values():
        config = profile_config("smoke", variant.family)
        train_variant(variant, config, tiny_data, store, work, log=lambda _: None)
    return store


def wait_ready(client, timeout: float = 120.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError("service never became ready")


def make_client(store: Path, tmp_path: Path | None = None, **settings):
    from fastapi.testclient import TestClient

    from app.core.settings import Settings
    from app.main import create_app

    db = f"sqlite:///{tmp_path / 'arena.db'}" if tmp_path else "sqlite://"
    settings.setdefault("database_url", db)
    app = create_app(Settings(models_store=store, **settings))
    return TestClient(app)


@pytest.fixture(scope="session")
def client(tiny_store, tmp_path_factory):
    with make_client(tiny_store, tmp_path_factory.mktemp("db")) as c:
        wait_ready(c)
        yield c
