"""Fault tests against a real `deconv-arena serve` process on 127.0.0.1: SIGKILL during votes, SIGTERM drain."""

from __future__ import annotations

import io
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.test_browser import _free_port

ROOT = Path(__file__).resolve().parents[1]


def start_server(
    store: Path, db: Path, port: int, serve: tuple[str, ...] = ("deconv_arena.cli", "serve"), **extra_env: str
) -> subprocess.Popen:
    env = {
        **os.environ,
        "ARENA_MODELS_STORE": str(store),
        "ARENA_DATABASE_URL": f"sqlite:///{db}",
        "ARENA_PORT": str(port),
        "ARENA_HOST": "127.0.0.1",
        "ARENA_SECRET_KEY": "fault-test-key-0123456789abcdef",
        "ARENA_GOLD_RATE": "0",
        "ARENA_FOUR_RATE": "0",
        "ARENA_REPEAT_RATE": "0",
        "ARENA_VOTES_PER_MINUTE": "1000",
        **extra_env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", *serve, "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("server never became ready")


def test_sigkill_during_votes_loses_no_acknowledged_vote(tiny_store, tmp_path):
    port, db = _free_port(), tmp_path / "votes.db"
    proc = start_server(tiny_store, db, port)
    base = f"http://127.0.0.1:{port}"
    acknowledged: list[str] = []
    stop = threading.Event()

    def stream() -> None:
        with httpx.Client(base_url=base, timeout=5) as c:
            c.post("/rate/start", data={"consent": "yes"})
            while not stop.is_set():
                try:
                    task = c.post("/api/rate/tasks").json()["task_id"]
                    r = c.post(
                        "/api/rate/votes", json={"task_id": task, "overall": "A", "legibility": "B", "noise": "tie"}
                    )
                except (httpx.HTTPError, KeyError, ValueError):
                    return  # the server died mid-request: that vote was never acknowledged
                if r.status_code == 201:
                    acknowledged.append(task)

    workers = [threading.Thread(target=stream) for _ in range(4)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    stop.set()
    for w in workers:
        w.join(timeout=30)
    assert len(acknowledged) >= 40

    con = sqlite3.connect(db)
    assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    stored = {row[0] for row in con.execute("select task_id from votes")}
    con.close()
    assert set(acknowledged) <= stored

    proc = start_server(tiny_store, db, port)  # it opens clean and keeps serving
    try:
        with httpx.Client(base_url=base, timeout=10) as c:
            c.post("/rate/start", data={"consent": "yes"})
            task = c.post("/api/rate/tasks").json()["task_id"]
            assert (
                c.post(
                    "/api/rate/votes", json={"task_id": task, "overall": "A", "legibility": "A", "noise": "A"}
                ).status_code
                == 201
            )
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_sigterm_drains_in_flight_requests(tiny_store, tmp_path):
    """Six requests are held inside the server by an explicit gate (tests/hooks/gated_serve.py: decodes wait until
    the gate file exists), so none can finish before SIGTERM. After SIGTERM the server takes no new connection but keeps
    running while they wait; once the gate opens, every one of them is answered 200, then the process exits."""
    port, gate = _free_port(), tmp_path / "decode-gate"
    proc = start_server(tiny_store, tmp_path / "d.db", port, serve=("tests.hooks.gated_serve", str(gate)))
    base = f"http://127.0.0.1:{port}"
    results: dict[int, tuple[int | str, bytes]] = {}

    def held_request(seed: int) -> None:
        try:
            r = httpx.post(
                f"{base}/generate",
                params={"model": "gan_transpose", "seed": seed, "n": 4, "nrow": 2, "scale": 1, "padding": 0},
                timeout=120,
            )
            results[seed] = (r.status_code, r.content)
        except httpx.HTTPError as e:
            results[seed] = (type(e).__name__, b"")

    def in_flight() -> float:
        text = httpx.get(f"{base}/metrics", timeout=5).text
        return float(re.search(r"^arena_in_flight_requests (\S+)$", text, re.M).group(1))

    threads = [threading.Thread(target=held_request, args=(s,)) for s in range(6)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while in_flight() < 7:  # the six held requests and this metrics request
            assert not results, (
                "answered while the gate was shut (any answer before the kill "
                f"is a failure): { {k: v[0] for k, v in results.items()} }"
            )
            assert time.monotonic() < deadline, "the six requests never were all in flight together"
            time.sleep(0.02)
        assert not results, f"answered before the kill: { {k: v[0] for k, v in results.items()} }"
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while True:  # the server stops accepting connections ...
            try:
                httpx.get(f"{base}/healthz", timeout=2)
            except httpx.ConnectError:
                break
            assert time.monotonic() < deadline, "the server still accepts connections 30 s after SIGTERM"
            time.sleep(0.05)
        held_until = time.monotonic() + 5  # ... but waits for the requests in flight (up to its 20 s drain timeout)
        while time.monotonic() < held_until:
            assert proc.poll() is None and not results, (
                "the server did not wait for the requests in flight: exit "
                f"{proc.poll()}, answers { {k: v[0] for k, v in results.items()} }"
            )
            time.sleep(0.05)
    finally:
        gate.touch()
    for t in threads:
        t.join(timeout=120)
    # uvicorn finishes the in-flight requests, runs the lifespan exit, then re-raises SIGTERM on itself.
    assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    assert sorted(results) == list(range(6)) and all(status == 200 for status, _ in results.values()), {
        k: v[0] for k, v in results.items()
    }
    assert all(
        body.startswith(b"\x89PNG") and Image.open(io.BytesIO(body)).size == (56, 56) for _, body in results.values()
    )
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/healthz", timeout=2)
