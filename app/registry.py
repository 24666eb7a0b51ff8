"""Loads every generator in the models store, checks it, and decodes latents in batches off the event loop."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from app.core.images import to_unit
from app.core.manifest import GENERATOR, ManifestError, read_manifest, verify_files

log = logging.getLogger("arena.registry")

KNOWN_MODELS = ("gan_transpose", "gan_upsample", "vae_transpose", "vae_upsample")


class ModelUnavailable(Exception):
    """The model exists in the store but cannot serve (why is in the message)."""


@dataclass
class ModelEntry:
    name: str
    status: str = "loading"  # loading | ready | unavailable
    reason: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    decode_chunk: int = 8
    _fn: Callable | None = None
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

    def decode_now(self, latents: np.ndarray) -> np.ndarray:
        """Images in [0, 1] for latents, always through the same fixed-shape compiled call."""
        chunk = self.decode_chunk
        n = len(latents)
        padded = np.zeros((-(-n // chunk) * chunk, self.latent_dim), np.float32)
        padded[:n] = latents
        parts = [self._fn(padded[i : i + chunk]).numpy() for i in range(0, len(padded), chunk)]
        return to_unit(np.concatenate(parts)[:n], self.manifest["output"])

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "family": m.get("family"),
            "upsampling": m.get("upsampling"),
            "latent_dim": m.get("latent_dim"),
            "version": self.version if m else None,
            "params": (m.get("params") or {}).get("total"),
            "epochs_done": m.get("epochs_done"),
            "paper_epochs": m.get("paper_epochs"),
            "seconds_per_epoch": m.get("seconds_per_epoch_mean"),
            "created_at": m.get("created_at"),
            "metrics": self.metrics,
        }


class Batcher:
    """Batches concurrent decode requests for one model into one call.

    Everything queued while the executor was busy goes in one batch, and while it is still busy the batch waits up
    to the window for more (bounded by max_batch); an idle executor gets the request at once.
    """

    def __init__(self, entry: ModelEntry, executor: ThreadPoolExecutor, window_s: float, max_batch: int, observe: Callable[[int], None], in_flight: list[int]):
        self.entry, self.executor, self.window_s, self.max_batch, self.observe = entry, executor, window_s, max_batch, observe
        self.in_flight = in_flight  # decodes running on the shared executor, all models
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None

    async def decode(self, latents: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._run())
        future = loop.create_future()
        await self._queue.put((latents, future))
        return await future

    async def _collect(self) -> list[tuple[np.ndarray, asyncio.Future]]:
        loop = asyncio.get_running_loop()
        items = [await self._queue.get()]
        total, deadline = len(items[0][0]), loop.time() + self.window_s
        while total < self.max_batch:
            if self._queue.empty():
                if not self.in_flight[0]:
                    break  # the executor is idle: waiting for company would only add latency
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

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._collect()
            live = [(z, f) for z, f in items if not f.done()]
            if not live:
                continue
            latents = np.concatenate([z for z, _ in live])
            self.observe(len(latents))
            self.in_flight[0] += 1
            try:
                images = await loop.run_in_executor(self.executor, self.entry.decode_now, latents)
            except Exception as e:  # a model failing at run time must not kill the worker
                for _, f in live:
                    if not f.done():
                        f.set_exception(e)
                continue
            finally:
                self.in_flight[0] -= 1
            start = 0
            for z, f in live:
                if not f.done():
                    f.set_result(images[start : start + len(z)])
                start += len(z)


class Registry:
    def __init__(self, store: Path, decode_chunk: int = 8, window_s: float = 0.002, max_batch: int = 64, observe: Callable[[str, int], None] | None = None):
        self.store = Path(store)
        self.decode_chunk, self.window_s, self.max_batch = decode_chunk, window_s, max_batch
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode")
        self._observe = observe or (lambda _m, _n: None)
        self.entries: dict[str, ModelEntry] = {}
        self.in_flight = [0]
        self.loaded = False
        self.discover()

    def discover(self) -> None:
        """List every model folder (and the four known names) before anything is loaded."""
        names = set(KNOWN_MODELS)
        if self.store.is_dir():
            names |= {p.name for p in self.store.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
        self.entries = {n: ModelEntry(n, decode_chunk=self.decode_chunk) for n in sorted(names)}

    def load_all(self) -> None:
        """Load and warm every model; a failure marks that model unavailable and moves on."""
        for entry in self.entries.values():
            t0 = time.perf_counter()
            try:
                self._load(entry)
                entry.status, entry.reason = "ready", None
            except (ManifestError, ModelUnavailable) as e:
                entry.status, entry.reason = "unavailable", str(e)
            except Exception as e:  # a corrupt .keras file raises anything
                entry.status, entry.reason = "unavailable", f"failed to load: {type(e).__name__}: {str(e)[:200]}"
            entry.load_seconds = round(time.perf_counter() - t0, 3)
            log.info(json.dumps({"event": "model_load", "model": entry.name, "status": entry.status, "reason": entry.reason, "seconds": entry.load_seconds}))
        self.loaded = True

    def _load(self, entry: ModelEntry) -> None:
        model_dir = self.store / entry.name
        if not model_dir.is_dir():
            raise ModelUnavailable(f"not trained yet: no folder {entry.name}/ in the models store")
        entry.manifest = read_manifest(model_dir)
        if entry.manifest["name"] != entry.name:
            raise ModelUnavailable(f"manifest names {entry.manifest['name']!r}, folder is {entry.name!r}")
        verify_files(model_dir, entry.manifest)
        metrics = _read_optional_json(model_dir / "metrics.json")
        entry.metrics = metrics if metrics and metrics.get("generator_sha256") == entry.manifest["files"].get(GENERATOR) else None
        if (model_dir / "reconstruction_latents.npy").is_file():
            entry.recon_latents = np.load(model_dir / "reconstruction_latents.npy").astype(np.float32)
            entry.recon_digits = np.load(model_dir / "reconstruction_digits.npy")
        entry._fn = _compiled(model_dir / GENERATOR, entry.latent_dim, self.decode_chunk)
        entry.decode_now(np.zeros((1, entry.latent_dim), np.float32))  # warm-up: traces the one signature
        entry.batcher = Batcher(entry, self.executor, self.window_s, self.max_batch, lambda n, name=entry.name: self._observe(name, n), self.in_flight)

    @property
    def ready(self) -> bool:
        return self.loaded and all(e.status != "loading" for e in self.entries.values())

    def get(self, name: str) -> ModelEntry:
        return self.entries[name]

    def available(self) -> list[str]:
        return [n for n, e in self.entries.items() if e.status == "ready"]

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def _compiled(path: Path, latent_dim: int, chunk: int) -> Callable:
    """A tf.function with one fixed input shape: every row's pixels are independent of what it is batched with."""
    import keras
    import tensorflow as tf

    model = keras.saving.load_model(path, compile=False)
    if tuple(model.input_shape[1:]) != (latent_dim,):
        raise ModelUnavailable(f"generator takes input {model.input_shape}, manifest says latent_dim {latent_dim}")

    @tf.function(input_signature=[tf.TensorSpec([chunk, latent_dim], tf.float32)], autograph=False)
    def generate(z):
        return model(z, training=False)

    return generate


def _read_optional_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
