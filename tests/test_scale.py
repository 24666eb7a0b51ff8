"""Several instances behind nginx on one PostgreSQL database: one truth for raters, whichever instance answers.

Needs a PostgreSQL server (ARENA_TEST_POSTGRES_URL, whose role may create databases) and nginx; .ci/run provides
both and sets ARENA_TEST_REQUIRE_CLUSTER=1, so there they fail rather than skip when either is missing.
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

ADMIN_URL = os.environ.get("ARENA_TEST_POSTGRES_URL")
VOTES_PER_MINUTE = 12
ANSWER = {"overall": "A", "legibility": "B", "noise": "tie"}


def _need_cluster() -> None:
    why = missing_tools(ADMIN_URL)
    if why and os.environ.get("ARENA_TEST_REQUIRE_CLUSTER") == "1":
        pytest.fail(f"multi-instance tests required here, but {why}")
    if why:
        pytest.skip(why)


def test_instances_migrating_one_empty_database_at_once_all_succeed():
    """Four processes upgrade a fresh database at the same moment, three times over; none may fail.

    Processes, not threads: Alembic's migration context is one per process, as it is for real instances.
    """
    _need_cluster()
    for _ in range(3):
        db = FreshDatabase(ADMIN_URL)
        try:
            go = time.time() + 3  # all four start migrating at this instant, after their imports
            code = f"import time; from app.store import migrate; time.sleep(max(0, {go} - time.time())); migrate({db.url!r})"
            procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True) for _ in range(4)]
            errors = [p.communicate(timeout=120)[1] for p in procs]
            assert all(p.returncode == 0 for p in procs), [e[-800:] for e in errors if e]
            assert db.scalar("select count(*) from alembic_version") == 1
        finally:
            db.close()


@pytest.fixture(scope="module")
def cluster(tiny_store, tmp_path_factory):
    _need_cluster()
    env = {"ARENA_GOLD_RATE": "0", "ARENA_FOUR_RATE": "0", "ARENA_REPEAT_RATE": "0", "ARENA_RESULTS_TTL_S": "0", "ARENA_VOTES_PER_MINUTE": str(VOTES_PER_MINUTE)}
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
    first = rater(cluster.front)
    clients = [on(first, cluster.instance(i % cluster.n)) for i in range(3 * VOTES_PER_MINUTE)]
    tasks = [first.post("/api/rate/tasks").json()["task_id"] for _ in clients]
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
    instance, to the others.
    """
    events: list[tuple[float, float, str, int]] = []  # (start, end, what, status)
    acknowledged: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def request(c: httpx.Client, what: str, method: str, url: str, **kw) -> httpx.Response:
        t0 = time.monotonic()
        r = c.request(method, url, **kw)
        with lock:
            events.append((t0, time.monotonic(), what, r.status_code))
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
            stop.wait(60 / (VOTES_PER_MINUTE - 2) + rng.random())  # stays under the per-rater limit

    threads = [threading.Thread(target=simulated_rater, args=(k,)) for k in range(32)]
    for t in threads:
        t.start()
    time.sleep(6)
    killed_at = time.monotonic()
    cluster.kill(1)
    time.sleep(4)
    cluster.restart(1)
    cluster.wait_ready(1)
    back_at = time.monotonic()
    time.sleep(8)  # the restarted instance takes its share again
    stop.set()
    for t in threads:
        t.join(timeout=120)

    stored = [r[0] for r in cluster.db.rows("select v.task_id from votes v join raters r on r.id = v.rater_id where r.display_name like 'fault%'")]
    assert len(stored) == len(set(stored)) == len(acknowledged) and set(stored) == set(acknowledged)
    assert len(acknowledged) > 50, len(acknowledged)
    # Only a vote that was inside the dead instance when it died may fail (nginx cannot know whether it was
    # stored, so it does not send it twice); its retry, and every other request, must not see a 5xx.
    fivexx = [e for e in events if e[3] >= 500]
    assert all(e[2] == "vote" and e[3] == 502 and e[0] <= killed_at + 0.5 for e in fivexx), fivexx
    assert len(fivexx) <= 32
    # Served by the restarted instance again, and the database is consistent.
    assert cluster.readyz(1)["rating"]["status"] == "ready"
    assert sum(1 for e in events if e[0] > back_at) > 0
    assert cluster.db.scalar("select count(*) from tasks t where t.answered and not exists (select 1 from votes v where v.task_id = t.id)") == 0
    assert cluster.db.scalar("select count(*) from votes v join tasks t on t.id = v.task_id where not t.answered") == 0


@pytest.mark.parametrize(
    "env, args, why",
    [
        ({"ARENA_DATABASE_URL": "postgresql+psycopg://arena:arena@127.0.0.1:9/arena"}, [], "the votes database is shared (postgresql+psycopg)"),
        ({"ARENA_DATABASE_URL": "sqlite:///votes.db"}, ["--workers", "3"], "3 worker processes serve it"),
        ({"ARENA_DATABASE_URL": "sqlite:///votes.db", "ARENA_WORKERS": "2", "ARENA_SECRET_KEY": ""}, [], "2 worker processes serve it"),
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


def test_an_instance_whose_database_is_down_at_start_turns_rating_on_when_it_comes_up(tiny_store, tmp_path, monkeypatch):
    """The database file's folder is unwritable at start (as a server that is not up yet): rating answers 503 with
    the reason, generation works, and once the database can be opened the instance rates without a restart."""
    from tests.conftest import make_client, wait_ready

    import app.main

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
