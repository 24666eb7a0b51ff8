"""The predict stage: a grid's PNG from the cache, or its latents decoded by the model's batcher — concurrent
requests for one model batched into calls on the decode threads, off the event loop — and rendered beside it."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from app.core.cache import ByteLRU
from app.core.prometheus import Metrics
from app.serving.specs import GridSpec, etag_of
from arena.artefacts import artefact_picture
from arena.images import png_bytes, render_grid

if TYPE_CHECKING:
    from app.serving.catalogue import ModelEntry


class Batcher:
    """Batches concurrent decode requests for one model into one call.

    Everything queued while every decode thread was busy goes in one batch; while they are still busy the batch
    waits up to the window for more (bounded by max_batch). When a decode thread is idle, a batch goes at once when
    it holds as many requests as the last one did (a lone request after a lone one goes straight away), else waits
    up to the window for that company: under load, clients answered together come back together. Up to `decoders`
    batches of one model run at once, one per decode thread (one core each: two single-threaded calls side by side
    decode more rows a second than one call on two cores). A batch that finds every decode thread idle may be cut into
    pieces decoded side by side, one per thread, when `split` says that finishes sooner (a user browsing alone gets a
    16-grid from both cores); the pieces' rows are the batch's rows, as any split over a model's serving shapes is
    exact (app/serving/shapes.py). Each request may bring a `finish` step (render and encode its PNG); those run on
    another thread, so a decode thread is free for the next batch as soon as its decode is done (for single images the
    finish steps cost more than the decode).
    """

    def __init__(
        self,
        decode_now: Callable[[np.ndarray], np.ndarray],
        executor: ThreadPoolExecutor,
        render_executor: ThreadPoolExecutor,
        window_s: float,
        max_batch: int,
        observe: Callable[[int], None],
        in_flight: list[int],
        decoders: int = 1,
        split: Callable[[int, int], list[int]] | None = None,
    ):
        self.decode_now = decode_now
        self.executor, self.render_executor = executor, render_executor
        self.window_s, self.max_batch, self.observe = window_s, max_batch, observe
        self.in_flight = in_flight  # decodes running on the shared decode threads, all models
        self.decoders = decoders  # the decode threads: batches of this model in flight at most
        self.split = split  # (rows, idle decode threads) -> the row counts of the pieces to decode side by side
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._last_batch_requests = 1
        self._decoding: set[asyncio.Task] = set()  # held here: the loop keeps only weak references to tasks

    async def decode(self, latents: np.ndarray, finish: Callable[[np.ndarray], Any] | None = None) -> Any:
        """Images in [0, 1] for `latents`, or what `finish` makes of them."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._run())
        future = loop.create_future()
        self._queue.put_nowait((latents, finish, future))
        return await future

    async def _collect(self) -> list[tuple]:
        loop = asyncio.get_running_loop()
        items = [await self._queue.get()]
        total, deadline = len(items[0][0]), loop.time() + self.window_s
        while total < self.max_batch:
            if self._queue.empty():
                if self.in_flight[0] < self.decoders and len(items) >= self._last_batch_requests:
                    break  # a decode thread is idle and the batch has the company the last one had
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    items.append(await asyncio.wait_for(self._queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            else:
                items.append(self._queue.get_nowait())
            total += len(items[-1][0])
        return items

    @staticmethod
    def _finish(live: list[tuple], images: np.ndarray) -> list[tuple[bool, Any]]:
        """On the render thread: each request's own finish step on its rows of the batch."""
        out, start = [], 0
        for z, finish, _ in live:
            part = images[start : start + len(z)]
            start += len(z)
            try:
                out.append((True, finish(part) if finish else part))
            except Exception as e:  # one request's bad layout must not fail its batch-mates
                out.append((False, e))
        return out

    @staticmethod
    def _deliver(live: list[tuple], results: list[tuple[bool, Any]]) -> None:
        for (_, _, future), (ok, value) in zip(live, results):
            if not future.done():
                future.set_result(value) if ok else future.set_exception(value)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.decoders)
        while True:
            await slots.acquire()
            items = await self._collect()
            live = [item for item in items if not item[2].done()]
            if not live:
                slots.release()
                continue
            self._last_batch_requests = len(live)
            rows = sum(len(z) for z, _, _ in live)
            self.observe(rows)
            idle = self.decoders - self.in_flight[0]
            pieces = self.split(rows, idle) if self.split and idle > 1 else [rows]
            self.in_flight[0] += len(pieces)  # counted before the next collect looks at it
            task = loop.create_task(self._decode(live, pieces))
            self._decoding.add(task)
            task.add_done_callback(lambda done: (self._decoding.discard(done), slots.release()))

    async def _decode(self, live: list[tuple], pieces: list[int]) -> None:
        """One batch on the decode threads (one piece each), then its requests' finish steps on the render thread."""
        loop = asyncio.get_running_loop()
        latents = np.split(np.concatenate([z for z, _, _ in live]), np.cumsum(pieces)[:-1])
        try:
            parts = await asyncio.gather(
                *(loop.run_in_executor(self.executor, self.decode_now, z) for z in latents), return_exceptions=True
            )
            failed = next((part for part in parts if isinstance(part, BaseException)), None)
            if failed is not None:
                raise failed
            images = parts[0] if len(parts) == 1 else np.concatenate(parts)
        except Exception as e:  # a model failing at run time must not kill the worker
            self._deliver(live, [(False, e)] * len(live))
            return
        finally:
            self.in_flight[0] -= len(pieces)
        rendering = loop.run_in_executor(self.render_executor, self._finish, live, images)
        rendering.add_done_callback(
            lambda done, live=live: self._deliver(
                live, done.result() if not done.exception() else [(False, done.exception())] * len(live)
            )
        )


@dataclass
class Grid:
    """What the predict stage hands the encoder: the PNG, its ETag, and where the time went (the Server-Timing
    header, which browsers' developer tools show)."""

    png: bytes
    cached: bool
    decode_ms: float
    render_ms: float
    latents: np.ndarray | None
    etag: str
    server_timing: str


def _server_timing(cached: bool, decode_ms: float, render_ms: float) -> str:
    if cached:
        return 'cache;desc="hit"'
    return f'decode;desc="batched model call";dur={decode_ms:.2f}, render;desc="render and PNG";dur={render_ms:.2f}'


async def make_grid(entry: ModelEntry, spec: GridSpec, cache: ByteLRU, metrics: Metrics) -> Grid:
    """The predict stage: the grid's PNG from the cache, or decoded by the model's batcher and rendered beside it."""
    key = spec.key(entry)
    etag = etag_of(key)
    hit = cache.get(key)
    metrics.cache.labels("hit" if hit is not None else "miss").inc()
    if hit is not None:
        return Grid(hit, True, 0.0, 0.0, None, etag, _server_timing(True, 0.0, 0.0))
    latents = spec.inputs(entry)

    def finish(images: np.ndarray) -> tuple[bytes, float]:  # runs on the render thread, right after the decode
        t = time.perf_counter()
        shown = artefact_picture(images) if spec.view == "artefacts" else images
        return png_bytes(render_grid(shown, spec.nrow, spec.scale, spec.padding)), time.perf_counter() - t

    t0 = time.perf_counter()
    png, render_s = await entry.decoder.batcher.decode(latents, finish)
    decode_ms, render_ms = (time.perf_counter() - t0 - render_s) * 1000, render_s * 1000
    cache.put(key, png)
    return Grid(png, False, decode_ms, render_ms, latents, etag, _server_timing(False, decode_ms, render_ms))
