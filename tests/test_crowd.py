"""Crowd campaigns (app/ratings/crowd.py, app/api/study_pages.py): a platform's study link takes a participant from
consent through pair tasks, known-answer checks and "real or generated?" images to a completion code and the
platform's completion URL, on SQLite and on PostgreSQL; a return continues or shows the code again; bad ids, another
study's id, a full study and failed checks get clear pages; previews and screened-out participants never count; the
participant export matches the database; a participant can be deleted on request."""

from __future__ import annotations

import csv
import io
import os
import random
import re
import time
from pathlib import Path

import pytest

from app.ratings.crowd import (
    REAL,
    CrowdError,
    LinkError,
    generated_image,
    link_ids,
    load_crowd,
    load_crowds,
    plan_steps,
    real_image,
)
from tests.conftest import make_client, require, wait_ready

EXAMPLE = Path(__file__).resolve().parents[1] / "app" / "ratings" / "crowds" / "example.toml"
ADMIN = {"Authorization": "Bearer crowd-admin-token"}
PG = os.environ.get("ARENA_TEST_POSTGRES_URL")


def crowd_file(tmp_path: Path, **over) -> Path:
    fields = {
        "id": "pilot",
        "version": 1,
        "title": "Digits: real or generated?",
        "platform": "prolific",
        "study_id": "STUDY1",
        "places": 5,
        "pairs": 3,
        "checks": 2,
        "real_or_generated": 6,
        "real_share": 0.5,
        "images_per_model": 20,
        "screen_out_failures": 2,
        "expected_minutes": 4,
        "pay": "£0.80",
        "completion_code": "DONE42",
        "screen_out_code": "SCREEN7",
        "completion_url": "https://app.prolific.com/submissions/complete?cc={code}",
        "session_timeout_minutes": 30,
        **over,
    }
    lines = ["[crowd]"] + [f"{k} = {v!r}".replace("'", '"') for k, v in fields.items() if v is not None]
    path = tmp_path / f"{fields['id']}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


# ---- the campaign file and the link -----------------------------------------------------------------------------


def test_the_shipped_example_campaign_reads_and_plans_its_steps():
    crowd = load_crowd(EXAMPLE)
    steps = plan_steps(crowd, random.Random(1))
    assert len(steps) == crowd.steps_total == 55
    assert steps.count("gold") == 3 and steps.count("pair") == 12
    assert steps.count("real_digit") == 20 and steps.count("generated") == 20  # 1 : 1, exactly
    gaps = [i for i, s in enumerate(steps) if s == "gold"]
    assert gaps == [13, 27, 41]  # spread evenly, never first or last


@pytest.mark.parametrize(
    ("over", "words"),
    [
        ({"platform": "facebook"}, "platform = 'facebook'"),
        ({"places": 0}, "places = 0: Input should be greater than or equal to 1"),
        ({"real_share": 1.5}, "real_share = 1.5"),
        ({"screen_out_failures": 3}, "screen_out_failures = 3 exceeds checks = 2"),
        ({"completion_code": "SCREEN7"}, "completion_code and screen_out_code must differ"),
        ({"completion_code": "has space"}, "completion_code = 'has space'"),
        ({"colour": "blue"}, "colour = 'blue': Extra inputs are not permitted"),
        ({"pay": None}, "pay: Field required"),
    ],
)
def test_a_wrong_campaign_file_is_refused_in_one_line_naming_the_key(tmp_path, over, words):
    with pytest.raises(CrowdError) as e:
        load_crowd(crowd_file(tmp_path, **over))
    assert "pilot.toml: [crowd]" in str(e.value) and words in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_two_campaign_files_with_one_id_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    crowd_file(tmp_path / "a")
    crowd_file(tmp_path / "b")
    with pytest.raises(CrowdError, match="id = 'pilot' is used by another campaign file"):
        load_crowds(f"{tmp_path / 'a'},{tmp_path / 'b' / 'pilot.toml'}")
    assert list(load_crowds(str(tmp_path / "a"))) == ["pilot"] and load_crowds("") == {}


