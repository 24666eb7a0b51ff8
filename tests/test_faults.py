"""Fault tests against a real `deconv-arena serve` process on 127.0.0.1: SIGKILL during votes, SIGTERM drain."""

from __future__ import annotations

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

from tests.test_browser import _free_port

ROOT = Path(__file__).resolve().parents[1]


def start_server(store: Path, db: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "ARENA_MODELS_STORE": str(store), "ARENA_DATABASE_URL": f"sqlite:///{db}", "ARENA_PORT": str(port), "ARENA_HOST": "127.0.0.1",
           "ARENA_SECRET_KEY": "fault-test-key-0123456789abcdef", "ARENA_GOLD_RATE": "0", "ARENA_FOUR_RATE": "0", "ARENA_REPEAT_RATE": "0", "ARENA_VOTES_PER_MINUTE": "1000"}
    proc = subprocess.Popen([sys.executable, "-m", "deconv_arena.cli", "serve", "--log-level", "warning"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
                    r = c.post("/api/rate/votes", json={"task_id": task, "overall": "A", "legibility": "B", "noise": "tie"})
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
            assert c.post("/api/rate/votes", json={"task_id": task, "overall": "A", "legibility": "A", "noise": "A"}).status_code == 201
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_sigterm_drains_in_flight_requests(tiny_store, tmp_path):
    port = _free_port()
    proc = start_server(tiny_store, tmp_path / "d.db", port)
    base = f"http://127.0.0.1:{port}"
    results: list[int | str] = []

    def slow_request(seed: int) -> None:
        try:
            r = httpx.post(f"{base}/generate", params={"model": "gan_transpose", "seed": seed, "n": 64, "scale": 8, "padding": 16}, timeout=60)
            results.append(r.status_code)
        except httpx.HTTPError as e:
            results.append(type(e).__name__)

    threads = [threading.Thread(target=slow_request, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until all six are inside the server (plus this metrics request)
        text = httpx.get(f"{base}/metrics", timeout=5).text
        if float(re.search(r"^arena_in_flight_requests (\S+)$", text, re.M).group(1)) >= 7:
            break
        time.sleep(0.01)
    else:
        pytest.fail("the slow requests never were all in flight together")
    proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=60)
    # uvicorn finishes the in-flight requests, runs the lifespan exit, then re-raises SIGTERM on itself.
    assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    assert results == [200] * 6, results
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{base}/healthz", timeout=2)
