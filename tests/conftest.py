"""Shared fixtures: tiny MNIST-shaped data and a models store trained on it with the smoke profile."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from training.loop.data import Mnist, load_mnist, save_npz, synthetic_mnist

REAL_MNIST = os.environ.get("MNIST_NPZ") or str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz")
ROOT = Path(__file__).resolve().parents[1]


# --- What this run must not skip ---------------------------------------------------------------------------------
# ARENA_TEST_REQUIRE names the inputs a run requires, comma-separated: mnist (the full MNIST), postgres (a PostgreSQL
# server, ARENA_TEST_POSTGRES_URL), cluster (PostgreSQL and nginx), ray (Ray for the two-node sweep), browser (Debian's
# Chromium), jax (JAX, the dev extra), or all. .ci/run requires all of them, so in CI a test whose input is missing
# fails with the reason instead of skipping. Every skip for a missing input goes through `require`.
# ARENA_TEST_REQUIRE_CLUSTER=1 (the older switch) still requires the cluster and PostgreSQL.
REQUIRABLE = ("mnist", "postgres", "cluster", "ray", "browser", "jax")


def required(env=os.environ) -> set[str]:
    """The inputs this run requires (see ARENA_TEST_REQUIRE)."""
    names = {w.strip() for w in env.get("ARENA_TEST_REQUIRE", "").split(",") if w.strip()}
    if "all" in names:
        names |= set(REQUIRABLE)
    if env.get("ARENA_TEST_REQUIRE_CLUSTER") == "1":
        names |= {"cluster", "postgres"}
    unknown = names - set(REQUIRABLE) - {"all"}
    if unknown:
        raise ValueError(f"ARENA_TEST_REQUIRE names {sorted(unknown)}; it takes {', '.join(REQUIRABLE)} or all")
    return names


def require(what: str, missing: str | None) -> None:
    """Skip with `missing` (the reason an input is absent) — or fail, when this run requires `what`."""
    if missing is None:
        return
    if what in required():
        pytest.fail(
            f"{what} is required in this run (ARENA_TEST_REQUIRE / ARENA_TEST_REQUIRE_CLUSTER), but {missing}",
            pytrace=False,
        )
    pytest.skip(missing)


def require_jax() -> None:
    import importlib.util

    require("jax", None if importlib.util.find_spec("jax") else "jax is not installed (the dev extra installs it)")


# --- Hypothesis: the same cases on every CI run; a separate opt-in run explores -----------------------------------
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, max_examples=60, print_blob=True
)
_hypothesis_settings.register_profile("dev", deadline=None)
_hypothesis_settings.register_profile("explore", derandomize=False, deadline=None, max_examples=1000)


def hypothesis_profile(env=os.environ) -> str:
    """HYPOTHESIS_PROFILE when set (explore: new random draws, opt-in), else ci under CI or a required run, else dev."""
    if env.get("HYPOTHESIS_PROFILE"):
        return env["HYPOTHESIS_PROFILE"]
    return "ci" if env.get("CI") or env.get("ARENA_TEST_REQUIRE") or env.get("ARENA_TEST_REQUIRE_CLUSTER") else "dev"


_hypothesis_settings.load_profile(hypothesis_profile())


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
    require(
        "mnist",
        None
        if Path(REAL_MNIST).is_file()
        else f"the full MNIST is not at {REAL_MNIST}; set MNIST_NPZ to run this test",
    )
    return load_mnist(REAL_MNIST)


TINY_STORE_INPUTS = ("arena", "training")  # the code a tiny store is made by; its hash names the cached copy


def _tiny_store_key() -> str:
    """A hash of everything the tiny store depends on: the trainer's and the shared layer's code, the smoke profile
    (in that code), the synthetic data's parameters and the versions of the libraries that compute it."""
    import hashlib
    import importlib.metadata as md

    h = hashlib.sha256(b"synthetic_mnist(n_train=256, n_test=64, seed=0)")
    for package in TINY_STORE_INPUTS:
        for path in sorted((ROOT / package).rglob("*.py")):
            h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    for dist in ("keras", "tensorflow", "numpy", "jax"):
        try:
            h.update(f"{dist}={md.version(dist)}".encode())
        except md.PackageNotFoundError:
            pass
    return h.hexdigest()[:20]