def test_each_platform_s_ids_are_read_and_bad_links_get_their_own_words(tmp_path):
    prolific = load_crowd(crowd_file(tmp_path))
    ids = link_ids(prolific, {"PROLIFIC_PID": "P1", "STUDY_ID": "STUDY1", "SESSION_ID": "S9"})
    assert ids == {"participant": "P1", "study": "STUDY1", "session": "S9"}
    mturk = load_crowd(crowd_file(tmp_path, platform="mturk", study_id="HIT1"))
    assert link_ids(mturk, {"workerId": "W1", "hitId": "HIT1", "assignmentId": "A1"}) == {
        "participant": "W1",
        "study": "HIT1",
        "assignment": "A1",
    }
    assert link_ids(prolific, {"PROLIFIC_PID": "P1"})["study"] is None  # a link without a study id is accepted
    generic = load_crowd(crowd_file(tmp_path, platform="generic", study_id=None))
    assert link_ids(generic, {"pid": "student-07"})["participant"] == "student-07"
    for crowd, query, status, title in (
        (prolific, {}, 400, "Your participant id is missing"),
        (prolific, {"PROLIFIC_PID": "P1", "STUDY_ID": "OTHER"}, 409, "This link is for another study"),
        (prolific, {"PROLIFIC_PID": "<script>"}, 400, "This link is damaged"),
        (prolific, {"PROLIFIC_PID": "x" * 65}, 400, "This link is damaged"),  # the store keeps 64 characters
        (mturk, {"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "hitId": "HIT1"}, 409, "Accept the HIT to begin"),
    ):
        with pytest.raises(LinkError) as e:
            link_ids(crowd, query)
        assert (e.value.status, e.value.title) == (status, title)


def test_the_real_share_fixes_exact_counts_and_images_are_fresh_and_named_fairly(tmp_path):
    crowd = load_crowd(crowd_file(tmp_path, real_or_generated=8, real_share=0.25))
    steps = plan_steps(crowd, random.Random(3))
    assert crowd.real_digits == 2 and steps.count("real_digit") == 2 and steps.count("generated") == 6
    rng = random.Random(0)
    assert generated_image(rng, crowd, {"m": 0}, [("m", s) for s in range(19)]) == ("m", 19, None)  # the unseen one
    model, seed, digit = generated_image(rng, crowd, {"c": 10}, [])
    assert digit == seed % 10  # a conditional model's image is asked for the digit its seed names
    labels = [i % 10 for i in range(30)]
    assert real_image(rng, labels, {}, [(REAL, i) for i in range(29)])[1] == 29
    for _ in range(20):  # all served models conditional: every real digit named, by its own class
        _, index, digit = real_image(rng, labels, {"c": 10}, [])
        assert digit is not None and labels[index] == digit
        assert real_image(rng, labels, {"u": 0}, [])[2] is None  # none conditional: none named


def test_two_first_visits_at_once_make_one_participant(tmp_path):
    from app.store import VoteStore, migrate

    url = f"sqlite:///{tmp_path / 'j.db'}"
    migrate(url)
    store = VoteStore(url)
    first = store.join("pilot", "prolific", {"participant": "P1", "session": "a"}, ["pair"])
    again = store.join("pilot", "prolific", {"participant": "P1", "session": "b"}, ["pair", "gold"])
    assert again.rater_id == first.rater_id and again.steps == ["pair"]
    assert len(store.participants("pilot")) == 1 and len(store.raters()) == 1


# ---- the walk through the service ---------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """The vote store's URL: SQLite, and PostgreSQL where .ci/run started one (emptied first)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crowd.db'}"
    require("postgres", None if PG else "set ARENA_TEST_POSTGRES_URL to run the crowd campaign on PostgreSQL")
    from sqlalchemy import create_engine, text

    from app.store import migrate

    migrate(PG)
    engine = create_engine(PG)
    with engine.begin() as con:
        for table in ("real_answers", "votes", "participants", "tasks", "raters", "settings"):
            con.execute(text(f"delete from {table}"))
    engine.dispose()
    return PG


def test_no_vote_or_answer_id_is_handed_out_twice(database):
    """The results' fingerprint (VoteStore.marker: counts and largest ids) changes with every write only if a deleted
    row's id never returns: a vote undone and cast again, a rater deleted and another answering, on each backend."""
    from app.store import VoteStore, migrate

    migrate(database)
    store = VoteStore(database)
    rid = store.new_rater("r")
    task = store.issue(rid, "pair", ["a", "b"], 1, 9, 3600)
    answers = {"overall": "A", "legibility": "A", "noise": "A"}
    store.cast(rid, task.id, answers, 4000, "chrome", "t", 10**6)
    first, marker = store.votes()[-1].id, store.marker()
    store.undo_last(rid, 60)
    store.cast(rid, task.id, {q: "B" for q in answers}, 4000, "chrome", "t", 10**6)
    assert store.votes()[-1].id > first and store.marker() != marker
    gone = store.new_rater("gone")
    store.answer_real(gone, store.issue(gone, "real", ["real_mnist"], 2, 1, 3600).id, True, 900)
    last = store.real_answers()[-1].id
    store.delete_rater(gone)
    store.answer_real(rid, store.issue(rid, "real", ["real_mnist"], 3, 1, 3600).id, False, 900)
    assert store.real_answers()[-1].id > last


def crowd_client(tiny_store, tmp_path, database, also: tuple[Path, ...] = (), **over):
    path = crowd_file(tmp_path, **over)
    return make_client(
        tiny_store,
        tmp_path,
        database_url=database,
        crowd_campaigns=",".join(str(p) for p in (path, *also)),
        secret_key="crowd-test-secret-0123456789abcdef",
        admin_token="crowd-admin-token",
        votes_per_minute=1000,
        results_ttl_s=0,  # /api/results recomputes at each change: the test reads what it just did
    )


def walk(c, pid: str, session: str = "s1", fail_checks: bool = False, limit: int = 40) -> dict:
    """A participant from the platform's link to the end, answering each step through the JSON API; checks are
    answered right, or wrong with `fail_checks`. Returns the final step."""
    c.cookies.clear()
    r = c.get("/study/pilot", params={"PROLIFIC_PID": pid, "STUDY_ID": "STUDY1", "SESSION_ID": session})
    assert r.status_code == 200 and "£0.80" in r.text and "about <strong>4 minutes</strong>" in r.text, r.text[-800:]
    form = {"PROLIFIC_PID": pid, "STUDY_ID": "STUDY1", "SESSION_ID": session, "consent": "yes"}
    r = c.post("/study/pilot/start", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/study/pilot/next"
    store = c.app.state.ratings.store
    for _ in range(limit):
        step = c.get("/api/study/pilot/next").json()
        if step["step"] != "task":
            return step
        task = step["task"]
        if task["kind"] == "real":
            source = store.task(task["task_id"]).models[0]
            said = "real" if source == REAL else "generated"
            answer = {"task_id": task["task_id"], "answer": said, "elapsed_ms": 700}
            assert c.post("/api/study/pilot/real", json=answer).status_code == 201
            continue
        models = store.task(task["task_id"]).models
        if "real_mnist" in models:  # a known-answer check: the real digits' side is the right answer
            right = "AB"[models.index("real_mnist")]
            ans = ("AB".replace(right, "") if fail_checks else right) or "A"
        else:
            ans = "A"
        vote = {"task_id": task["task_id"], "overall": ans, "legibility": ans, "noise": ans, "elapsed_ms": 900}
        assert c.post("/api/rate/votes", json=vote).status_code == 201
    raise AssertionError(f"{pid} did not finish in {limit} steps")


def test_a_crowd_campaign_runs_through_the_service(tiny_store, tmp_path, database):
    (tmp_path / "other").mkdir()
    second = crowd_file(tmp_path / "other", id="second", study_id="STUDY2", places=1)
    with crowd_client(tiny_store, tmp_path, database, also=(second,)) as c:
        wait_ready(c)
        store = c.app.state.ratings.store
        done = walk(c, "P1")
        assert done["step"] == "completed" and done["code"] == "DONE42" and done["done"] == done["of"] == 11
        assert done["redirect"] == "https://app.prolific.com/submissions/complete?cc=DONE42"
        kinds = [t.kind for t in _tasks(store, "P1")]
        assert kinds.count("real") == 6 and kinds.count("gold") == 2 and kinds.count("pair") == 3
        sources = [t.models[0] for t in _tasks(store, "P1") if t.kind == "real"]
        assert sources.count(REAL) == 3 and len(set(sources) - {REAL}) == 3  # 1 : 1, one image per served model
        p1 = store.participant("pilot", "P1")
        for step, t in zip(p1.steps, _tasks(store, "P1")):  # each task is the step the plan put there
            assert {"gold": "gold", "pair": "pair"}.get(step, "real") == t.kind
            assert t.kind != "real" or (t.models[0] == REAL) == (step == "real_digit")
        mine = [a for a in store.real_answers() if a.rater_id == p1.rater_id]
        assert len(mine) == 6 and all(a.said_real == (a.source == REAL) for a in mine)  # stored as answered

        # the same link again, in another session: the completion code again, and no new task
        issued = len(_tasks(store, "P1"))
        page = c.get("/study/pilot", params={"PROLIFIC_PID": "P1", "STUDY_ID": "STUDY1", "SESSION_ID": "s2"})
        assert page.status_code == 200 and "DONE42" in page.text and 'http-equiv="refresh"' in page.text
        assert len(_tasks(store, "P1")) == issued and store.participant("pilot", "P1").session_id == "s2"

        # a participant who fails the known-answer checks is screened out, with its own code and page
        out = walk(c, "P2", fail_checks=True)
        assert out["step"] == "screened_out" and out["code"] == "SCREEN7" and out["done"] < out["of"]
        page = c.get("/study/pilot/next")
        assert "The study ends here" in page.text and "SCREEN7" in page.text and "DONE42" not in page.text

        # a return mid-way continues where it stopped, with its pending task
        c.cookies.clear()
        c.get("/study/pilot", params={"PROLIFIC_PID": "P3", "STUDY_ID": "STUDY1"})
        c.post("/study/pilot/start", data={"PROLIFIC_PID": "P3", "STUDY_ID": "STUDY1", "consent": "yes"})
        first = c.get("/api/study/pilot/next").json()["task"]["task_id"]
        c.cookies.clear()
        back = c.get("/study/pilot", params={"PROLIFIC_PID": "P3", "STUDY_ID": "STUDY1", "SESSION_ID": "later"})
        assert back.status_code == 200 and c.get("/api/study/pilot/next").json()["task"]["task_id"] == first
        assert store.participant("pilot", "P3").session_id == "later"

        # the other campaign: P3's session is not a session there, P1 is nobody there, pilot's places are not its own
        assert c.get("/api/study/second/next").status_code == 401
        c.cookies.clear()
        other = c.get("/study/second", params={"PROLIFIC_PID": "P1", "STUDY_ID": "STUDY2"})
        assert other.status_code == 200 and "Start" in other.text and "DONE42" not in other.text

        # answers the store refuses: a pair task, another's task, an expired one, a second answer; and a pause
        c.cookies.clear()
        c.get("/study/pilot", params={"PROLIFIC_PID": "P3", "STUDY_ID": "STUDY1", "SESSION_ID": "later"})
        _refusals(c, store)

        # a researcher's preview walks the campaign, sees no code, and counts nowhere
        c.cookies.clear()
        assert c.get("/study/pilot/preview").status_code == 200
        preview = _finish(c)
        assert preview["step"] == "completed" and preview["code"] is None and preview["preview"]

        # what counts: P1's answers; P2 (screened out) and the preview are excluded, P3 unfinished still counts
        results = c.get("/api/results").json()
        counted = {p.participant_id: n for p, n in _answers(store).items()}
        assert results["realness"]["answers"] == counted["P1"] + counted["P3"]
        assert results["counts"]["excluded_raters"] == 2

        # the participant export matches the database
        rows = list(csv.DictReader(io.StringIO(c.get("/api/admin/participants?format=csv", headers=ADMIN).text)))
        by_id = {r["participant_id"]: r for r in rows}
        for p in store.participants("pilot"):
            row = by_id[p.participant_id]
            assert row["status"] == p.status and int(row["tasks_done"]) == store.answered_tasks(p.rater_id)
            assert row["study_id"] == (p.study_id or "") and row["session_id"] == (p.session_id or "")
        assert by_id["P1"]["included"] == "True" and by_id["P1"]["why"] == "" and by_id["P1"]["tasks_planned"] == "11"
        assert by_id["P2"]["included"] == "False" and by_id["P2"]["why"].startswith("screened out: 2 of")
        assert float(by_id["P1"]["time_on_task_s"]) == round((5 * 900 + 6 * 700) / 1000, 1)  # votes and answers
        assert (by_id["P1"]["checks_passed"], by_id["P2"]["checks_passed"], by_id["P2"]["checks_failed"]) == (
            "2",
            "0",
            "2",
        )
        assert by_id["P2"]["session_id"] == "s1" and by_id["P1"]["session_id"] == "s2"
        assert c.get("/api/admin/participants?format=csv").status_code in (401, 403)
        assert c.get("/api/admin/participants?campaign=nosuch", headers=ADMIN).status_code == 404
        assert c.get("/api/admin/participants?campaign=second", headers=ADMIN).json()["participants"] == []

        summary = c.get("/api/admin/participants", headers=ADMIN).json()["summary"]["pilot"]
        assert (
            summary["participants"] == 4 and summary["completed"] == summary["preview"] == summary["screened_out"] == 1
        )
        assert summary["places"] == 5 and summary["places_taken"] == 2  # P1 completed, P3 in a live session
        assert summary["included"] == 2  # P1 and P3; the screened-out P2 and the preview are out
        for action in ("exclude?why=nothing", "delete"):  # the organisers' actions need the admin token
            assert c.post(f"/api/admin/participants/pilot/P3/{action}").status_code == 401
        assert (
            store.participant("pilot", "P3") is not None
            and store.rater(store.participant("pilot", "P3").rater_id).excluded is None
        )

        # excluded by hand: P3's answers leave the results and the export says why
        r = c.post("/api/admin/participants/pilot/P3/exclude", params={"why": "answered in 0.2 s each"}, headers=ADMIN)
        assert r.status_code == 200
        assert c.get("/api/results").json()["realness"]["answers"] == counted["P1"]
        row = {r["participant_id"]: r for r in c.get("/api/admin/participants", headers=ADMIN).json()["participants"]}
        assert (
            row["P3"]["included"] is False and row["P3"]["why"] == "excluded by the organisers: answered in 0.2 s each"
        )

        # deleted on request: the participant, their answers and their tasks
        r = c.post("/api/admin/participants/pilot/P1/delete", headers=ADMIN)
        assert r.status_code == 200 and r.json()["deleted_answers"] == 11
        assert store.participant("pilot", "P1") is None
        assert c.post("/api/admin/participants/pilot/P1/delete", headers=ADMIN).status_code == 404


def _refusals(c, store) -> None:
    """With P3's session: real-or-generated answers the store refuses, each leaving the task as it was."""
    p3, p1 = store.participant("pilot", "P3"), store.participant("pilot", "P1")
    pair = store.issue(p3.rater_id, "pair", ["gan_upsample", "gan_transpose"], 5, 9, 600)
    theirs = store.issue(p1.rater_id, "real", [REAL], 3, 1, 600)
    expired = store.issue(p3.rater_id, "real", [REAL], 4, 1, -1)
    for task, status in ((pair.id, 404), (theirs.id, 403), (expired.id, 410)):
        r = c.post("/api/study/pilot/real", json={"task_id": task, "answer": "real"})
        assert r.status_code == status and not store.task(task).answered, (task, r.status_code, r.text)
    fresh = store.issue(p3.rater_id, "real", [REAL], 6, 1, 600)
    assert c.post("/api/study/pilot/real", json={"task_id": fresh.id, "answer": "real"}).status_code == 201
    again = c.post("/api/study/pilot/real", json={"task_id": fresh.id, "answer": "generated"})
    assert again.status_code == 409 and "one answer per image" in again.json()["detail"]
    assert c.post("/api/admin/pause", params={"paused": "true"}, headers=ADMIN).status_code == 200
    paused = store.issue(p3.rater_id, "real", [REAL], 7, 1, 600)
    assert c.get("/api/study/pilot/next").status_code == 503
    assert c.post("/api/study/pilot/real", json={"task_id": paused.id, "answer": "real"}).status_code == 503
    assert c.post("/api/admin/pause", params={"paused": "false"}, headers=ADMIN).status_code == 200
    assert c.post("/api/study/pilot/real", json={"task_id": paused.id, "answer": "real"}).status_code == 201


def _tasks(store, pid: str) -> list:
    from sqlalchemy import select

    from app.store import Task

    rater = store.participant("pilot", pid).rater_id
    with store.session() as s:
        return list(s.scalars(select(Task).where(Task.rater_id == rater).order_by(Task.issued_at)).all())


def _answers(store) -> dict:
    return {p: store.answered_tasks(p.rater_id) - _votes(store, p.rater_id) for p in store.participants("pilot")}


def _votes(store, rater: str) -> int:
    return sum(v.rater_id == rater for v in store.votes())


def _finish(c, limit: int = 40) -> dict:
    store = c.app.state.ratings.store
    for _ in range(limit):
        step = c.get("/api/study/pilot/next").json()
        if step["step"] != "task":
            return step
        t = step["task"]
        if t["kind"] == "real":
            c.post("/api/study/pilot/real", json={"task_id": t["task_id"], "answer": "real"})
        else:
            right = "AB"[store.task(t["task_id"]).models.index("real_mnist")] if t.get("n") and _gold(c, t) else "A"
            c.post(
                "/api/rate/votes", json={"task_id": t["task_id"], "overall": right, "legibility": right, "noise": right}
            )
    raise AssertionError("the preview did not finish")


def _gold(c, task: dict) -> bool:
    return "real_mnist" in c.app.state.ratings.store.task(task["task_id"]).models


def test_bad_links_a_full_study_and_an_abandoned_place_get_clear_pages(tiny_store, tmp_path):
    with crowd_client(
        tiny_store, tmp_path, f"sqlite:///{tmp_path / 'c.db'}", places=1, session_timeout_minutes=0.01
    ) as c:
        wait_ready(c)
        r = c.get("/study/pilot")
        assert r.status_code == 400 and "Your participant id is missing" in r.text and "PROLIFIC_PID" in r.text
        r = c.get("/study/pilot", params={"PROLIFIC_PID": "P1", "STUDY_ID": "ELSEWHERE"})
        assert r.status_code == 409 and "This link is for another study" in r.text and "STUDY1" in r.text
        assert c.get("/study/nosuch", params={"PROLIFIC_PID": "P1"}).status_code == 404
        r = c.post("/study/pilot/start", data={"PROLIFIC_PID": "P1", "STUDY_ID": "STUDY1"})
        assert r.status_code == 400 and "consent box" in r.text
        c.post("/study/pilot/start", data={"PROLIFIC_PID": "P1", "STUDY_ID": "STUDY1", "consent": "yes"})
        assert c.get("/api/study/pilot/next").json()["step"] == "task"
        c.cookies.clear()
        r = c.get("/study/pilot", params={"PROLIFIC_PID": "P2", "STUDY_ID": "STUDY1"})
        assert r.status_code == 409 and "This study is full" in r.text  # P1's live session holds the one place
        late = {"PROLIFIC_PID": "P2", "STUDY_ID": "STUDY1", "consent": "yes"}  # consented on a page opened earlier
        r = c.post("/study/pilot/start", data=late)
        assert r.status_code == 409 and "This study is full" in r.text
        assert c.app.state.ratings.store.participant("pilot", "P2") is None
        time.sleep(0.8)  # P1 leaves for longer than the session timeout (0.6 s here): the place frees
        r = c.get("/study/pilot", params={"PROLIFIC_PID": "P2", "STUDY_ID": "STUDY1"})
        assert r.status_code == 200 and "Start" in r.text
        assert c.get("/api/study/pilot/next").status_code == 401  # no session yet: the link first
        r = c.post("/api/study/pilot/real", json={"task_id": "ab" * 16, "answer": "maybe"})
        assert r.status_code == 422


def test_study_pages_read_as_a_participant_sees_them(tiny_store, tmp_path):
    """The HTML walk without JavaScript: consent, a real-or-generated page, a pair page with the study's progress
    and no undo, and the completion page with the code and the platform link."""
    with crowd_client(
        tiny_store, tmp_path, f"sqlite:///{tmp_path / 'h.db'}", pairs=1, checks=0, real_or_generated=1
    ) as c:
        wait_ready(c)
        c.post("/study/pilot/start", data={"PROLIFIC_PID": "H1", "STUDY_ID": "STUDY1", "consent": "yes"})
        seen = set()
        for _ in range(3):
            page = c.get("/study/pilot/next")
            text = re.sub(r"<[^>]+>", " ", page.text)
            assert "deconv-arena" not in page.text.split("<main")[0].split("<header")[1]  # no site navigation
            if 'id="real-form"' in page.text:
                seen.add("real")
                assert "Real or generated?" in text and "Task" in text and "of 2" in text
                task = re.search(r'name="task_id" value="([0-9a-f]+)"', page.text).group(1)
                img = c.get(f"/rate/tasks/{task}/A.png")
                assert img.status_code == 200 and img.headers["content-type"] == "image/png"
                c.post("/study/pilot/real", data={"task_id": task, "answer": "generated", "elapsed_ms": "700"})
            elif 'id="vote-form"' in page.text:
                seen.add("pair")
                assert 'action="/study/pilot/vote"' in page.text and "undo-form" not in page.text
                task = re.search(r'name="task_id" value="([0-9a-f]+)"', page.text).group(1)
                form = {"task_id": task, "overall": "A", "legibility": "B", "noise": "tie", "elapsed_ms": "1200"}
                assert c.post("/study/pilot/vote", data=form, follow_redirects=False).status_code == 303
        assert seen == {"real", "pair"}
        end = c.get("/study/pilot/next")
        assert "Your completion code" in end.text and "DONE42" in end.text
        assert 'href="https://app.prolific.com/submissions/complete?cc=DONE42"' in end.text


def test_the_crowd_command_checks_a_file_and_prints_the_platform_link(capsys, tmp_path):
    from deconv_arena.cli import main

    assert main(["crowd", str(EXAMPLE), "--host", "https://arena.example.org"]) == 0
    out = capsys.readouterr().out
    link = "https://arena.example.org/study/example-prolific?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}"
    assert link in out and "55 tasks — 12 pairs, 3 known-answer checks" in out and "£1.20" in out
    assert main(["crowd", str(crowd_file(tmp_path, places=0))]) == 2
    assert "pilot.toml: [crowd] places = 0" in capsys.readouterr().err


def test_a_mechanical_turk_worker_returns_with_the_assignment_id(tiny_store, tmp_path):
    submit = "https://www.mturk.com/mturk/externalSubmit?assignmentId={assignment}&code={code}"
    db = f"sqlite:///{tmp_path / 'mturk.db'}"
    over = {"platform": "mturk", "study_id": "HIT1", "completion_url": submit}
    with crowd_client(tiny_store, tmp_path, db, pairs=0, checks=0, real_or_generated=1, **over) as c:
        wait_ready(c)
        ids = {"workerId": "W1", "hitId": "HIT1", "assignmentId": "A1"}
        assert c.get("/study/pilot", params=ids).status_code == 200
        c.post("/study/pilot/start", data={**ids, "consent": "yes"})
        task = c.get("/api/study/pilot/next").json()["task"]
        c.post("/api/study/pilot/real", json={"task_id": task["task_id"], "answer": "real"})
        end = c.get("/api/study/pilot/next").json()
        assert end["redirect"] == "https://www.mturk.com/mturk/externalSubmit?assignmentId=A1&code=DONE42"
        assert c.app.state.ratings.store.participant("pilot", "W1").assignment_id == "A1"


def test_a_preview_that_fails_the_checks_stays_a_preview_and_sees_no_code(tiny_store, tmp_path):
    db = f"sqlite:///{tmp_path / 'preview.db'}"
    with crowd_client(tiny_store, tmp_path, db, pairs=0, checks=2, real_or_generated=0, screen_out_failures=2) as c:
        wait_ready(c)
        store = c.app.state.ratings.store
        assert c.get("/study/pilot/preview").status_code == 200
        for _ in range(2):
            task = c.get("/api/study/pilot/next").json()["task"]
            wrong = "AB"[1 - store.task(task["task_id"]).models.index("real_mnist")]
            vote = {"task_id": task["task_id"], "overall": wrong, "legibility": wrong, "noise": wrong}
            assert c.post("/api/rate/votes", json=vote).status_code == 201
        end = c.get("/api/study/pilot/next").json()
        assert end["step"] == "completed" and end["code"] is None and end["preview"]
        assert [p.status for p in store.participants("pilot")] == ["preview"]
