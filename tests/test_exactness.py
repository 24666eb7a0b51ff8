"""A seed's bytes never depend on batching: the warm-up shape check, on fakes, on this CPU and on a simulated one."""

from __future__ import annotations

import asyncio
import itertools
import os

import httpx
import numpy as np
import pytest

import app.serving.registry
from app.serving.shapes import (
    ModelUnavailable,
    ShapeCheck,
    _cheapest_split,
    _work,
    check_shapes,
    join_shapes,
    plan,
    settle_shapes,
    split_rows,
)
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
    assert settle_shapes(fns, 3).serving == (8, 16, 32, 64)


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
        monkeypatch.setattr(
            app.serving.registry, "compile_shapes", tail_kernel_compile(app.serving.registry.compile_shapes)
        )
    with make_client(
        tiny_store, tmp_path, shared=False, cache_bytes=0, batch_shapes=WITH_TAILS, decode_threads=2
    ) as client:  # two decode threads whatever this host's cores: a lone batch is cut in two, as on a 2-core host
        wait_ready(client)
        yield request.param, client


def concurrently(client, requests: list[dict]) -> tuple[list[bytes], int]:
    """Send all requests at once on the app's own event loop; also count the model calls they took."""
    registry = client.app.state.registry
    calls = []
    for entry in registry.entries.values():
        if entry.decoder:
            entry.decoder.batcher.observe = lambda n, calls=calls: calls.append(n)

    async def send():
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://arena") as c:
            return await asyncio.gather(*(c.post("/generate", params=params) for params in requests))

    responses = client.portal.call(send)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    return [r.content for r in responses], len(calls)


@pytest.mark.slow  # loads the models without the shared registry
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


@pytest.mark.slow  # loads the models without the shared registry
def test_without_the_check_the_simulated_cpu_changes_bytes(tiny_store, tmp_path, monkeypatch):
    """The test above has teeth: serving through every compiled shape on that CPU does change a grid's bytes."""
    monkeypatch.setattr(
        app.serving.registry, "compile_shapes", tail_kernel_compile(app.serving.registry.compile_shapes)
    )
    monkeypatch.setattr(app.serving.registry, "check_shapes", lambda fns, dim, **_: ShapeCheck(tuple(sorted(fns)), {}))
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
        return await asyncio.gather(*(entry.decoder.batcher.decode(z, encode) for entry, z in jobs))

    batched = client.portal.call(together)
    alone = [encode(entry.decoder.decode_now(z)) for entry, z in jobs]
    assert [i for i, (a, b) in enumerate(zip(alone, batched)) if a != b] == []


