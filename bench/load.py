"""Load test: for a bounded time, 32 clients mix generation (cached and uncached), page loads and votes against
`deconv-arena serve` on 127.0.0.1; prints requests/s, p50/p99 per route and errors, then checks that every
acknowledged vote is in the database. Targets: zero 5xx, zero lost votes.

--instances N: N instances on one fresh PostgreSQL database behind nginx (bench/cluster.py; the admin URL from
--postgres-url or ARENA_TEST_POSTGRES_URL), driven through nginx. --instances 1,3 runs both, one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from common import ROOT, free_port, python, start


async def client(
    base: str, k: int, deadline: float, stats: dict, acked: list, rng: random.Random, models: list[str]
) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        await c.post("/rate/start", data={"consent": "yes", "display_name": f"load{k}"})
        while time.perf_counter() < deadline:
            kind = rng.choices(["generate_uncached", "generate_cached", "page", "vote"], [3, 4, 2, 3])[0]
            t0 = time.perf_counter()
            if kind == "generate_uncached":
                r = await c.post(
                    "/generate", params={"model": rng.choice(models), "seed": rng.randrange(2**32), "n": 4}
                )
            elif kind == "generate_cached":
                r = await c.get(f"/models/{models[0]}/grid.png", params={"seed": rng.randrange(8), "n": 16})
            elif kind == "page":
                r = await c.get(rng.choice(["/", f"/models/{models[-1]}", "/about", "/results"]))
            else:
                task = await c.post("/api/rate/tasks")
                if task.status_code != 200:
                    r = task
                else:
                    tid = task.json()["task_id"]
                    r = await c.post(
                        "/api/rate/votes",
                        json={
                            "task_id": tid,
                            "overall": rng.choice("AB"),
                            "legibility": rng.choice("AB"),
                            "noise": "tie",
                        },
                    )
                    if r.status_code == 201:
                        acked.append(tid)
            stats.setdefault(kind, []).append((time.perf_counter() - t0, r.status_code))


async def run(base: str, clients: int, seconds: float) -> tuple[dict, list]:
    stats: dict = {}
    acked: list = []
    models = [m["name"] for m in httpx.get(f"{base}/api/models", timeout=30).json() if m["status"] == "ready"]
    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(client(base, k, deadline, stats, acked, random.Random(k), models) for k in range(clients)))
    return stats, acked


def report(stats: dict, acked: list, stored: set, wall: float, clients: int) -> dict:
    out = {"seconds": round(wall, 1), "clients": clients, "routes": {}}
    total = 0
    for kind, rows in sorted(stats.items()):
        lat = np.array([r[0] for r in rows]) * 1000
        codes = [r[1] for r in rows]
        total += len(rows)
        out["routes"][kind] = {
            "requests": len(rows),
            "rps": round(len(rows) / wall, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1),
            "5xx": sum(c >= 500 for c in codes),
            "other_errors": sum(400 <= c < 500 for c in codes),
        }
    out["requests_per_second"] = round(total / wall, 1)
    out["acknowledged_votes"] = len(acked)
    out["lost_votes"] = len(set(acked) - stored)
    out["checks"] = {
        "zero_5xx": all(r["5xx"] == 0 for r in out["routes"].values()),
        "zero_lost_votes": out["lost_votes"] == 0,
    }
    return out


def single(args) -> dict:
    """One instance on SQLite, addressed directly."""
    db = Path(tempfile.mkdtemp()) / "load.db"
    port = free_port()
    env = {
        "ARENA_MODELS_STORE": str(args.store),
        "ARENA_PORT": str(port),
        "ARENA_DATABASE_URL": f"sqlite:///{db}",
        "ARENA_LOG_LEVEL": "warning",
        "ARENA_VOTES_PER_MINUTE": "100000",
        "ARENA_SECRET_KEY": "load-test-key",
    }
    proc, _ = start([python(), "-m", "deconv_arena.cli", "serve"], port, env)
    try:
        t0 = time.perf_counter()
        stats, acked = asyncio.run(run(f"http://127.0.0.1:{port}", args.clients, args.seconds))
        wall = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    stored = {r[0] for r in sqlite3.connect(db).execute("select task_id from votes")}
    return {"setup": "1 instance, SQLite, direct", **report(stats, acked, stored, wall, args.clients)}


def behind_nginx(args, instances: int) -> dict:
    from cluster import Cluster

    env = {"ARENA_VOTES_PER_MINUTE": "100000"}
    with Cluster(args.store, args.postgres_url, Path(tempfile.mkdtemp()), instances=instances, env=env) as cluster:
        t0 = time.perf_counter()
        stats, acked = asyncio.run(run(cluster.front, args.clients, args.seconds))
        wall = time.perf_counter() - t0
        stored = {r[0] for r in cluster.db.rows("select task_id from votes")}
    return {"setup": f"{instances} instance(s), PostgreSQL, nginx", **report(stats, acked, stored, wall, args.clients)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", type=Path, default=ROOT / "models_store")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument(
        "--instances",
        help=(
            "comma-separated instance counts to run behind nginx on "
            "PostgreSQL (e.g. 1,3); default: one instance on SQLite, direct"
        ),
    )
    p.add_argument(
        "--postgres-url",
        default=os.environ.get("ARENA_TEST_POSTGRES_URL"),
        help="admin URL of a PostgreSQL server whose role may create databases",
    )
    args = p.parse_args()
    if not args.instances:
        print(json.dumps(single(args), indent=2))
        return
    if not args.postgres_url:
        raise SystemExit(
            "--instances needs a PostgreSQL server: pass --postgres-url "
            "or set ARENA_TEST_POSTGRES_URL (.ci/postgres.sh starts one)"
        )
    results = [behind_nginx(args, int(n)) for n in args.instances.split(",")]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
