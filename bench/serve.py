"""Serving benchmark: deconv-arena serve vs LitServe, Ray Serve, a naive app and a floor, on 127.0.0.1, bounded.

Every server decodes the same gan_transpose generator through the same compiled function, exact-shape check and
PNG writer (bench/peer_model.py for the peers; the bench first checks that a grid requested alone has the same
bytes from each). Measured in one run, each a ratio against a baseline of the same run:
- 32 concurrent clients asking single images with distinct seeds (wrk, in rounds alternating the servers):
  target ≥ 1.3× the better peer's throughput with a p99 no worse than theirs, and ≥ 0.8× the raw-ASGI floor app
  (bench/floor_app.py: the same compiled function with no framework at all), measured side by side;
- uncached 16-image grids one at a time (wrk, one connection) beside the bare compiled call on the serving shapes
  and the floor app (bench/floor_app.py), in interleaved rounds: target p50 ≤ 1.25× the bare call;
- cached grids (wrk, 32 connections); start to /readyz ≤ 5 s (and, beside it, until the larger batch shapes checked
  after ready are settled); resident memory after those checks and one grid ≤ 400 MiB (all shipped models); and a
  naive predict-per-request app for scale.
- today's route before ONNX (bench/tf_route.py: the same service on TensorFlow concrete functions) beside it in the
  same rounds: throughput not below it (the gate), ≥ 2× LitServe (the goal: the better of LitServe's default, one
  worker with calls on every core, and the service's own arrangement, two workers with single-threaded calls); the
  route's own cost per uncached 16-grid (p50 minus the bare model call) ≤ 2 ms;
- the bare model's ceiling (two single-threaded calls side by side, every server frozen) and the load generator's
  CPU, so the run says what share of the ceiling the goal needs; its `verdict` is written from these figures.
The peers come from the optional extra: pip install -e '.[bench]'. wrk is installed with apt-get when missing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from common import ROOT, free_port, freeze, python, rss_mib, seconds_until_shapes_settled, start, stop, summary


class BareCall:
    """The bare compiled model call for 16 latents on the shapes the service serves through on this CPU
    (app.serving.shapes' compile_shapes and settle_shapes, as bench/peer_model.py uses them), with nothing around it."""

    def __init__(self, store: Path):
        from peer_model import GridDecoder

        self.decoder = GridDecoder(store)
        self.z = np.random.default_rng(0).standard_normal((16, 100), dtype=np.float32)
        for _ in range(10):
            self.decoder.decode(self.z)

    def times_s(self, count: int) -> list[float]:
        times = []
        for _ in range(count):
            t0 = time.perf_counter()
            self.decoder.decode(self.z)
            times.append(time.perf_counter() - t0)
        return times


def model_ceiling(store: Path, seconds: float) -> dict:
    """The most single images a second any server could give on this CPU: the bare model alone, two threads side by
    side each making single-threaded 16-row calls on the serving shapes (the service's decode arrangement; 48-row
    calls beside it), with no HTTP, no PNG and no load generator on the cores. Measured with every server frozen."""
    import threading

    from peer_model import GridDecoder

    decoder = GridDecoder(store, threads=1)
    out = {}
    for rows in (16, 48):
        z = np.random.default_rng(1).standard_normal((rows, decoder.latent_dim), dtype=np.float32)
        decoder.decode(z)
        counts, start_line = [], threading.Barrier(2)

        def work() -> None:
            start_line.wait()
            done, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds / 2:
                decoder.decode(z)
                done += rows
            counts.append(done / (time.perf_counter() - t0))

        workers = [threading.Thread(target=work) for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        out[f"rows_per_s_{rows}_row_calls"] = round(sum(counts), 1)
    return out


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
            one = wrk(base, 2, args=["gan_transpose", "16", str(5_000_000 + r * 1_000_000), "query"], connections=1)
            if one:
                p50[f"{name}_wrk"].append(one["p50_ms"])
    out = {"bare_call_p50_ms_per_round": [round(x, 2) for x in bare_p50]}
    for key, values in p50.items():
        if values:
            out[f"{key}_p50_ms_per_round"] = [round(x, 2) for x in values]
            out[f"{key}_over_bare_median_of_rounds"] = round(
                float(np.median(np.asarray(values) / np.asarray(bare_p50))), 2
            )
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
    if not ensure_wrk():
        return None
    threads = min(2, connections)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s", "--latency"]
    cmd += (
        (["-s", str(ROOT / "bench" / "generate.lua")] if args else []) + [base + path] + (["--", *args] if args else [])
    )
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter() - t0
    client_cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = lambda prefix: next(ln for ln in out.splitlines() if ln.strip().startswith(prefix))
    errors = sum(
        int(n)
        for ln in out.splitlines()
        if "Non-2xx" in ln or "Socket errors" in ln
        for n in ln.replace(",", " ").split()
        if n.isdigit()
    )
    return {
        "rps": float(line("Requests/sec").split()[1]),
        "p50_ms": _ms(line("50%").split()[1]),
        "p99_ms": _ms(line("99%").split()[1]),
        "requests": int(next(ln for ln in out.splitlines() if "requests in" in ln).split()[0]),
        "errors": errors,
        "tool": f"wrk -t{threads} -c{connections}",
        "client_cpu_cores": round(client_cpu_s / wall, 3),  # the load generator shares this host's cores
    }


def _ms(text: str) -> float:
    """wrk's '15.54ms' / '812.00us' / '1.09s' in milliseconds."""
    for unit, factor in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if text.endswith(unit):
            return round(float(text[: -len(unit)]) * factor, 3)
    raise ValueError(text)


def ensure_wrk() -> bool:
    """wrk from Debian's package, installed once when missing (root and apt-get needed; else the httpx figures
    stand)."""
    if not shutil.which("wrk") and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, timeout=600)
    return bool(shutil.which("wrk"))


PEERS = {  # name: (command after the Python interpreter, request style, environment)
    "litserve": (["bench/litserve_app.py"], "json", {}),
    # LitServe given the service's own arrangement: two inference workers, each call single-threaded
    "litserve_two_workers": (["bench/litserve_app.py"], "json", {"PEER_WORKERS": "2", "PEER_THREADS": "1"}),
    "ray_serve": (["bench/ray_app.py"], "json", {}),
}
LITSERVES = [name for name in PEERS if name.startswith("litserve")]
# Today's route before the ONNX runtime: the same service with TensorFlow concrete functions (bench/tf_route.py), the
# gate the ONNX route must not fall below. Its floats differ from onnxruntime's in the last bits, so its grids may
# differ from the others' by a grey level: it is left out of the same-bytes check (its difference is reported).
TF_ROUTE = "deconv_arena_tensorflow"
ONE_DECODER = "deconv_arena_one_decode_thread"


def same_bytes(bases: dict[str, tuple[str, str]]) -> dict:
    """A grid requested alone from every server: the bytes must be equal, or the comparison would be unfair."""
    got = {}
    for name, (base, style) in bases.items():
        r = (
            httpx.post(f"{base}/generate", params={"model": "gan_transpose", "seed": 4242, "n": 16}, timeout=60)
            if style == "query"
            else httpx.post(f"{base}/generate", json={"seed": 4242, "n": 16}, timeout=60)
        )
        assert r.status_code == 200, (name, r.text[:200])
        got[name] = r.content
    reference = got["deconv_arena"]
    return {
        "sha256_prefix": {n: hashlib.sha256(b).hexdigest()[:16] for n, b in got.items()},
        "all_equal": all(b == reference for n, b in got.items() if n != TF_ROUTE),
        "tensorflow_route_max_grey_level_difference": _grey_diff(got.get(TF_ROUTE), reference),
    }


def _grey_diff(a: bytes | None, b: bytes) -> int | None:
    if a is None:
        return None
    import io

    from PIL import Image

    x, y = (np.asarray(Image.open(io.BytesIO(v)), dtype=int) for v in (a, b))
    return int(np.abs(x - y).max()) if x.shape == y.shape else -1


def single_image_rounds(bases: dict[str, tuple[str, str]], rounds: int, seconds: float, pids: dict[str, int]) -> dict:
    """32 clients asking single images with fresh seeds, each server in turn, the order alternating by round.

    While one server is measured the others are frozen (SIGSTOP on their whole process trees): on two cores an idle
    Ray cluster or a polling LitServe worker would otherwise take CPU from whichever server is being measured.
    """
    per = {name: [] for name in bases}
    names = list(bases)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            base, style = bases[name]
            for other in names:
                freeze(pids[other], other != name)
            time.sleep(1)
            per[name].append(wrk(base, seconds, args=["gan_transpose", "1", str(30_000_000 + r * 1_000_000), style]))
    for other in names:
        freeze(pids[other], False)
    out = {}
    for name, results in per.items():
        out[name] = {
            "rps_per_round": [x["rps"] for x in results],
            "p99_ms_per_round": [x["p99_ms"] for x in results],
            "p50_ms_per_round": [x["p50_ms"] for x in results],
            "errors": sum(x["errors"] for x in results),
            "rps_median": float(np.median([x["rps"] for x in results])),
            "p99_ms_median": float(np.median([x["p99_ms"] for x in results])),
            "p50_ms_median": float(np.median([x["p50_ms"] for x in results])),
            "client_cpu_cores_median": float(np.median([x["client_cpu_cores"] for x in results])),
        }
    return out


async def drive(base: str, naive: bool, args) -> dict:
    uncached = lambda c, i: c.post("/generate", params={"model": "gan_transpose", "seed": 1_000_000 + i, "n": 16})
    single = lambda c, i: c.post("/generate", params={"model": "gan_transpose", "seed": 20_000 + i, "n": 1})
    out = {"uncached_16_grid": summary(lat := await sequential_s(base, uncached, range(args.grid_requests)), sum(lat))}
    out["single_images_32_clients_httpx"] = await concurrent(base, single, 32, args.seconds, args.max_requests)
    out["single_images_32_clients_wrk"] = wrk(base, args.seconds, args=["gan_transpose", "1", "20000", "query"])
    if not naive:
        cached = lambda c, i: c.get("/models/gan_transpose/grid.png", params={"seed": 1, "n": 16})
        await cached(httpx.AsyncClient(base_url=base), 0)
        out["cached_grid_wrk"] = wrk(base, args.seconds, path="/models/gan_transpose/grid.png?seed=1&n=16")
    return out


def cpu_facts() -> dict:
    """The CPU's name and its fp32 matmul rate (NumPy, 2048², best of 5): figures are only comparable with these."""
    name = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "unknown",
    )
    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    best = min((lambda t0: (a @ a, time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(5))
    return {"cpu": name, "cores": os.cpu_count(), "fp32_matmul_gflops": round(2 * 2048**3 / best / 1e9, 1)}


def verdict(checks: dict, ours_rps: float, floor_rps: float) -> list[str]:
    """The run's conclusions in words, made from its own figures."""
    route = checks["uncached_16_grid_route_cost_ms (p50 minus bare call, wrk, median of rounds)"]
    over = checks["throughput_32_clients_over_litserve (the better of its two arrangements)"]
    goal, ceiling = (
        checks["goal_rps (2x the better LitServe)"],
        checks["bare_model_rows_per_s (both cores, no HTTP, no PNG, no client)"],
    )
    lines = [
        f"route cost per uncached 16-grid: {route} ms over the bare call "
        f"({'within' if route is not None and route <= checks['target_route_cost_ms_max'] else 'over'} the "
        f"{checks['target_route_cost_ms_max']} ms target)",
        f"32 clients: {over}x the better LitServe ({checks['better_litserve']}); the goal is "
        f"{checks['goal_throughput_over_litserve_min']}x "
        f"({'met' if over >= checks['goal_throughput_over_litserve_min'] else 'not met'})",
    ]
    if over < checks["goal_throughput_over_litserve_min"]:
        floor_share = floor_rps / ceiling
        lines.append(
            f"the goal needs {goal:.0f} req/s, {checks['goal_share_of_bare_model']:.0%} of the bare model's "
            f"{ceiling:.0f} rows/s on this CPU; the raw-ASGI floor reached {floor_share:.0%} and ours "
            f"{checks['ours_share_of_bare_model']:.0%}"
            + (" — beyond what an HTTP service without any framework reached here" if goal > floor_rps else "")
        )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", type=Path, default=ROOT / "models_store")
    p.add_argument("--seconds", type=float, default=10, help="time bound of each concurrent phase")
    p.add_argument("--grid-requests", type=int, default=40, help="uncached 16-grids in the naive-baseline comparison")
    p.add_argument("--rounds", type=int, default=6, help="interleaved rounds of bare call / service / floor")
    p.add_argument("--per-round", type=int, default=25, help="16-grids per server (and bare calls) in a round")
    p.add_argument("--peer-rounds", type=int, default=3, help="rounds of the 32-client comparison with the peers")
    p.add_argument("--max-requests", type=int, default=2000)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "bench" / "serve.json")
    args = p.parse_args()
    if not ensure_wrk():
        raise SystemExit("bench/serve.py needs wrk (Debian's package `wrk`): apt-get install wrk")
    for module in ("litserve", "ray"):
        if importlib.util.find_spec(module) is None:
            raise SystemExit(
                f"bench/serve.py compares with LitServe and Ray Serve: pip install -e '.[bench]' (missing: {module})"
            )

    results: dict = {"machine": cpu_facts()}
    print(json.dumps(results["machine"]), flush=True)
    bare = BareCall(args.store)
    results["machine"]["serving_shapes_gan_transpose"] = list(bare.decoder.shapes)
    gc.collect()
    gc.freeze()  # the long-lived objects would otherwise stall the httpx clients in this process
    db = Path(tempfile.mkdtemp()) / "bench.db"
    threads = {
        "TF_NUM_INTRAOP_THREADS": str(os.cpu_count()),
        "TF_NUM_INTEROP_THREADS": str(os.cpu_count()),
    }  # the same for every server
    port, floor_port = free_port(), free_port()
    env = {
        **threads,
        "ARENA_MODELS_STORE": str(args.store),
        "ARENA_PORT": str(port),
        "ARENA_DATABASE_URL": f"sqlite:///{db}",
        "ARENA_LOG_LEVEL": "warning",
    }
    procs = []
    try:
        proc, ready_s = start([python(), "-m", "deconv_arena.cli", "serve"], port, env)
        procs.append(proc)
        settled_s = ready_s + seconds_until_shapes_settled(f"http://127.0.0.1:{port}")
        httpx.post(f"http://127.0.0.1:{port}/generate", params={"model": "gan_transpose", "seed": 1, "n": 16})
        results["service"] = {
            "seconds_to_readyz": round(ready_s, 2),
            "seconds_to_every_batch_shape_checked": round(settled_s, 2),
            "rss_mib_after_ready_and_one_grid": round(rss_mib(proc.pid), 1),
            "models_ready": sum(
                m["status"] == "ready" for m in httpx.get(f"http://127.0.0.1:{port}/readyz").json()["models"].values()
            ),
        }
        print(json.dumps(results["service"]), flush=True)
        floor, _ = start(
            [python(), str(ROOT / "bench" / "floor_app.py"), str(floor_port)],
            floor_port,
            {**threads, "ARENA_MODELS_STORE": str(args.store)},
        )
        procs.append(floor)
        results["uncached_16_grid_interleaved"] = interleaved_grids(
            bare, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{floor_port}", args.rounds, args.per_round
        )
        print(json.dumps(results["uncached_16_grid_interleaved"]), flush=True)
        bases = {
            "deconv_arena": (f"http://127.0.0.1:{port}", "query"),
            "floor_raw_asgi": (f"http://127.0.0.1:{floor_port}", "query"),
        }
        pids = {"deconv_arena": proc.pid, "floor_raw_asgi": floor.pid}
        tf_port = free_port()
        tf_proc, tf_ready_s = start(
            [python(), str(ROOT / "bench" / "tf_route.py"), str(tf_port)],
            tf_port,
            {**env, "ARENA_PORT": str(tf_port), "ARENA_DATABASE_URL": f"sqlite:///{db}.tf"},
            timeout=600,
        )
        procs.append(tf_proc)
        httpx.post(f"http://127.0.0.1:{tf_port}/generate", params={"model": "gan_transpose", "seed": 1, "n": 16})
        results[TF_ROUTE] = {
            "seconds_to_readyz": round(tf_ready_s, 2),
            "rss_mib_after_ready_and_one_grid": round(rss_mib(tf_proc.pid), 1),
        }
        print(json.dumps(results[TF_ROUTE]), flush=True)
        bases[TF_ROUTE] = (f"http://127.0.0.1:{tf_port}", "query")
        pids[TF_ROUTE] = tf_proc.pid
        # The same ONNX service with one model call at a time on all cores (as before decode threads): what the
        # side-by-side single-core calls bring, apart from the runtime.
        one_port = free_port()
        one_proc, one_ready_s = start(
            [python(), "-m", "deconv_arena.cli", "serve"],
            one_port,
            {
                **env,
                "ARENA_PORT": str(one_port),
                "ARENA_DATABASE_URL": f"sqlite:///{db}.one",
                "ARENA_DECODE_THREADS": "1",
            },
        )
        procs.append(one_proc)
        bases[ONE_DECODER] = (f"http://127.0.0.1:{one_port}", "query")
        pids[ONE_DECODER] = one_proc.pid
        for name, (cmd, style, peer_env) in PEERS.items():
            peer_port = free_port()
            peer, ready_s = start(
                [python(), *cmd, str(peer_port)],
                peer_port,
                {**threads, "ARENA_MODELS_STORE": str(args.store), **peer_env},
                ready_path="/generate",
                ready_json={"seed": 1, "n": 1},
                timeout=600,
            )
            procs.append(peer)
            bases[name] = (f"http://127.0.0.1:{peer_port}", style)
            pids[name] = peer.pid
            results[name] = {"seconds_to_ready": round(ready_s, 2)}
        results["same_bytes_alone"] = same_bytes(bases)
        print(json.dumps(results["same_bytes_alone"]), flush=True)
        results["single_images_32_clients_wrk_rounds"] = single_image_rounds(
            bases, args.peer_rounds, args.seconds, pids
        )
        print(json.dumps(results["single_images_32_clients_wrk_rounds"]), flush=True)
        for pid in pids.values():
            freeze(pid, True)
        results["model_ceiling"] = model_ceiling(args.store, args.seconds)
        for pid in pids.values():
            freeze(pid, False)
        print(json.dumps(results["model_ceiling"]), flush=True)
        for _ in list(PEERS):
            stop(procs.pop())
        stop(procs.pop())  # the ONNX route with one decode thread
        stop(procs.pop())  # the TensorFlow route
        stop(procs.pop())  # the floor app
        results["service"].update(asyncio.run(drive(f"http://127.0.0.1:{port}", False, args)))
        results["service"]["rss_mib_after_load"] = round(rss_mib(proc.pid), 1)
    finally:
        for p_ in procs:
            stop(p_)
    port = free_port()
    proc, ready_s = start(
        [python(), str(ROOT / "bench" / "naive_app.py"), str(port)],
        port,
        {**threads, "ARENA_MODELS_STORE": str(args.store)},
    )
    try:
        results["baseline_predict_per_request"] = {
            "seconds_to_ready": round(ready_s, 2),
            **asyncio.run(drive(f"http://127.0.0.1:{port}", True, args)),
        }
    finally:
        stop(proc)

    s, b, g, peers = (
        results["service"],
        results["baseline_predict_per_request"],
        results["uncached_16_grid_interleaved"],
        results["single_images_32_clients_wrk_rounds"],
    )
    ours = peers["deconv_arena"]
    better = max(PEERS, key=lambda n: peers[n]["rps_median"])
    best_litserve = max(LITSERVES, key=lambda n: peers[n]["rps_median"])
    litserve = peers[best_litserve]["rps_median"]
    ceiling = results["model_ceiling"]["rows_per_s_16_row_calls"]
    route_cost = (
        None
        if g.get("service_wrk_p50_ms_per_round") is None
        else round(
            float(
                np.median(np.asarray(g["service_wrk_p50_ms_per_round"]) - np.asarray(g["bare_call_p50_ms_per_round"]))
            ),
            2,
        )
    )
    results["checks"] = {
        "same_bytes_from_every_onnx_server": results["same_bytes_alone"]["all_equal"],
        "throughput_32_clients_over_tensorflow_route": round(ours["rps_median"] / peers[TF_ROUTE]["rps_median"], 2),
        "target_throughput_over_tensorflow_route_min (gate)": 1.0,
        "throughput_32_clients_over_one_decode_thread": round(ours["rps_median"] / peers[ONE_DECODER]["rps_median"], 2),
        "better_litserve": best_litserve,
        "throughput_32_clients_over_litserve (the better of its two arrangements)": round(
            ours["rps_median"] / litserve, 2
        ),
        "throughput_32_clients_over_litserve_default": round(ours["rps_median"] / peers["litserve"]["rps_median"], 2),
        "goal_throughput_over_litserve_min": 2.0,
        "bare_model_rows_per_s (both cores, no HTTP, no PNG, no client)": ceiling,
        "ours_share_of_bare_model": round(ours["rps_median"] / ceiling, 3),
        "litserve_share_of_bare_model": round(litserve / ceiling, 3),
        "goal_rps (2x the better LitServe)": round(2 * litserve, 1),
        "goal_share_of_bare_model": round(2 * litserve / ceiling, 3),
        "wrk_client_cpu_cores_median": {n: peers[n]["client_cpu_cores_median"] for n in peers},
        "better_peer": better,
        "throughput_32_clients_over_better_peer": round(ours["rps_median"] / peers[better]["rps_median"], 2),
        "throughput_32_clients_over_floor": round(ours["rps_median"] / peers["floor_raw_asgi"]["rps_median"], 2),
        "p99_32_clients_ms": {n: peers[n]["p99_ms_median"] for n in peers},
        "uncached_16_grid_route_cost_ms (p50 minus bare call, wrk, median of rounds)": route_cost,
        "target_route_cost_ms_max": 2.0,
        "uncached_16_grid_p50_over_bare_call_wrk_client": g.get("service_wrk_over_bare_median_of_rounds"),
        "cached_rps": s["cached_grid_wrk"]["rps"],
        "seconds_to_readyz": s["seconds_to_readyz"],
        "seconds_to_readyz_tensorflow_route": results[TF_ROUTE]["seconds_to_readyz"],
        "target_seconds_to_readyz_max": 5,
        "seconds_to_every_batch_shape_checked": s["seconds_to_every_batch_shape_checked"],
        "rss_mib_after_ready_and_one_grid": s["rss_mib_after_ready_and_one_grid"],
        "rss_mib_tensorflow_route": results[TF_ROUTE]["rss_mib_after_ready_and_one_grid"],
        "target_rss_mib_max": 400,
        "throughput_32_clients_vs_naive_baseline_wrk": round(
            s["single_images_32_clients_wrk"]["rps"] / b["single_images_32_clients_wrk"]["rps"], 2
        ),
    }
    results["verdict"] = verdict(results["checks"], ours["rps_median"], peers["floor_raw_asgi"]["rps_median"])
    print(json.dumps(results, indent=2))
    print("\n".join(results["verdict"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
