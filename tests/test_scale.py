"""Several instances behind nginx on one PostgreSQL database: one truth for raters, whichever instance answers.

Needs a PostgreSQL server (ARENA_TEST_POSTGRES_URL, whose role may create databases) and nginx (the migration tests
need only PostgreSQL); .ci/run provides both and requires them (ARENA_TEST_REQUIRE), so there they fail rather than
skip when either is missing.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from bench.cluster import ROOT, Cluster, FreshDatabase, missing_tools
from tests.conftest import require

ADMIN_URL = os.environ.get("ARENA_TEST_POSTGRES_URL")
VOTES_PER_MINUTE = 12
ANSWER = {"overall": "A", "legibility": "B", "noise": "tie"}


def _need_cluster() -> None:
    require("cluster", missing_tools(ADMIN_URL))


def _need_postgres() -> None:
    require(
        "postgres",
        None
        if ADMIN_URL
        else "no PostgreSQL server: set ARENA_TEST_POSTGRES_URL (.ci/postgres.sh starts one and prints it)",
    )


def wait_until(condition, timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail saying `what` did not happen within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:.0f} s"
        time.sleep(0.05)


# The advisory lock app/migrations/env.py takes around an upgrade: zlib.crc32(b"deconv-arena alembic upgrade").
MIGRATION_LOCK = 1836039922


def test_a_second_instance_waits_on_the_migration_lock_until_it_is_released():
    """This test holds the migration's advisory lock itself; an instance's migration must then wait for it — seen in
    pg_locks as a lock on that key not granted to it — and create nothing until the lock is released; then it
    proceeds to the head revision. Needs PostgreSQL only."""
    import psycopg
    from sqlalchemy.engine import make_url

    _need_postgres()
    db = FreshDatabase(ADMIN_URL)
    proc = None
    try:
        dsn = make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s::bigint)", (MIGRATION_LOCK,))
            proc = subprocess.Popen(
                [sys.executable, "-c", f"from app.store import migrate; migrate({db.url!r})"],
                cwd=ROOT,
                stderr=subprocess.PIPE,
                text=True,
            )
            waiting_sql = (
                "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE d.datname = %s"
                " AND l.locktype = 'advisory' AND NOT l.granted AND l.classid = %s AND l.objid = %s AND l.objsubid = 1"
            )
            key = (db.name, MIGRATION_LOCK >> 32, MIGRATION_LOCK & 0xFFFFFFFF)

            def waits() -> bool:
                assert proc.poll() is None, (
                    f"the migration ran while the lock was held (exit {proc.returncode}): {proc.stderr.read()[-800:]}"
                )
                return holder.execute(waiting_sql, key).fetchone() is not None

            wait_until(waits, 120, "the migration waiting on the advisory lock")
            assert holder.execute("SELECT to_regclass('alembic_version') IS NULL").fetchone()[0], (
                "the schema was made while the lock was held"
            )
            assert proc.poll() is None
            holder.execute("SELECT pg_advisory_unlock(%s::bigint)", (MIGRATION_LOCK,))
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-800:]
        assert db.scalar("select count(*) from alembic_version") == 1 and db.scalar(
            "select to_regclass('votes') is not null"
        )
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        db.close()


def test_instances_migrating_one_empty_database_at_once_all_succeed():
    """Four processes upgrade a fresh database at the same moment, three times over; none may fail.

    Processes, not threads: Alembic's migration context is one per process, as it is for real instances.
    """
    _need_postgres()
    for _ in range(3):
        db = FreshDatabase(ADMIN_URL)
        try:
            go = time.time() + 3  # all four start migrating at this instant, after their imports
            code = (
                "import time; from app.store import migrate; "
                f"time.sleep(max(0, {go} - time.time())); migrate({db.url!r})"
            )
            procs = [
                subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True)
                for _ in range(4)
            ]
            errors = [p.communicate(timeout=120)[1] for p in procs]
            assert all(p.returncode == 0 for p in procs), [e[-800:] for e in errors if e]
            assert db.scalar("select count(*) from alembic_version") == 1
        finally:
            db.close()


@pytest.fixture(scope="module")
def cluster(tiny_store, tmp_path_factory):
    _need_cluster()
    env = {
        "ARENA_GOLD_RATE": "0",
        "ARENA_FOUR_RATE": "0",
        "ARENA_REPEAT_RATE": "0",
        "ARENA_RESULTS_TTL_S": "0",
        "ARENA_VOTES_PER_MINUTE": str(VOTES_PER_MINUTE),
    }
    with Cluster(tiny_store, ADMIN_URL, tmp_path_factory.mktemp("cluster"), instances=3, env=env) as c:
        yield c


def rater(base: str) -> httpx.Client:
    c = httpx.Client(base_url=base, timeout=30)
    assert c.post("/rate/start", data={"consent": "yes"}).status_code in (200, 303)
    return c


def on(c: httpx.Client, base: str) -> httpx.Client:
    """The same rater (cookie) talking to another instance."""
    return httpx.Client(base_url=base, timeout=30, cookies=c.cookies)


def test_instances_started_together_on_an_empty_database_all_rate(cluster):
    for i in range(cluster.n):
        ready = cluster.readyz(i)
        assert ready["ready"] and ready["rating"] == {"status": "ready"}, (i, ready)
        assert "ratings_unavailable" not in cluster.log(i)
    assert cluster.db.scalar("select count(*) from alembic_version") == 1


def test_a_rater_can_move_between_instances(cluster):
    a = rater(cluster.instance(0))
    b, c = on(a, cluster.instance(1)), on(a, cluster.instance(2))
    task = a.post("/api/rate/tasks").json()["task_id"]
    assert b.get(f"/rate/tasks/{task}/A.png").status_code == 200  # images of a task issued elsewhere
    assert b.post("/api/rate/votes", json={"task_id": task, **ANSWER}).status_code == 201
    second = c.post("/api/rate/votes", json={"task_id": task, **ANSWER})
    assert second.status_code == 409 and "already has a vote" in second.json()["detail"]
    assert a.post("/api/rate/votes", json={"task_id": task, **ANSWER}).status_code == 409
    undone = c.post("/api/rate/undo")
    assert undone.status_code == 200 and undone.json()["undone_task_id"] == task
    assert a.post("/api/rate/votes", json={"task_id": task, **ANSWER}).status_code == 201
    assert cluster.db.scalar("select count(*) from votes where task_id = :t", t=task) == 1


def test_the_rate_limit_holds_across_instances_under_concurrent_votes(cluster):
    """One rater holds 3 minutes' worth of distinct open tasks (the API hands a rater its pending task again, so the
    rest are issued by the store, as the API would issue them) and votes on all at once through every instance."""
    from app.store.operations import VoteStore

    first = rater(cluster.front)
    clients = [on(first, cluster.instance(i % cluster.n)) for i in range(3 * VOTES_PER_MINUTE)]
    issued = first.post("/api/rate/tasks").json()["task_id"]
    store = VoteStore(cluster.db.url)
    t = store.task(issued)
    tasks = [issued] + [
        store.issue(t.rater_id, t.kind, list(t.models), t.seed + k, t.n, 3600).id for k in range(1, len(clients))
    ]
    assert len(set(tasks)) == len(clients)
    barrier = threading.Barrier(len(clients))

    def vote(k: int) -> int:
        barrier.wait()
        return clients[k].post("/api/rate/votes", json={"task_id": tasks[k], **ANSWER}).status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        codes = list(pool.map(vote, range(len(clients))))
    assert codes.count(201) == VOTES_PER_MINUTE and codes.count(429) == len(codes) - VOTES_PER_MINUTE, codes


def test_every_instance_gives_the_same_results(cluster):
    voter = rater(cluster.front)
    for _ in range(4):
        task = voter.post("/api/rate/tasks").json()["task_id"]
        assert voter.post("/api/rate/votes", json={"task_id": task, **ANSWER}).status_code == 201
    answers = [httpx.get(f"{cluster.instance(i)}/api/results", timeout=60).json() for i in range(cluster.n)]
    for a in answers[1:]:
        assert a["questions"] == answers[0]["questions"] and a["counts"] == answers[0]["counts"]
    assert answers[0]["counts"]["votes"] >= 4


def test_sigkill_of_one_instance_behind_nginx_loses_no_vote(cluster):
    """32 raters vote through nginx at a human pace; instance 1 is SIGKILLed, then restarted.

    A rater retries a vote once when nginx answers 502 (the request died with the instance); a 409 on that retry
    means the first attempt had been stored. Every acknowledged vote must be in the database exactly once, and
    no other request may see a 5xx: nginx moves idempotent requests, and requests that never reached the dead
    instance, to the others. Which instance answered is read from nginx's X-Upstream header, and the test moves on
    by conditions (every instance serving, traffic flowing while one is down, the restarted one serving), not sleeps.
    """
    events: list[dict] = []  # what, status, the phase the request started in, the upstream(s) nginx tried
    acknowledged: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()
    phase = ["up"]  # up -> down (instance 1 killed) -> back (instance 1 restarted and ready)
    killed = f"127.0.0.1:{cluster.ports[1]}"
    NOT_IDEMPOTENT = ("start", "task", "vote")  # POSTs nginx must not resend: one inside the dead instance may 502

    def request(c: httpx.Client, what: str, method: str, url: str, **kw) -> httpx.Response:
        started = phase[0]
        r = c.request(method, url, **kw)
        tried = [u.strip() for u in r.headers.get("x-upstream", "").split(",") if u.strip()]
        with lock:
            events.append(
                {
                    "what": what,
                    "status": r.status_code,
                    "phase": started,
                    "tried": tried,
                    "answered_by": tried[-1] if tried else None,
                }
            )
        return r

    def simulated_rater(k: int) -> None:
        rng = random.Random(k)
        c = httpx.Client(base_url=cluster.front, timeout=30)
        request(c, "start", "POST", "/rate/start", data={"consent": "yes", "display_name": f"fault{k}"})
        while not stop.is_set():
            task = request(c, "task", "POST", "/api/rate/tasks")
            if task.status_code != 200:
                continue
            tid = task.json()["task_id"]
            request(c, "image", "GET", f"/rate/tasks/{tid}/{rng.choice('AB')}.png")
            r = request(c, "vote", "POST", "/api/rate/votes", json={"task_id": tid, **ANSWER})
            if r.status_code == 502:
                r = request(c, "vote retry", "POST", "/api/rate/votes", json={"task_id": tid, **ANSWER})
            if r.status_code == 201 or (r.status_code == 409 and "already has a vote" in r.text):
                with lock:
                    acknowledged.append(tid)
            stop.wait(60 / (VOTES_PER_MINUTE - 2) + rng.random())  # a human pace: stays under the per-rater limit

    def answered(by: str, in_phase: str, at_least: int = 1) -> bool:
        with lock:
            return (
                sum(e["answered_by"] == by and e["phase"] == in_phase and e["status"] < 500 for e in events) >= at_least
            )

    def count(in_phase: str) -> int:
        with lock:
            return sum(e["phase"] == in_phase for e in events)

    threads = [threading.Thread(target=simulated_rater, args=(k,)) for k in range(32)]
    for t in threads:
        t.start()
    try:
        # Every instance takes its share (instance 1 has raters' requests when it dies).
        wait_until(
            lambda: all(answered(f"127.0.0.1:{p}", "up", 3) for p in cluster.ports) and len(acknowledged) >= 10,
            180,
            "every instance answering",
        )
        cluster.kill(1)
        phase[0] = "down"
        wait_until(lambda: count("down") >= 40, 180, "40 requests answered while instance 1 was down")
        cluster.restart(1)
        cluster.wait_ready(1)
        phase[0] = "back"
        # Served by the restarted instance: a request sent after it was back, answered by its address.
        wait_until(
            lambda: answered(killed, "back") and len(acknowledged) > 50,
            180,
            "the restarted instance answering through nginx",
        )
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)

    stored = [
        r[0]
        for r in cluster.db.rows(
            "select v.task_id from votes v join raters r on r.id = v.rater_id where r.display_name like 'fault%'"
        )
    ]
    assert len(stored) == len(set(stored)) == len(acknowledged) and set(stored) == set(acknowledged)
    with lock:
        fivexx = [e for e in events if e["status"] >= 500]
    # Only a POST that was inside the dead instance when it died may fail (nginx cannot know whether it took effect, so
    # it does not send it twice): a 502 whose X-Upstream names the killed instance, sent before it came back. A vote's
    # retry, and every image request, must not see a 5xx.
    assert all(
        e["what"] in NOT_IDEMPOTENT and e["status"] == 502 and e["answered_by"] == killed and e["phase"] != "back"
        for e in fivexx
    ), fivexx
    assert len(fivexx) <= 32
    assert cluster.readyz(1)["rating"]["status"] == "ready"
    assert (
        cluster.db.scalar(
            "select count(*) from tasks t where t.answered and not "
            "exists (select 1 from votes v where v.task_id = t.id)"
        )
        == 0
    )
    assert cluster.db.scalar("select count(*) from votes v join tasks t on t.id = v.task_id where not t.answered") == 0


@pytest.mark.parametrize(
    "env, args, why",
    [
        (
            {"ARENA_DATABASE_URL": "postgresql+psycopg://arena:arena@127.0.0.1:9/arena"},
            [],
            "the votes database is shared (postgresql+psycopg)",
        ),
        ({"ARENA_DATABASE_URL": "sqlite:///votes.db"}, ["--workers", "3"], "3 worker processes serve it"),
        (
            {"ARENA_DATABASE_URL": "sqlite:///votes.db", "ARENA_WORKERS": "2", "ARENA_SECRET_KEY": ""},
            [],
            "2 worker processes serve it",
        ),
    ],
)
def test_serve_refuses_a_shared_setup_without_a_secret_key(monkeypatch, capsys, env, args, why):
    from deconv_arena.cli import main

    monkeypatch.delenv("ARENA_SECRET_KEY", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["serve", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ARENA_SECRET_KEY is not set" in err and why in err, err


def test_an_instance_whose_database_is_down_at_start_turns_rating_on_when_it_comes_up(
    tiny_store, tmp_path, monkeypatch
):
    """The database file's folder is unwritable at start (as a server that is not up yet): rating answers 503 with
    the reason, generation works, and once the database can be opened the instance rates without a restart."""
    import app.main
    from tests.conftest import make_client, wait_ready

    monkeypatch.setattr(app.main, "RATINGS_RETRY_MAX_S", 0.2)
    blocked = tmp_path / "not-yet"
    blocked.write_text("a file where the database folder should be")
    with make_client(tiny_store, database_url=f"sqlite:///{blocked / 'arena.db'}") as c:
        wait_ready(c)
        r = c.post("/api/rate/tasks")
        assert r.status_code == 503 and "retrying every" in r.json()["detail"], r.text
        assert c.get("/readyz").json()["rating"]["status"] == "unavailable"
        assert c.post("/generate", params={"model": "vae_upsample", "seed": 1, "n": 4}).status_code == 200
        blocked.unlink()
        deadline = time.monotonic() + 20
        while c.get("/readyz").json()["rating"]["status"] != "ready":
            assert time.monotonic() < deadline, "rating never came back"
            time.sleep(0.1)
        assert c.post("/rate/start", data={"consent": "yes"}, follow_redirects=False).status_code == 303
        assert c.post("/api/rate/tasks").status_code == 200
