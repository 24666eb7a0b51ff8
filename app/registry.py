"""Loads every generator in the models store, checks it, and decodes latents in batches off the event loop."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from arena.images import to_unit
from arena.latents import latents_from_seed
from app.core.settings import DEFAULT_BUCKETS
from arena.manifest import GENERATOR, ManifestError, read_manifest, verify_files

log = logging.getLogger("arena.registry")

from arena.variants import VARIANTS

KNOWN_MODELS = tuple(VARIANTS)


def architecture(name: str, manifest: dict[str, Any]) -> str:
    """How a model upsamples, in words: the variant table's description, else the manifest's."""
    if name in VARIANTS:
        return VARIANTS[name].describe()
    return manifest.get("architecture") or manifest.get("upsampling") or "unknown"

# Batch shapes each model is compiled for, as TF Serving's allowed_batch_sizes. At warm-up `check_shapes` keeps
# those whose rows are exact; a request is padded to the smallest kept shape that holds it, and more than the
# largest runs in pieces of the largest. 12, 24 and 48 are multiples of the 6-row GEMM micro-kernel some CPUs use;
# 8 and 32 are left out: on such CPUs their last two rows take another kernel, and 16 + 16 covers 32 anyway.

PROBE_SEED = 0x5EED
CALL_OVERHEAD_ROWS = 4  # a model call's fixed cost, in rows of work, for choosing among exact shape sets


@dataclass(frozen=True)
class ShapeCheck:
    """Which compiled batch shapes a model serves through, and why each other one is not used."""

    serving: tuple[int, ...]
    rejected: dict[int, str]

    def as_dict(self) -> dict[str, Any]:
        return {"serving": list(self.serving), "rejected": {str(s): why for s, why in sorted(self.rejected.items())}}


class ModelUnavailable(Exception):
    """The model exists in the store but cannot serve (why is in the message)."""


@dataclass
class ModelEntry:
    name: str
    status: str = "loading"  # loading | ready | unavailable
    reason: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    replicates: dict[str, Any] | None = None  # {profile: mean, interval and per-seed values of each metric} (replicates.json)
    comparisons: list[dict[str, Any]] = field(default_factory=list)  # paired differences and verdicts this model is in
    shape_check: ShapeCheck | None = None
    _fns: dict[int, Callable] = field(default_factory=dict)
    batcher: "Batcher | None" = None
    recon_latents: np.ndarray | None = None
    recon_digits: np.ndarray | None = None
    load_seconds: float | None = None

    @property
    def family(self) -> str | None:
        return self.manifest.get("family")

    @property
    def latent_dim(self) -> int:
        return int(self.manifest["latent_dim"])

    @property
    def version(self) -> str:
        """The generator's SHA-256 prefix: a grid for a seed never changes within a version."""
        return self.manifest.get("files", {}).get(GENERATOR, "unknown")[:16]

    @property
    def buckets(self) -> tuple[int, ...]:
        """The batch shapes this model serves through (none before it is loaded)."""
        return tuple(sorted(self._fns))

    @property
    def rejected_shapes(self) -> dict[str, str] | None:
        """Each compiled shape this model does not serve through, with why (none before it is loaded)."""
        return self.shape_check.as_dict()["rejected"] if self.shape_check else None

    def decode_now(self, latents: np.ndarray) -> np.ndarray:
        """Images in [0, 1] for latents, through the fixed-shape compiled calls (see `plan`)."""
        return to_unit(_run_planned(self._fns, self.buckets, latents, self.latent_dim), self.manifest["output"])

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "family": m.get("family") or (VARIANTS[self.name].family if self.name in VARIANTS else None),
            "upsampling": m.get("upsampling") or (VARIANTS[self.name].upsampling if self.name in VARIANTS else None),
            "architecture": architecture(self.name, m),
            "latent_dim": m.get("latent_dim"),
            "version": self.version if m else None,
            "batch_shapes": list(self.buckets) or None,
            "rejected_batch_shapes": self.rejected_shapes,
            "params": (m.get("params") or {}).get("total"),
            "epochs_done": m.get("epochs_done"),
            "paper_epochs": m.get("paper_epochs"),
            "seconds_per_epoch": m.get("seconds_per_epoch_mean"),
            "created_at": m.get("created_at"),
            "metrics": self.metrics,
            "replicates": self.replicates,
            "comparisons": self.comparisons,
        }


