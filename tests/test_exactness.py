"""A seed's bytes never depend on batching: the warm-up shape check, on fakes, on this CPU and on a simulated one."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import numpy as np
import pytest

import app.registry
from app.shapes import ModelUnavailable, ShapeCheck, check_shapes
from arena.images import png_bytes, render_grid
from arena.latents import latents_from_seed, with_labels
from arena.variants import VARIANTS
from tests.conftest import make_client, wait_ready
from tests.hosts import tail_kernel, tail_kernel_compile

SHAPES = (1, 4, 8, 12, 16)
# Candidates that include shapes with a tail past a 6-row block (8 = 6 + 2, 32 = 30 + 2), so that the simulated CPU
# really has position-dependent shapes for the service to find and avoid.
WITH_TAILS = (1, 4, 8, 12, 16, 24, 32, 48, 64)


def exact(z: np.ndarray) -> np.ndarray:
    return np.tanh(z * np.float32(0.7)).astype(np.float32)


def test_exact_shapes_are_all_served():
    check = check_shapes({s: exact for s in SHAPES}, 3)
    assert check == ShapeCheck(SHAPES, {})


def test_position_dependent_shapes_are_caught_with_their_positions():
    fns = {s: tail_kernel(exact, s) for s in SHAPES}  # 8 = 6 + 2 has a tail; 1 has its own kernel
    check = check_shapes(fns, 3)
    assert check.serving == (4, 12, 16)
    assert (
        check.rejected[8].startswith("position-dependent") and "5→6" in check.rejected[8] and "7→0" in check.rejected[8]
    )
    assert "differ in the last bits" in check.rejected[1]


def test_batch_mate_dependent_rows_are_caught():
    def mean_mixing(z):  # a row that leans on its batch-mates, as batch statistics would; shifting keeps the mean
        return exact(z) + np.float32(1e-3) * z.mean(axis=0, keepdims=True)

    check = check_shapes({1: exact, 4: mean_mixing, 8: exact}, 3)
    assert check.serving == (1, 8) and check.rejected[4].startswith("batch-mate-dependent")


def test_nondeterministic_shapes_are_caught():
    calls = itertools.count()

    def noisy(z):
        return exact(z) + np.float32(1e-7) * next(calls)

    check = check_shapes({1: exact, 4: noisy}, 3)
    assert check.serving == (1,) and check.rejected[4].startswith("not deterministic")


def test_no_exact_shape_makes_the_model_unavailable():
    with pytest.raises(ModelUnavailable, match="no compiled batch shape gives exact rows"):
        check_shapes({8: tail_kernel(exact, 8)}, 3)


def test_shape_groups_are_chosen_by_cost_not_by_order():
    shifted = lambda z: exact(z) + np.float32(1e-6)  # noqa: E731 - shapes 1 and 4 round another way than 8..64
    fns = {1: shifted, 4: shifted, 8: exact, 16: exact, 32: exact, 64: exact}
    assert check_shapes(fns, 3).serving == (8, 16, 32, 64)


# Random mixes of concurrent requests: each gives the bytes of the same request made alone.


def mixed_requests(seed: int, count: int, models: list[str]) -> list[dict]:
    """Random grids of random models; a conditional model is asked for a random digit (its rows: latent ⊕ label)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        model = str(rng.choice(models))
        params = {"model": model, "seed": int(rng.integers(0, 2**32 - 1)), "n": int(rng.integers(1, 65))}
        if VARIANTS[model].classes:
            params["label"] = int(rng.integers(0, VARIANTS[model].classes))
        out.append({**params, "scale": 1, "padding": 0})
    return out


@pytest.fixture(params=["this_cpu", "tail_kernel_cpu"])
def uncached_client(request, tiny_store, tmp_path, monkeypatch):
    """A service with no grid cache, on this CPU or on a simulated one whose kernels depend on row position."""
    if request.param == "tail_kernel_cpu":
        monkeypatch.setattr(app.registry, "compile_shapes", tail_kernel_compile(app.registry.compile_shapes))
    with make_client(tiny_store, tmp_path, shared=False, cache_bytes=0, batch_shapes=WITH_TAILS) as client:
        wait_ready(client)
        yield request.param, client


def concurrently(client, requests: list[dict]) -> tuple[list[bytes], int]:
    """Send all requests at once on the app's own event loop; also count the model calls they took."""
    registry = client.app.state.registry
    calls = []
    for entry in registry.entries.values():
        if entry.batcher:
            entry.batcher.observe = lambda n, calls=calls: calls.append(n)

    async def send():
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://arena") as c:
            return await asyncio.gather(*(c.post("/generate", params=params) for params in requests))

    responses = client.portal.call(send)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    return [r.content for r in responses], len(calls)


