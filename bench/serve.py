"""Serving benchmark: deconv-arena serve vs a naive predict-per-request app, on 127.0.0.1, bounded in count and time.

Prints p50/p99 and requests/s for: one uncached 16-image gan_transpose grid (beside the bare compiled model call
for 16 latents, measured here), 32 concurrent clients asking for single images with distinct seeds, and repeated
cached grids; plus time to /readyz and resident memory after warm-up. Targets (2-core CPU): uncached 16-grid p50
≤ 1.3× the bare call; ≥ 3× the baseline's throughput at 32 clients; cached grids ≥ 1,000 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from common import ROOT, free_port, python, rss_mib, start, summary


def bare_call_ms(store: Path, repeats: int = 30) -> float:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    model = keras.saving.load_model(store / "gan_transpose" / "generator.keras", compile=False)
    fn = tf.function(lambda z: model(z, training=False), input_signature=[tf.TensorSpec([16, 100], tf.float32)], autograph=False)
    z = np.random.default_rng(0).standard_normal((16, 100), dtype=np.float32)
    fn(z)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(z).numpy()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


async def sequential(base: str, make_request, count: int) -> dict:
    lat = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        t0 = time.perf_counter()
        for i in range(count):
            s = time.perf_counter()
            r = await make_request(c, i)
            assert r.status_code == 200, r.text[:200]
            lat.append(time.perf_counter() - s)
        return summary(lat, time.perf_counter() - t0)


async def concurrent(base: str, make_request, clients: int, seconds: float, max_requests: int) -> dict:
    lat, counter, errors = [], iter(range(max_requests)), [0]
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def worker(c: httpx.AsyncClient) -> None:
        for i in counter:
            if time.perf_counter() > deadline:
                return
            s = time.perf_counter()
            r = await make_request(c, i)
            if r.status_code != 200:
                errors[0] += 1
            lat.append(time.perf_counter() - s)

    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as c:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for _ in range(clients)))
        result = summary(lat, time.perf_counter() - t0)
    result["errors"] = errors[0]
    return result


def wrk_cached(base: str, seconds: int) -> dict | None:
    """Cached grids with wrk (a C load generator) when installed: a Python client would be the bottleneck."""
    if not shutil.which("wrk"):
        return None
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", f"{base}/models/gan_transpose/grid.png?seed=1&n=16"], capture_output=True, text=True).stdout
    rps = float(next(l for l in out.splitlines() if l.startswith("Requests/sec")).split()[1])
    p50 = next(l for l in out.splitlines() if l.strip().startswith("50%")).split()[1]
    p99 = next(l for l in out.splitlines() if l.strip().startswith("99%")).split()[1]
    non2xx = next((l for l in out.splitlines() if "Non-2xx" in l), "Non-2xx: 0").split()[-1]
    return {"rps": rps, "p50": p50, "p99": p99, "non_2xx": int(non2xx), "tool": "wrk -t2 -c32"}


async def drive(base: str, naive: bool, args) -> dict:
    uncached = lambda c, i: c.post("/generate", params={"model": "gan_transpose", "seed": 10_000 + i, "n": 16})
    single = lambda c, i: c.post("/generate", params={"model": "gan_transpose", "seed": 20_000 + i, "n": 1})
    out = {"uncached_16_grid": await sequential(base, uncached, args.grid_requests)}
    out["single_images_32_clients"] = await concurrent(base, single, 32, args.seconds, args.max_requests)
    if not naive:
        cached = lambda c, i: c.get("/models/gan_transpose/grid.png", params={"seed": 1, "n": 16})
        await cached(httpx.AsyncClient(base_url=base), 0)
        out["cached_grid_httpx_32_clients"] = await concurrent(base, cached, 32, args.seconds, args.max_requests * 20)
        out["cached_grid_wrk"] = wrk_cached(base, int(args.seconds))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--store", type=Path, default=ROOT / "models_store")
    p.add_argument("--seconds", type=float, default=15, help="time bound of each concurrent phase")
    p.add_argument("--grid-requests", type=int, default=30)
    p.add_argument("--max-requests", type=int, default=2000)
    args = p.parse_args()

    results = {"bare_compiled_call_16_ms": round(bare_call_ms(args.store), 2)}
    db = Path(tempfile.mkdtemp()) / "bench.db"
    port = free_port()
    env = {"ARENA_MODELS_STORE": str(args.store), "ARENA_PORT": str(port), "ARENA_DATABASE_URL": f"sqlite:///{db}", "ARENA_LOG_LEVEL": "warning"}
    proc, ready_s = start([python(), "-m", "app.cli", "serve"], port, env)
    results["service"] = {"seconds_to_readyz": round(ready_s, 2), "rss_mib_after_warmup": round(rss_mib(proc.pid), 1)}
    try:
        results["service"].update(asyncio.run(drive(f"http://127.0.0.1:{port}", False, args)))
        results["service"]["rss_mib_after_load"] = round(rss_mib(proc.pid), 1)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    port = free_port()
    proc, ready_s = start([python(), str(ROOT / "bench" / "naive_app.py"), str(port)], port, {"ARENA_MODELS_STORE": str(args.store)})
    try:
        results["baseline_predict_per_request"] = {"seconds_to_ready": round(ready_s, 2), **asyncio.run(drive(f"http://127.0.0.1:{port}", True, args))}
    finally:
        proc.terminate()
        proc.wait(timeout=60)

    s, b = results["service"], results["baseline_predict_per_request"]
    results["checks"] = {
        "uncached_16_grid_p50_over_bare_call": round(s["uncached_16_grid"]["p50_ms"] / results["bare_compiled_call_16_ms"], 2),
        "target_uncached_ratio_max": 1.3,
        "throughput_32_clients_vs_baseline": round(s["single_images_32_clients"]["rps"] / b["single_images_32_clients"]["rps"], 2),
        "target_throughput_ratio_min": 3.0,
        "cached_rps": (s["cached_grid_wrk"] or s["cached_grid_httpx_32_clients"])["rps"],
        "target_cached_rps_min": 1000,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