class Batcher:
    """Batches concurrent decode requests for one model into one call.

    Everything queued while the model thread was busy goes in one batch; while it is still busy the batch waits up
    to the window for more (bounded by max_batch). An idle model thread takes a batch at once when it holds as many
    requests as the last one did (a lone request after a lone one goes straight away), else waits up to the window
    for that company: under load, clients answered together come back together. Each request may bring a `finish`
    step (render and encode its PNG); those run on a second thread, so the model thread is free for the next batch
    as soon as its decode is done (for single images the finish steps cost more than the decode).
    """

    def __init__(self, entry: ModelEntry, executor: ThreadPoolExecutor, render_executor: ThreadPoolExecutor, window_s: float, max_batch: int, observe: Callable[[int], None], in_flight: list[int]):
        self.entry, self.executor, self.render_executor = entry, executor, render_executor
        self.window_s, self.max_batch, self.observe = window_s, max_batch, observe
        self.in_flight = in_flight  # decodes running on the shared model thread, all models
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._last_batch_requests = 1

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
                if not self.in_flight[0] and len(items) >= self._last_batch_requests:
                    break  # the model is idle and the batch has the company the last one had
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
        while True:
            items = await self._collect()
            live = [item for item in items if not item[2].done()]
            if not live:
                continue
            self._last_batch_requests = len(live)
            self.observe(sum(len(z) for z, _, _ in live))
            self.in_flight[0] += 1
            try:
                images = await loop.run_in_executor(self.executor, self.entry.decode_now, np.concatenate([z for z, _, _ in live]))
            except Exception as e:  # a model failing at run time must not kill the worker
                self._deliver(live, [(False, e)] * len(live))
                continue
            finally:
                self.in_flight[0] -= 1
            rendering = loop.run_in_executor(self.render_executor, self._finish, live, images)
            rendering.add_done_callback(lambda done, live=live: self._deliver(live, done.result() if not done.exception() else [(False, done.exception())] * len(live)))