@pytest.mark.parametrize("decoders", [1, 2])
def test_a_models_batches_run_side_by_side_on_its_decode_threads(decoders):
    """With two decode threads a second batch of the same model starts while the first is still decoding (each call
    on one core); with one it waits. Gated, not timed: the first decode holds until the test lets it go."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from app.serving.predict import Batcher

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


def test_a_lone_batch_is_cut_only_when_its_pieces_finish_sooner():
    for buckets in (SHAPES, WITH_TAILS, (1, 4, 12, 16, 24, 48, 64), (16,)):
        for ways in (1, 2, 3):
            for n in range(1, 140):
                pieces = split_rows(n, buckets, ways)
                assert sum(pieces) == n and len(pieces) <= ways and min(pieces) >= 1
                if len(pieces) > 1:
                    assert max(pieces) - min(pieces) <= 1
                    assert max(_work(_cheapest_split(p, buckets)) for p in pieces) < _work(_cheapest_split(n, buckets))
    assert split_rows(16, (1, 4, 12, 16, 24, 48, 64), 2) == [8, 8]
    assert split_rows(12, (1, 4, 12, 16, 24, 48, 64), 2) == [12]  # two 6-row pieces would each be a 12-row call
    assert split_rows(1, WITH_TAILS, 2) == [1]


def test_a_lone_batch_is_decoded_in_pieces_side_by_side_and_comes_back_in_order():
    """Both pieces are in their decode calls at once (gated, not timed), and the rows come back in the batch's order;
    with a decode thread busy the batch goes whole."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from app.serving.predict import Batcher

    both, calls = threading.Barrier(2, timeout=10), []

    def decode_now(z):
        calls.append(len(z))
        if len(z) == 8:
            both.wait()  # each 8-row piece waits for the other: a deadlock unless they run side by side
        return z[:, :1] * 2

    executor, render = ThreadPoolExecutor(2), ThreadPoolExecutor(1)
    in_flight = [0]
    batcher = Batcher(decode_now, executor, render, 0.0, 64, lambda n: None, in_flight, 2, lambda n, w: [n // w] * w)
    z = np.arange(16 * 3, dtype=np.float32).reshape(16, 3)
    try:
        alone = asyncio.run(batcher.decode(z))
        in_flight[0] = 1  # another model's batch holds one decode thread
        busy = asyncio.run(batcher.decode(z[:10]))
    finally:
        executor.shutdown()
        render.shutdown()
    assert calls == [8, 8, 10]
    assert alone.ravel().tolist() == (z[:, 0] * 2).tolist() and busy.ravel().tolist() == (z[:10, 0] * 2).tolist()


@pytest.mark.slow  # loads the models without the shared registry
def test_a_lone_grid_cut_over_the_decode_threads_has_the_bytes_of_one_call(uncached_client):
    """On this CPU and the simulated one: every model's lone 16–64-row batches really are cut, and give the bytes of
    the same latents decoded in one planned call."""
    _, client = uncached_client
    registry = client.app.state.registry
    rng = np.random.default_rng(5)
    for name in registry.available():
        entry = registry.get(name)
        calls, decode_now = [], entry.decoder.batcher.decode_now
        entry.decoder.batcher.decode_now = lambda z, decode_now=decode_now, calls=calls: (
            calls.append(len(z)) or decode_now(z)
        )
        for n in (16, 25, 64):
            z = latents_from_seed(int(rng.integers(0, 2**32 - 1)), n, entry.latent_dim)
            if entry.classes:
                z = with_labels(z, rng.integers(0, entry.classes, n), entry.classes)
            calls.clear()
            cut = client.portal.call(entry.decoder.batcher.decode, z)
            assert len(calls) == 2 and sum(calls) == n, (name, n, calls)
            assert np.array_equal(cut, entry.decoder.decode_now(z)), (name, n)


# The larger shapes are checked after the model serves, and join its serving group only with the same rows.


def test_larger_shapes_are_left_pending_then_join_only_when_exact_and_agreeing():
    shifted = lambda z: exact(z) + np.float32(1e-6)  # noqa: E731 - rounds another way than `exact`
    fns = {1: exact, 4: exact, 12: exact, 16: exact, 24: exact, 32: tail_kernel(exact, 32), 48: shifted, 64: exact}
    first = check_shapes(fns, 3)
    assert first.serving == (1, 4, 12, 16) and first.pending == (24, 32, 48, 64) and first.rejected == {}
    settled = join_shapes(fns, 3, first)
    assert settled.serving == (1, 4, 12, 16, 24, 64) and settled.pending == ()
    assert settled.rejected[32].startswith("position-dependent")
    assert settled.rejected[48].startswith("exact, but its rows differ") and "1, 4, 12, 16" in settled.rejected[48]


def test_with_no_exact_small_shape_every_shape_is_checked_before_serving():
    mixing = lambda z: exact(z) + np.float32(1e-3) * z.mean(axis=0)  # noqa: E731 - a row depends on its batch-mates
    fns = {4: mixing, 24: exact}
    check = check_shapes(fns, 3)
    assert check.serving == (24,) and check.pending == () and check.rejected[4].startswith("batch-mate-dependent")


@pytest.mark.slow  # loads the models without the shared registry
def test_the_service_is_ready_before_its_larger_shapes_are_checked_and_their_bytes_agree(
    tiny_store, tmp_path, monkeypatch
):
    """Gated, not timed: the late checks wait for the test. Meanwhile /readyz says 200 and lists the pending shapes,
    a 48-image grid runs as smaller calls; once they join, the same grid has the same bytes from one 48-row call.
    The late checks run at the lowest CPU priority."""
    import threading

    import app.serving.shapes

    gate, priorities = threading.Event(), []

    def gated_join(fns, dim, check):
        priorities.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        assert gate.wait(60)
        return app.serving.shapes.join_shapes(fns, dim, check)

    monkeypatch.setattr(app.serving.registry, "join_shapes", gated_join)
    with make_client(tiny_store, tmp_path, shared=False, cache_bytes=0, decode_threads=2) as client:
        try:
            wait_ready(client, settled=False)
            ready = client.get("/readyz")
            assert ready.status_code == 200
            model = client.app.state.registry.available()[0]
            pending = ready.json()["models"][model]["batch_shapes_pending"]
            assert pending == [24, 48, 64] and max(ready.json()["models"][model]["batch_shapes"]) == 16
            assert plan(48, client.app.state.registry.get(model).decoder.buckets) == [16, 16, 16]
            params = {"model": model, "seed": 77, "n": 48}
            before = client.post("/generate", params=params).content
        finally:
            gate.set()
        wait_ready(client)
        after_shapes = client.get("/readyz").json()["models"][model]
        entry = client.app.state.registry.get(model)
        assert plan(48, entry.decoder.buckets) == [
            48
        ]  # the grid below is one 48-row call now, three 16-row calls before
        assert {24, 48, 64} <= set(after_shapes["batch_shapes"]) and after_shapes["batch_shapes_pending"] == []
        assert client.post("/generate", params=params).content == before
    assert priorities and all(p == 19 for p in priorities)
