"""Serving benchmark: deconv-arena serve vs a naive predict-per-request app, on 127.0.0.1, bounded in count and time.

Prints p50/p99 and requests/s for: uncached 16-image gan_transpose grids, beside the bare compiled model call for
16 latents and a floor app (bench/floor_app.py: raw ASGI, the same call and PNG, nothing else), measured in
interleaved rounds; 32 concurrent clients asking for single images with distinct seeds (httpx, and wrk when
installed); repeated cached grids; plus time to /readyz and resident memory. Targets (2-core CPU): uncached
16-grid p50 ≤ 1.3× the bare call; ≥ 3× the baseline's throughput at 32 clients; cached grids ≥ 1,000 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from common import ROOT, free_port, python, rss_mib, start, summary


class BareCall:
    """The bare compiled model call: gan_transpose compiled for 16 latents exactly as the service compiles it
    (app.registry.compile_shapes), called in this process with nothing around it."""

    def __init__(self, store: Path):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        sys.path.insert(0, str(ROOT))
        from app.registry import compile_shapes

        self.fn = compile_shapes(store / "gan_transpose" / "generator.keras", 100, {16})[16]
        self.z = np.random.default_rng(0).standard_normal((16, 100), dtype=np.float32)
        for _ in range(10):
            self.fn(self.z)

    def times_s(self, count: int) -> list[float]:
        times = []
        for _ in range(count):
            t0 = time.perf_counter()
            self.fn(self.z)
            times.append(time.perf_counter() - t0)
        return times


async def sequential_s(base: str, make_request, indices: range) -> list[float]:
    """One request at a time; seconds each."""
    lat = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        for i in indices:
            s = time.perf_counter()
            r = await make_request(c, i)
            assert r.status_code == 200, r.text[:200]
            lat.append(time.perf_counter() - s)
    return lat


def interleaved_grids(bare: BareCall, service: str, floor: str, rounds: int, per_round: int) -> dict:
    """Bare call, service and floor in alternating rounds, so drift in the machine's speed hits all three alike.

    Each round: `per_round` bare calls; then, per server, `per_round` grids one at a time from httpx (after two
    warm-up requests) and, with wrk installed, two seconds of grids one at a time from wrk (one connection), whose
    latency leaves out the client's own parsing. Every grid has its own seed (uncached).
    """
    grid = lambda c, i: c.post("/generate", params={"model": "gan_transpose", "seed": 10_000 + i, "n": 16})
    servers = {"service": service, "floor": floor}
    bare_p50, p50 = [], {f"{k}_{client}": [] for k in servers for client in ("httpx", "wrk")}
    for r in range(rounds):
        bare_p50.append(float(np.median(bare.times_s(per_round))) * 1000)
        first = r * (per_round + 2)
        for name, base in list(servers.items())[:: 1 if r % 2 == 0 else -1]:  # alternate who goes first
            lat = asyncio.run(sequential_s(base, grid, range(first, first + per_round + 2)))[2:]
            p50[f"{name}_httpx"].append(float(np.median(lat)) * 1000)
            one = wrk(base, 2, args=["gan_transpose", "16", str(5_000_000 + r * 1_000_000)], connections=1)
            if one:
                p50[f"{name}_wrk"].append(one["p50_ms"])
    out = {"bare_call_p50_ms_per_round": [round(x, 2) for x in bare_p50]}
    for key, values in p50.items():
        if values:
            out[f"{key}_p50_ms_per_round"] = [round(x, 2) for x in values]
            out[f"{key}_over_bare_median_of_rounds"] = round(float(np.median(np.asarray(values) / np.asarray(bare_p50))), 2)
    return out


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


def wrk(base: str, seconds: float, path: str = "", args: list[str] | None = None, connections: int = 32) -> dict | None:
    """Load from wrk (a C load generator) when installed: a Python client saturates first, and its own parsing
    costs about a millisecond a response. With `args`, bench/generate.lua makes every request a fresh seed.

    Returns None without wrk; the httpx figures then stand alone.
    """
    if not shutil.which("wrk"):
        return None
    threads = min(2, connections)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s", "--latency"]
    cmd += (["-s", str(ROOT / "bench" / "generate.lua")] if args else []) + [base + path] + (["--", *args] if args else [])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    line = lambda prefix: next(l for l in out.splitlines() if l.strip().startswith(prefix))
    errors = sum(int(n) for l in out.splitlines() if "Non-2xx" in l or "Socket errors" in l for n in l.replace(",", " ").split() if n.isdigit())
    return {
        "rps": float(line("Requests/sec").split()[1]), "p50_ms": _ms(line("50%").split()[1]), "p99_ms": _ms(line("99%").split()[1]),
        "requests": int(next(l for l in out.splitlines() if "requests in" in l).split()[0]),
        "errors": errors, "tool": f"wrk -t{threads} -c{connections}",
    }


def _ms(text: str) -> float:
    """wrk's '15.54ms' / '812.00us' / '1.09s' in milliseconds."""
    for unit, factor in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if text.endswith(unit):
            return round(float(text[: -len(unit)]) * factor, 3)
    raise ValueError(text)