def test_concurrent_mixed_requests_give_the_bytes_of_each_request_alone(uncached_client):
    host, client = uncached_client
    models = client.app.state.registry.available()
    requests = mixed_requests(7, 40, models)
    together, calls = concurrently(client, requests)
    assert calls < len(requests)  # requests really were decoded together
    alone = [client.post("/generate", params=params).content for params in requests]
    differ = [i for i, (a, b) in enumerate(zip(alone, together)) if a != b]
    assert not differ, f"{host}: requests {differ} changed bytes when batched"
    if host == "tail_kernel_cpu":
        ready = client.get("/readyz").json()["models"]
        assert all(
            8 not in m["batch_shapes"] and m["rejected_batch_shapes"]["8"].startswith("position-dependent")
            for m in ready.values()
        )


def test_without_the_check_the_simulated_cpu_changes_bytes(tiny_store, tmp_path, monkeypatch):
    """The test above has teeth: serving through every compiled shape on that CPU does change a grid's bytes."""
    monkeypatch.setattr(app.registry, "compile_shapes", tail_kernel_compile(app.registry.compile_shapes))
    monkeypatch.setattr(app.registry, "check_shapes", lambda fns, dim: ShapeCheck(tuple(sorted(fns)), {}))
    with make_client(tiny_store, tmp_path, shared=False, cache_bytes=0, batch_shapes=WITH_TAILS) as client:
        wait_ready(client)
        requests = mixed_requests(7, 40, client.app.state.registry.available())
        together, _ = concurrently(client, requests)
        alone = [client.post("/generate", params=params).content for params in requests]
    assert sum(a != b for a, b in zip(alone, together)) > 0


def test_batcher_mixes_give_the_bytes_of_each_request_alone(uncached_client):
    """The same property one level down, through the Batcher and its per-request finish step."""
    _, client = uncached_client
    registry = client.app.state.registry
    rng = np.random.default_rng(11)
    jobs = []
    for name in registry.available():
        entry = registry.get(name)
        for _ in range(12):
            z = latents_from_seed(int(rng.integers(0, 2**32 - 1)), int(rng.integers(1, 65)), entry.latent_dim)
            if entry.classes:  # a conditional model's rows: each latent followed by a random digit's one-hot code
                z = with_labels(z, rng.integers(0, entry.classes, len(z)), entry.classes)
            jobs.append((entry, z))

    def encode(images):
        return png_bytes(render_grid(images))

    async def together():
        return await asyncio.gather(*(entry.batcher.decode(z, encode) for entry, z in jobs))

    batched = client.portal.call(together)
    alone = [encode(entry.decode_now(z)) for entry, z in jobs]
    assert [i for i, (a, b) in enumerate(zip(alone, batched)) if a != b] == []


@pytest.mark.parametrize("decoders", [1, 2])
def test_a_models_batches_run_side_by_side_on_its_decode_threads(decoders):
    """With two decode threads a second batch of the same model starts while the first is still decoding (each call
    on one core); with one it waits. Gated, not timed: the first decode holds until the test lets it go."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from app.batcher import Batcher

    release, started = threading.Event(), []

    def decode_now(z):
        started.append(len(z))
        if len(started) == 1:
            assert release.wait(10)
        return z[:, :1] * 2

    executor, render = ThreadPoolExecutor(decoders), ThreadPoolExecutor(1)
    batcher = Batcher(decode_now, executor, render, 0.0, 64, lambda n: None, [0], decoders)

    async def scenario():
        first = asyncio.ensure_future(batcher.decode(np.ones((3, 4), np.float32)))
        while not started:
            await asyncio.sleep(0.005)
        second = asyncio.ensure_future(batcher.decode(np.full((2, 4), 5, np.float32)))
        for _ in range(100):  # up to 1 s for the second decode to start beside the held first one
            if len(started) == 2:
                break
            await asyncio.sleep(0.01)
        overlapped = len(started) == 2
        release.set()
        return overlapped, await first, await second

    try:
        overlapped, a, b = asyncio.run(scenario())
    finally:
        release.set()
        executor.shutdown()
        render.shutdown()
    assert overlapped is (decoders == 2)
    assert a.tolist() == [[2.0]] * 3 and b.tolist() == [[10.0]] * 2