class Registry:
    def __init__(
        self, store: Path, buckets: tuple[int, ...] = DEFAULT_BUCKETS, window_s: float = 0.012, max_batch: int = 64,
        observe: Callable[[str, int], None] | None = None,
    ):
        self.store = Path(store)
        self.buckets = tuple(sorted(set(buckets)))
        self.window_s, self.max_batch = window_s, max_batch
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode")
        self.render_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self._observe = observe or (lambda _m, _n: None)
        self.entries: dict[str, ModelEntry] = {}
        self.in_flight = [0]
        self.loaded = False
        self.replicate_statistics: dict[str, Any] | None = None
        self.discover()

    def discover(self) -> None:
        """List every model folder (and the four known names) before anything is loaded."""
        names = set(KNOWN_MODELS)
        if self.store.is_dir():
            names |= {p.name for p in self.store.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
        self.entries = {n: ModelEntry(n) for n in sorted(names)}

    def load_all(self) -> None:
        """Load and warm every model; a failure marks that model unavailable and moves on.

        Loading a model (Keras, tracing: Python holding the GIL) and checking its shapes (TensorFlow kernels, which
        release it) overlap: model k is checked on another thread while model k+1 loads (9 models: 6.2 s -> 4.4 s
        here). Each model turns ready as soon as its own check is done; the check's results do not depend on it.
        """
        self.load_replicate_statistics()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shape-check") as checker:
            checks = []
            for entry in self.entries.values():
                t0 = time.perf_counter()
                try:
                    fns = self._prepare(entry)
                except Exception as e:  # noqa: BLE001 (_settle says which)
                    self._settle(entry, t0, e)
                    continue
                checks.append(checker.submit(self._check_and_settle, entry, fns, t0))
            for check in checks:
                check.result()
        self.loaded = True

    def _check_and_settle(self, entry: ModelEntry, fns: dict[int, Callable], t0: float) -> None:
        try:
            self._check(entry, fns)
        except Exception as e:  # noqa: BLE001 (_settle says which)
            self._settle(entry, t0, e)
        else:
            self._settle(entry, t0, None)

    def _settle(self, entry: ModelEntry, t0: float, error: BaseException | None) -> None:
        if error is None:
            entry.status, entry.reason = "ready", None
        elif isinstance(error, (ManifestError, ModelUnavailable)):
            entry.status, entry.reason = "unavailable", str(error)
        else:  # a corrupt .keras file raises anything
            entry.status, entry.reason = "unavailable", f"failed to load: {type(error).__name__}: {str(error)[:200]}"
        entry.load_seconds = round(time.perf_counter() - t0, 3)
        log.info(json.dumps({"event": "model_load", "model": entry.name, "status": entry.status, "reason": entry.reason, "seconds": entry.load_seconds}))

    def load_replicate_statistics(self) -> None:
        """Across-seed statistics written by `train --seeds` / `evaluate --replicates`, if any."""
        self.replicate_statistics = _read_optional_json(self.store / "replicates.json")
        stats = self.replicate_statistics or {}
        for name, entry in self.entries.items():
            entry.replicates = (stats.get("models") or {}).get(name)
            entry.comparisons = [c for c in stats.get("comparisons", []) if name in (c["a"], c["b"])]

    def _prepare(self, entry: ModelEntry) -> dict[int, Callable]:
        """Manifest, files, metrics, and the generator compiled for every batch shape (not yet checked)."""
        model_dir = self.store / entry.name
        if not model_dir.is_dir():
            raise ModelUnavailable(f"not trained yet: no folder {entry.name}/ in the models store (deconv-arena train --variant {entry.name})")
        entry.manifest = read_manifest(model_dir)
        if entry.manifest["name"] != entry.name:
            raise ModelUnavailable(f"manifest names {entry.manifest['name']!r}, folder is {entry.name!r}")
        verify_files(model_dir, entry.manifest)
        metrics = _read_optional_json(model_dir / "metrics.json")
        entry.metrics = metrics if metrics and metrics.get("generator_sha256") == entry.manifest["files"].get(GENERATOR) else None
        if (model_dir / "reconstruction_latents.npy").is_file():
            entry.recon_latents = np.load(model_dir / "reconstruction_latents.npy").astype(np.float32)
            entry.recon_digits = np.load(model_dir / "reconstruction_digits.npy")
        return compile_shapes(model_dir / GENERATOR, entry.latent_dim, set(self.buckets))

    def _check(self, entry: ModelEntry, fns: dict[int, Callable]) -> None:
        """Keep the traced shapes in which a latent's row never depends on its batch; serve through them."""
        entry.shape_check = check_shapes(fns, entry.latent_dim)
        for shape, why in sorted(entry.shape_check.rejected.items()):
            log.warning(json.dumps({"event": "batch_shape_rejected", "model": entry.name, "shape": shape, "why": why}))
        entry._fns = {b: fns[b] for b in entry.shape_check.serving}
        entry.batcher = Batcher(entry, self.executor, self.render_executor, self.window_s, self.max_batch, lambda n, name=entry.name: self._observe(name, n), self.in_flight)

    @property
    def ready(self) -> bool:
        return self.loaded and all(e.status != "loading" for e in self.entries.values())

    def get(self, name: str) -> ModelEntry:
        return self.entries[name]

    def available(self) -> list[str]:
        return [n for n, e in self.entries.items() if e.status == "ready"]

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.render_executor.shutdown(wait=True, cancel_futures=True)


def plan(n: int, buckets: tuple[int, ...]) -> list[int]:
    """The compiled shapes that decode n latents with the least work: rows computed, padding included, plus a fixed
    cost per call (CALL_OVERHEAD_ROWS). With shapes 12–64, 25 latents are 16 + 12 rather than 48 padded rows.

    Any split is exact: a model serves only through shapes whose rows agree, whatever their position.
    """
    return list(_cheapest_split(n, tuple(sorted(buckets))))


@lru_cache(maxsize=4096)
def _cheapest_split(n: int, buckets: tuple[int, ...]) -> tuple[int, ...]:
    largest = buckets[-1]
    if n > 2 * largest:  # beyond two calls of the largest, whole pieces of it are the cheapest start
        return (largest,) + _cheapest_split(n - largest, buckets)
    best: tuple[int, ...] | None = None
    for shape in buckets:  # the first call's shape; the rest is split the same way
        rest = () if shape >= n else _cheapest_split(n - shape, buckets)
        candidate = tuple(sorted((shape, *rest), reverse=True))
        if best is None or (_work(candidate), len(candidate)) < (_work(best), len(best)):
            best = candidate
    return best


def _work(shapes: tuple[int, ...]) -> int:
    return sum(shapes) + CALL_OVERHEAD_ROWS * len(shapes)


def _run_planned(fns: dict[int, Callable], buckets: tuple[int, ...], latents: np.ndarray, latent_dim: int) -> np.ndarray:
    n, start, parts = len(latents), 0, []
    for shape in plan(n, buckets):
        piece = np.zeros((shape, latent_dim), np.float32)
        take = latents[start : start + shape]
        piece[: len(take)] = take
        parts.append(np.asarray(fns[shape](piece)))
        start += shape
    return np.concatenate(parts)[:n]


def check_shapes(fns: dict[int, Callable], latent_dim: int) -> ShapeCheck:
    """The compiled shapes to serve through: exact ones that agree with each other, at the least padded cost.

    A CPU's GEMM kernels tile a batch into blocks of rows and may compute the rows past the last whole block with
    another kernel, in another summation order: a latent's output can then depend on where it sits in the batch,
    and each shape can round differently from the others. A shape is exact when its rows are the same twice, when
    a latent gives the same row at every position (probes shifted by one place link all positions in a chain) and
    whatever its batch-mates are (zero padding included). Exact shapes are grouped by the rows they give for the
    same latents; a model serves through one group, so a latent's pixels never depend on what it was batched with.
    Kernels choose their path by shape, not by value, so probes settle it for this machine and thread count.
    """
    shapes = sorted(fns)
    probe = latents_from_seed(PROBE_SEED, max(shapes), latent_dim)  # distinct latents, one per position
    rejected: dict[int, str] = {}
    groups: list[tuple[list[int], np.ndarray]] = []
    sample = probe[:16]
    for shape in shapes:
        rows = fns[shape](probe[:shape])
        fault = _position_fault(fns[shape], probe[:shape], rows)
        if fault:
            rejected[shape] = fault
            continue
        # exact: its rows for the sample latents (these very rows where the shape holds them all) place it in a group
        sample_rows = rows[:16] if shape >= 16 else _run_planned(fns, (shape,), sample, latent_dim)
        match = next((members for members, reference in groups if np.array_equal(sample_rows, reference)), None)
        if match is None:
            groups.append(([shape], sample_rows))
        else:
            match.append(shape)
    if not groups:
        raise ModelUnavailable(f"no compiled batch shape gives exact rows on this CPU ({'; '.join(f'{s}: {w}' for s, w in rejected.items())})")
    best = min((tuple(members) for members, _ in groups), key=lambda g: (serving_cost(g), -len(g)))
    for members, _ in groups:
        if tuple(members) != best:
            for shape in members:
                rejected[shape] = f"exact, but its rows differ in the last bits from those of shapes {', '.join(map(str, best))}, which serve at less cost"
    return ShapeCheck(best, rejected)


def _position_fault(fn: Callable, probe: np.ndarray, rows: np.ndarray) -> str | None:
    """Why a shape's rows depend on more than their own latent, or None when they do not (`rows` = fn(probe))."""
    size, half = len(probe), (len(probe) + 1) // 2
    shifted = fn(np.roll(probe, 1, axis=0))  # latent i now at position i + 1, beside other batch-mates
    moves = [i for i in range(size) if not np.array_equal(shifted[(i + 1) % size], rows[i])]
    padded_differs = not np.array_equal(fn(np.concatenate([probe[:half], np.zeros_like(probe[half:])]))[:half], rows[:half])
    if (moves or padded_differs) and not np.array_equal(fn(probe), rows):
        return "not deterministic: the same batch gave different rows twice"
    if moves:
        where = ", ".join(f"{i}→{(i + 1) % size}" for i in moves[:6])
        return f"position-dependent: a latent's row changed when it moved between positions {where} (of 0–{size - 1})"
    if padded_differs:
        return "batch-mate-dependent: rows changed when the other rows were zero padding"
    return None


def serving_cost(shapes: tuple[int, ...], largest_request: int = 64) -> int:
    """Rows computed (padding included) plus a fixed cost per call, summed over request sizes 1..64.

    Deterministic on purpose: the choice must not change between restarts of one machine, or a seed's bytes would.
    """
    return sum(_work(_cheapest_split(n, shapes)) for n in range(1, largest_request + 1))


def compile_shapes(path: Path, latent_dim: int, shapes: set[int]) -> dict[int, Callable]:
    """The model compiled for each batch shape (a tf.function's concrete functions: no retracing, no `predict`)."""
    import keras
    import tensorflow as tf

    import arena.layers  # noqa: F401  (registers the custom layers a generator may use)

    model = keras.saving.load_model(path, compile=False)
    if tuple(model.input_shape[1:]) != (latent_dim,):
        raise ModelUnavailable(f"generator takes input {model.input_shape}, manifest says latent_dim {latent_dim}")

    generate = tf.function(lambda z: model(z, training=False), autograph=False)
    # One concrete function per shape, each with its fixed input signature, traced here once.
    concrete = {shape: generate.get_concrete_function(tf.TensorSpec([shape, latent_dim], tf.float32)) for shape in sorted(shapes)}
    return {shape: (lambda z, fn=fn: fn(tf.constant(z)).numpy()) for shape, fn in concrete.items()}


def _read_optional_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