async def drive(base: str, naive: bool, args) -> dict:
    uncached = lambda c, i: c.post("/generate", params={"model": "gan_transpose", "seed": 1_000_000 + i, "n": 16})
    single = lambda c, i: c.post("/generate", params={"model": "gan_transpose", "seed": 20_000 + i, "n": 1})
    out = {"uncached_16_grid": summary(lat := await sequential_s(base, uncached, range(args.grid_requests)), sum(lat))}
    out["single_images_32_clients_httpx"] = await concurrent(base, single, 32, args.seconds, args.max_requests)
    out["single_images_32_clients_wrk"] = wrk(base, args.seconds, args=["gan_transpose", "1", "20000"])
    if not naive:
        cached = lambda c, i: c.get("/models/gan_transpose/grid.png", params={"seed": 1, "n": 16})
        await cached(httpx.AsyncClient(base_url=base), 0)
        out["cached_grid_httpx_32_clients"] = await concurrent(base, cached, 32, args.seconds, args.max_requests * 20)
        out["cached_grid_wrk"] = wrk(base, args.seconds, path="/models/gan_transpose/grid.png?seed=1&n=16")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--store", type=Path, default=ROOT / "models_store")
    p.add_argument("--seconds", type=float, default=15, help="time bound of each concurrent phase")
    p.add_argument("--grid-requests", type=int, default=60, help="uncached 16-grids in the baseline comparison")
    p.add_argument("--rounds", type=int, default=8, help="interleaved rounds of bare call / service / floor")
    p.add_argument("--per-round", type=int, default=25, help="16-grids per server (and bare calls) in a round")
    p.add_argument("--max-requests", type=int, default=2000)
    args = p.parse_args()

    results: dict = {}
    bare = BareCall(args.store)
    gc.collect()
    gc.freeze()  # TensorFlow's ~360,000 objects would otherwise stall the httpx clients in this process for ~230 ms
    db = Path(tempfile.mkdtemp()) / "bench.db"
    port, floor_port = free_port(), free_port()
    env = {"ARENA_MODELS_STORE": str(args.store), "ARENA_PORT": str(port), "ARENA_DATABASE_URL": f"sqlite:///{db}", "ARENA_LOG_LEVEL": "warning"}
    proc, ready_s = start([python(), "-m", "app.cli", "serve"], port, env)
    results["service"] = {"seconds_to_readyz": round(ready_s, 2), "rss_mib_after_warmup": round(rss_mib(proc.pid), 1)}
    floor, _ = start([python(), str(ROOT / "bench" / "floor_app.py"), str(floor_port)], floor_port, {"ARENA_MODELS_STORE": str(args.store)})
    try:
        results["uncached_16_grid_interleaved"] = interleaved_grids(bare, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{floor_port}", args.rounds, args.per_round)
        floor.terminate()
        results["service"].update(asyncio.run(drive(f"http://127.0.0.1:{port}", False, args)))
        results["service"]["rss_mib_after_load"] = round(rss_mib(proc.pid), 1)
    finally:
        for p_ in (proc, floor):
            p_.terminate()
            p_.wait(timeout=60)
    port = free_port()
    proc, ready_s = start([python(), str(ROOT / "bench" / "naive_app.py"), str(port)], port, {"ARENA_MODELS_STORE": str(args.store)})
    try:
        results["baseline_predict_per_request"] = {"seconds_to_ready": round(ready_s, 2), **asyncio.run(drive(f"http://127.0.0.1:{port}", True, args))}
    finally:
        proc.terminate()
        proc.wait(timeout=60)

    s, b, g = results["service"], results["baseline_predict_per_request"], results["uncached_16_grid_interleaved"]
    results["checks"] = {
        "uncached_16_grid_p50_over_bare_call_httpx_client": g["service_httpx_over_bare_median_of_rounds"],
        "uncached_16_grid_p50_over_bare_call_wrk_client": g.get("service_wrk_over_bare_median_of_rounds"),
        "floor_16_grid_p50_over_bare_call_httpx_client": g["floor_httpx_over_bare_median_of_rounds"],
        "floor_16_grid_p50_over_bare_call_wrk_client": g.get("floor_wrk_over_bare_median_of_rounds"),
        "target_uncached_ratio_max": 1.3,
        "throughput_32_clients_vs_baseline_httpx": round(s["single_images_32_clients_httpx"]["rps"] / b["single_images_32_clients_httpx"]["rps"], 2),
        "throughput_32_clients_vs_baseline_wrk": round(s["single_images_32_clients_wrk"]["rps"] / b["single_images_32_clients_wrk"]["rps"], 2) if s["single_images_32_clients_wrk"] else None,
        "target_throughput_ratio_min": 3.0,
        "cached_rps": (s["cached_grid_wrk"] or s["cached_grid_httpx_32_clients"])["rps"],
        "target_cached_rps_min": 1000,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