def _build_tiny_store(store: Path, data: Mnist) -> None:
    from arena.variants import VARIANTS
    from training.loop.config import profile_config
    from training.loop.epochs import train_variant

    work = store.parent / f".{store.name}-runs"
    for variant in VARIANTS.values():
        train_variant(variant, profile_config("smoke", variant.family), data, store, work, log=lambda _: None)
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory, tiny_data) -> Path:
    """Every variant of the table trained for 2 smoke epochs on synthetic digits, in the real on-disk format.

    Built once per change of its inputs and kept in ARENA_TEST_CACHE (default ~/.cache/deconv-arena-tests), named by
    their hash; each test session works on its own copy, so a test that writes into the store cannot spoil the cache.
    """
    cache = Path(os.environ.get("ARENA_TEST_CACHE") or Path.home() / ".cache" / "deconv-arena-tests")
    built = cache / f"tiny-store-{_tiny_store_key()}"
    if not built.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tiny-store-", dir=cache))
        _build_tiny_store(staging / "store", tiny_data)
        try:
            os.rename(staging / "store", built)  # atomic: a concurrent session that won the race keeps its copy
        except OSError:
            pass
        shutil.rmtree(staging, ignore_errors=True)
    store = tmp_path_factory.mktemp("tiny") / "models_store"
    shutil.copytree(built, store)
    return store


_REGISTRIES: dict[tuple, object] = {}
REGISTRY_SETTINGS = ("batch_shapes", "batch_window_ms", "max_batch")


def shared_registry(store: Path, settings):
    """One loaded registry per store and registry settings for the whole test run (loading traces every model)."""
    from app.serving.registry import Registry

    key = (str(store), *(getattr(settings, k) for k in REGISTRY_SETTINGS))
    if key not in _REGISTRIES:
        registry = Registry(
            settings.models_store, settings.batch_shapes, settings.batch_window_ms / 1000, settings.max_batch
        )
        registry.load_all()
        _REGISTRIES[key] = registry
    return _REGISTRIES[key]


@pytest.fixture(scope="session", autouse=True)
def _close_shared_registries():
    yield
    for registry in _REGISTRIES.values():
        registry.close()
    _REGISTRIES.clear()


def wait_ready(client, timeout: float = 120.0, settled: bool = True) -> None:
    """Until /readyz says ready and, with `settled`, no model has batch shapes still being checked."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get("/readyz")
        if r.status_code == 200 and (
            not settled or not any(m.get("batch_shapes_pending") for m in r.json()["models"].values())
        ):
            return
        time.sleep(0.05)
    raise AssertionError("service never became ready" + (" with every batch shape checked" if settled else ""))


def make_client(store: Path, tmp_path: Path | None = None, shared: bool = True, **settings):
    """A TestClient of a fresh app (its own settings, cache, metrics and vote store). With `shared`, the app serves the
    run's one loaded registry for this store and registry settings; a test that patches how models are loaded or
    checked passes shared=False and gets a registry of its own, loaded by the app as in production."""
    from fastapi.testclient import TestClient

    from app.core.settings import Settings
    from app.main import create_app

    db = f"sqlite:///{tmp_path / 'arena.db'}" if tmp_path else "sqlite://"
    settings.setdefault("database_url", db)
    config = Settings(models_store=store, **settings)
    return TestClient(create_app(config, shared_registry(store, config) if shared else None))


@pytest.fixture(scope="session")
def client(tiny_store, tmp_path_factory):
    with make_client(tiny_store, tmp_path_factory.mktemp("db")) as c:
        wait_ready(c)
        yield c


# Which files `make test-fast` leaves out, by what makes them slow (each file's own marks come on top): slow ones
# train, evaluate or load real-sized or unshared models; cluster ones start instances, nginx and PostgreSQL.
# test_exactness.py marks its slow tests one by one: its batcher tests (mixed sizes, rows back in order, on this CPU
# and on a simulated one that tiles batches differently) are part of the fast suite.
FILE_MARKS = {
    "test_evaluate.py": "slow",
    "test_replicates.py": "slow",
    "test_backends.py": "slow",
    "test_scale.py": "cluster",
    "test_faults.py": "cluster",
    "test_sweep_ray.py": "cluster",
    "test_browser.py": "browser",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        mark = FILE_MARKS.get(item.path.name)
        if mark:
            item.add_marker(getattr(pytest.mark, mark))


def manifest_record(fields: dict, name: str = "vae_upsample") -> dict:
    """A manifest as arena/records.py requires one (name, family, upsampling, latent_dim, output, files), with
    `fields` over it: for tests that fake a run's manifest with only the fields they are about."""
    return {
        "name": name,
        "family": "vae",
        "upsampling": "resize",
        "latent_dim": 2,
        "output": "sigmoid",
        "files": {},
    } | {**fields}
