"""Helpers shared by the benchmarks: start a server on 127.0.0.1, measure latencies, read memory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(
    cmd: list[str],
    port: int,
    env: dict[str, str] | None = None,
    ready_path: str = "/readyz",
    timeout: float = 300,
    ready_json: dict | None = None,
) -> tuple[subprocess.Popen, float]:
    """Start a server process and return it with the seconds until `ready_path` answered 200 (to a POST of
    `ready_json` when given: a peer is ready when it serves)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}: {' '.join(cmd)}")
        try:
            url = f"http://127.0.0.1:{port}{ready_path}"
            r = httpx.post(url, json=ready_json, timeout=30) if ready_json is not None else httpx.get(url, timeout=2)
            if r.status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("server never became ready")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def summary(latencies_s: list[float], wall_s: float) -> dict[str, float]:
    a = np.asarray(latencies_s) * 1000
    return {
        "requests": len(a),
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "rps": round(len(a) / wall_s, 1),
    }


def python() -> str:
    return sys.executable


def seconds_until_shapes_settled(base: str, timeout: float = 120) -> float:
    """From ready until /readyz lists no batch shape still being checked (the larger shapes, checked after ready)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        models = httpx.get(f"{base}/readyz", timeout=5).json()["models"].values()
        if not any(m.get("batch_shapes_pending") for m in models):
            break
        time.sleep(0.05)
    return time.perf_counter() - t0


def stop(proc: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM the server's whole process group (a peer's workers too), then SIGKILL what is left."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (a peer's workers, Ray's GCS and raylet), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def freeze(pid: int, frozen: bool) -> None:
    """SIGSTOP (or SIGCONT) a server's whole process tree, so an idle server takes no CPU from the one measured."""
    import signal

    for member in process_tree(pid):
        try:
            os.kill(member, signal.SIGSTOP if frozen else signal.SIGCONT)
        except ProcessLookupError:
            pass
