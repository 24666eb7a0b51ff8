"""The setup stage: the registry finds every generator in the models store, reads its catalogue record
(app/serving/catalogue.py), builds its onnxruntime session, has its batch shapes checked (app/serving/shapes.py)
and gives it a decoder with a batcher (app/serving/decoder.py, app/serving/predict.py)."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable

import numpy as np

from app.core.settings import DEFAULT_BUCKETS
from app.serving.catalogue import KNOWN_MODELS, ModelEntry
from app.serving.decoder import Decoder
from app.serving.predict import Batcher
from app.serving.shapes import (
    ModelUnavailable,
    ShapeCheck,
    check_shapes,
    compile_shapes,
    join_shapes,
    split_rows,
)
from arena.records import (
    SERVED,
    ManifestError,
    RecordError,
    generator_file,
    read_manifest,
    read_metrics,
    verify_files,
)

log = logging.getLogger("arena.registry")


class Registry:
    def __init__(
        self,
        store: Path,
        buckets: tuple[int, ...] = DEFAULT_BUCKETS,
        window_s: float = 0.012,
        max_batch: int = 64,
        observe: Callable[[str, int], None] | None = None,
        decoders: int = 0,
    ):
        self.store = Path(store)
        self.buckets = tuple(sorted(set(buckets)))
        self.window_s, self.max_batch = window_s, max_batch
        # Decode threads, one per core by default, each call on one core (see Batcher); 1 = one call on all cores.
        self.decoders = decoders or len(os.sched_getaffinity(0))
        self.executor = ThreadPoolExecutor(max_workers=self.decoders, thread_name_prefix="decode")
        self.render_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        # The larger batch shapes are checked once the service is ready, at the lowest CPU priority (see load_all).
        self.late_checker = ThreadPoolExecutor(
            max_workers=self.decoders, thread_name_prefix="late-check", initializer=_lowest_priority
        )
        self.late_checks: list[Future] = []
        self.observers: list[Callable[[str, int], None]] = (
            [observe] if observe else []
        )  # told (model, batch size) of every decode call
        self.entries: dict[str, ModelEntry] = {}
        self.in_flight = [0]
        self.loaded = False
        self.replicate_statistics: dict[str, Any] | None = None
        self.discover()

    def discover(self) -> None:
        """List every model folder (and every variant of the table, present or not) before anything is loaded."""
        names = set(KNOWN_MODELS)
        if self.store.is_dir():
            names |= {p.name for p in self.store.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
        self.entries = {n: ModelEntry(n) for n in sorted(names)}

    def load_all(self) -> None:
        """Load and warm every model; a failure marks that model unavailable and moves on.

        Loading a model (its files hashed, its onnxruntime session built) and checking its shapes (kernels, which
        release the GIL) overlap: models are checked on other threads, one per decode thread, while the next ones
        load. Each model turns ready as soon as its own check is done; the check's results do not depend on it.
        Only the batch shapes up to FIRST_CHECK_MAX are checked before ready (about a quarter of the work with the
        default shapes); the larger ones are checked afterwards, at the lowest CPU priority, and join the serving
        shapes when their rows are the served rows (meanwhile a larger batch runs as several smaller calls, with the
        same bytes). `/readyz` lists those still pending.
        """
        self.load_replicate_statistics()
        compiled: dict[str, dict[int, Callable]] = {}  # each model's calls, every shape: the late checks use them
        with ThreadPoolExecutor(max_workers=self.decoders, thread_name_prefix="shape-check") as checker:
            checks = []
            for entry in self.entries.values():
                t0 = time.perf_counter()
                try:
                    fns = self._prepare(entry)
                except Exception as e:  # noqa: BLE001 (_settle says which)
                    self._settle(entry, t0, e)
                    continue
                compiled[entry.name] = fns
                checks.append(checker.submit(self._check_and_settle, entry, fns, t0))
            for check in checks:
                check.result()
        self.loaded = True
        self.late_checks = [
            self.late_checker.submit(self._join, self.entries[name], fns)
            for name, fns in compiled.items()
            if self.entries[name].status == "ready" and self.entries[name].decoder.shape_check.pending
        ]

    def shapes_settled(self, timeout: float | None = None) -> bool:
        """Wait for the late shape checks (at most `timeout` seconds); whether all are done."""
        done, pending = wait(self.late_checks, timeout)
        return not pending

    def _join(self, entry: ModelEntry, fns: dict[int, Callable]) -> None:
        check = entry.decoder.shape_check
        try:
            joined = join_shapes(fns, entry.input_dim, check)
        except Exception as e:  # noqa: BLE001 - the model keeps serving through the shapes already checked
            why = f"not checked: {type(e).__name__}: {str(e)[:200]}"
            joined = ShapeCheck(check.serving, {**check.rejected, **{s: why for s in check.pending}}, ())
        for shape in check.pending:
            if shape in joined.rejected:
                self._log_rejected(entry, shape, joined.rejected[shape])
        entry.decoder.serve_through(fns, joined)
        _release_free_memory()

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
        log.info(
            json.dumps(
                {
                    "event": "model_load",
                    "model": entry.name,
                    "status": entry.status,
                    "reason": entry.reason,
                    "seconds": entry.load_seconds,
                }
            )
        )

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
            raise ModelUnavailable(
                f"not trained yet: no folder {entry.name}/ in the models "
                f"store (deconv-arena train --variant {entry.name})"
            )
        entry.manifest = read_manifest(model_dir)
        if entry.manifest["name"] != entry.name:
            raise ModelUnavailable(f"manifest names {entry.manifest['name']!r}, folder is {entry.name!r}")
        verify_files(model_dir, entry.manifest)
        if SERVED not in entry.manifest["files"]:
            raise ModelUnavailable(
                f"its manifest lists no {SERVED} (the served ONNX export); run `deconv-arena export {entry.name}` "
                "where TensorFlow is installed"
            )
        try:
            metrics = read_metrics(model_dir, missing_ok=True)
        except RecordError as e:  # served without its figures, and the log says why
            log.warning("%s: its metrics are not shown: %s", entry.name, e)
            metrics = {}
        entry.metrics = (
            metrics
            if metrics
            and metrics.get("generator_sha256") == entry.manifest["files"].get(generator_file(entry.manifest))
            else None
        )
        if (model_dir / "reconstruction_latents.npy").is_file():
            entry.recon_latents = np.load(model_dir / "reconstruction_latents.npy").astype(np.float32)
            entry.recon_digits = np.load(model_dir / "reconstruction_digits.npy")
        threads = 1 if self.decoders > 1 else 0
        return compile_shapes(model_dir / SERVED, entry.input_dim, set(self.buckets), threads=threads)

    def _check(self, entry: ModelEntry, fns: dict[int, Callable]) -> None:
        """Keep the traced shapes in which a latent's row never depends on its batch; serve through them."""
        check = check_shapes(fns, entry.input_dim)
        for shape, why in sorted(check.rejected.items()):
            self._log_rejected(entry, shape, why)
        decoder = Decoder(entry.input_dim, entry.manifest["output"], {b: fns[b] for b in check.serving}, check)
        decoder.batcher = Batcher(
            decoder.decode_now,
            self.executor,
            self.render_executor,
            self.window_s,
            self.max_batch,
            lambda n, name=entry.name: self._observe(name, n),
            self.in_flight,
            self.decoders,
            lambda n, ways: split_rows(n, decoder.buckets, ways),
        )
        entry.decoder = decoder

    @staticmethod
    def _log_rejected(entry: ModelEntry, shape: int, why: str) -> None:
        log.warning(json.dumps({"event": "batch_shape_rejected", "model": entry.name, "shape": shape, "why": why}))

    def _observe(self, name: str, n: int) -> None:
        for observer in self.observers:
            observer(name, n)

    @property
    def ready(self) -> bool:
        return self.loaded and all(e.status != "loading" for e in self.entries.values())

    def get(self, name: str) -> ModelEntry:
        return self.entries[name]

    def available(self) -> list[str]:
        return [n for n, e in self.entries.items() if e.status == "ready"]

    def close(self) -> None:
        self.late_checker.shutdown(wait=True, cancel_futures=True)
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.render_executor.shutdown(wait=True, cancel_futures=True)


def _release_free_memory() -> None:
    """Give the heap's free pages back to the system (glibc's malloc_trim): the checks' batches of up to 64 images,
    freed, would otherwise stay resident in the allocator's per-thread arenas."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _lowest_priority() -> None:
    """This thread at the lowest CPU priority (Linux threads have their own), so requests come first."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # not Linux, or not allowed: the checks just compete as equals
        pass


def _read_optional_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
