"""The vote store's operations: SQLAlchemy 2 over SQLite (WAL) or PostgreSQL; every write one transaction."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.store.engine import make_engine
from app.store.errors import (
    DuplicateVote,
    NotYourTask,
    NoVoteToUndo,
    RateLimited,
    StoreUnavailable,
    TaskExpired,
    UndoTooLate,
    UnknownRater,
    UnknownTask,
)
from app.store.schema import Participant, Rater, RealAnswer, Setting, Task, Vote, utcnow


@dataclass
class IssuedTask:
    id: str
    kind: str
    models: list[str]
    seed: int
    n: int
    expires_at: dt.datetime
    digit: int | None = None


class VoteStore:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    def _write(self):
        """A session in one transaction; database failures become StoreUnavailable."""
        return _Tx(self.session)

    # raters -----------------------------------------------------------------
    def new_rater(self, display_name: str | None) -> str:
        rater_id = secrets.token_hex(16)
        with self._write() as s:
            s.add(Rater(id=rater_id, display_name=display_name))
        return rater_id

    def rater(self, rater_id: str) -> Rater | None:
        with self.session() as s:
            return s.get(Rater, rater_id)

    def delete_rater(self, rater_id: str) -> int:
        """Delete a rater with every vote, answer, task and participant record of theirs; returns the votes and
        answers deleted."""
        with self._write() as s:
            rater = s.get(Rater, rater_id)
            if rater is None:
                raise UnknownRater(f"no rater {rater_id!r}")
            gone = 0
            for table in (Vote, RealAnswer, Task, Participant):
                for row in s.scalars(select(table).where(table.rater_id == rater_id)).all():
                    gone += table in (Vote, RealAnswer)
                    s.delete(row)
            s.flush()
            s.delete(rater)
            return gone

    # tasks ------------------------------------------------------------------
    def issue(
        self, rater_id: str, kind: str, models: list[str], seed: int, n: int, ttl_s: int, digit: int | None = None
    ) -> IssuedTask:
        task = Task(
            id=secrets.token_hex(16),
            rater_id=rater_id,
            kind=kind,
            models=models,
            seed=seed,
            n=n,
            digit=digit,
            expires_at=utcnow() + dt.timedelta(seconds=ttl_s),
        )
        with self._write() as s:
            s.add(task)
        return IssuedTask(task.id, kind, models, seed, n, task.expires_at, digit)

    def pending_task(self, rater_id: str) -> Task | None:
        """The rater's oldest task that is neither answered nor expired: a reload shows it again, and an undone
        vote's task comes back before any later one, so no task (a known-answer check included) is skipped."""
        with self.session() as s:
            return s.scalars(
                select(Task)
                .where(Task.rater_id == rater_id, Task.answered.is_(False), Task.expires_at > utcnow())
                .order_by(Task.issued_at, Task.id)
                .limit(1)
            ).first()

    def task(self, task_id: str) -> Task | None:
        with self.session() as s:
            return s.get(Task, task_id)

    # votes ------------------------------------------------------------------
    def cast(
        self,
        rater_id: str,
        task_id: str,
        answers: dict[str, str],
        elapsed_ms: int,
        user_agent: str,
        app_version: str,
        max_per_minute: int,
    ) -> Vote:
        """Store one vote for an issued, unexpired, unanswered task of this rater; all or nothing."""
        with self._write() as s:
            # The rater's row is locked first, so that concurrent votes of one rater (on any instance) are counted
            # one after another against the rate limit. SQLite ignores FOR UPDATE; it has one writer at a time.
            s.get(Rater, rater_id, with_for_update=True)
            task = s.get(Task, task_id)
            if task is None:
                raise UnknownTask(f"task {task_id[:40]!r} was never issued")
            if task.rater_id != rater_id:
                raise NotYourTask("this task was issued to another rater")
            if task.answered:
                raise DuplicateVote("this task already has a vote (one vote per task)")
            if task.expires_at < utcnow():
                raise TaskExpired("this task expired; fetch a new one")
            recent = s.scalar(
                select(func.count(Vote.id)).where(
                    Vote.rater_id == rater_id, Vote.created_at > utcnow() - dt.timedelta(seconds=60)
                )
            )
            if recent >= max_per_minute:
                raise RateLimited(f"at most {max_per_minute} votes a minute; slow down a little")
            vote = Vote(
                task_id=task.id,
                rater_id=rater_id,
                kind=task.kind,
                models=task.models,
                seed=task.seed,
                n=task.n,
                elapsed_ms=elapsed_ms,
                user_agent=user_agent,
                app_version=app_version,
                **answers,
            )
            task.answered = True
            s.add(vote)
            if task.kind == "gold":
                _score_gold(s, rater_id, task, answers["overall"])
            s.flush()
        return vote

    def answer_real(self, rater_id: str, task_id: str, said_real: bool, elapsed_ms: int) -> RealAnswer:
        """Store one "real or generated?" answer to an issued, unexpired, unanswered real task of this rater."""
        with self._write() as s:
            task = s.get(Task, task_id)
            if task is None or task.kind != "real":
                raise UnknownTask(f"task {task_id[:40]!r} was never issued as a real-or-generated task")
            if task.rater_id != rater_id:
                raise NotYourTask("this task was issued to another rater")
            if task.answered:
                raise DuplicateVote("this image already has your answer (one answer per image)")
            if task.expires_at < utcnow():
                raise TaskExpired("this task expired; fetch a new one")
            answer = RealAnswer(
                task_id=task.id,
                rater_id=rater_id,
                source=task.models[0],
                image=task.seed,
                digit=task.digit,
                said_real=said_real,
                elapsed_ms=elapsed_ms,
            )
            task.answered = True
            s.add(answer)
            s.flush()
        return answer

    def real_answers(self) -> list[RealAnswer]:
        with self.session() as s:
            return list(s.scalars(select(RealAnswer).order_by(RealAnswer.id)).all())

    def shown(self, rater_id: str, kind: str) -> list[tuple[list[str], int]]:
        """(models, seed) of every task of this kind issued to the rater: what they have seen."""
        with self.session() as s:
            return [
                (list(m), seed)
                for m, seed in s.execute(
                    select(Task.models, Task.seed).where(Task.rater_id == rater_id, Task.kind == kind)
                )
            ]

    def answered_tasks(self, rater_id: str) -> int:
        """How many of the rater's tasks have their answer: a participant's progress."""
        with self.session() as s:
            return s.scalar(select(func.count(Task.id)).where(Task.rater_id == rater_id, Task.answered.is_(True))) or 0

    # participants -----------------------------------------------------------
    def join(
        self, campaign: str, platform: str, ids: dict[str, str | None], steps: list[str], status: str = "active"
    ) -> Participant:
        """A new participant with a rater of their own, in one transaction; a participant id already in the campaign
        (two first visits at once) gets the stored record back."""
        rater_id = secrets.token_hex(16)
        record = Participant(
            campaign=campaign,
            platform=platform,
            participant_id=ids["participant"],
            study_id=ids.get("study"),
            session_id=ids.get("session"),
            assignment_id=ids.get("assignment"),
            rater_id=rater_id,
            status=status,
            steps=steps,
        )
        try:
            with self._write() as s:
                s.add(Rater(id=rater_id, display_name=None))
                s.flush()
                s.add(record)
        except DuplicateVote:  # the unique (campaign, participant) constraint: the other visit made the record
            found = self.participant(campaign, ids["participant"])
            if found is None:
                raise
            return found
        return record

    def participant(self, campaign: str, participant_id: str) -> Participant | None:
        with self.session() as s:
            return s.scalars(
                select(Participant).where(
                    Participant.campaign == campaign, Participant.participant_id == participant_id
                )
            ).first()

    def participant_of(self, rater_id: str) -> Participant | None:
        with self.session() as s:
            return s.scalars(select(Participant).where(Participant.rater_id == rater_id)).first()

    def participants(self, campaign: str | None = None) -> list[Participant]:
        with self.session() as s:
            q = select(Participant).order_by(Participant.id)
            return list(s.scalars(q if campaign is None else q.where(Participant.campaign == campaign)).all())

    def seen(self, participant: Participant, session_id: str | None = None) -> None:
        """The participant is here now (and, returning, under this session id)."""
        with self._write() as s:
            row = s.get(Participant, participant.id)
            row.last_seen_at = utcnow()
            if session_id:
                row.session_id = session_id

    def exclude(self, rater_id: str, why: str) -> None:
        """Leave a rater's answers out of every result from now on, saying why."""
        with self._write() as s:
            s.get(Rater, rater_id).excluded = why

    def settle(self, participant: Participant, status: str, excluded: str | None = None) -> None:
        """A participant finishes (completed) or is screened out; `excluded` says why their answers never count."""
        with self._write() as s:
            row = s.get(Participant, participant.id)
            row.status, row.finished_at = status, utcnow()
            if excluded:
                s.get(Rater, row.rater_id).excluded = excluded

    def places_taken(self, campaign: str, timeout_s: float) -> int:
        """Participants holding a place: completed, or active and seen within the session timeout (an abandoned
        session frees its place; screened-out and preview participants hold none)."""
        with self.session() as s:
            return (
                s.scalar(
                    select(func.count(Participant.id)).where(
                        Participant.campaign == campaign,
                        (Participant.status == "completed")
                        | (
                            (Participant.status == "active")
                            & (Participant.last_seen_at > utcnow() - dt.timedelta(seconds=timeout_s))
                        ),
                    )
                )
                or 0
            )

    def time_on_task_ms(self) -> dict[str, int]:
        """Per rater, the milliseconds their answered tasks took (votes and real-or-generated answers)."""
        out: dict[str, int] = {}
        with self.session() as s:
            for table in (Vote, RealAnswer):
                for rid, ms in s.execute(select(table.rater_id, func.sum(table.elapsed_ms)).group_by(table.rater_id)):
                    out[rid] = out.get(rid, 0) + int(ms or 0)
        return out

    def undo_last(self, rater_id: str, window_s: int) -> Vote:
        with self._write() as s:
            vote = s.scalars(select(Vote).where(Vote.rater_id == rater_id).order_by(Vote.id.desc()).limit(1)).first()
            if vote is None:
                raise NoVoteToUndo("you have no vote to undo")
            if vote.created_at < utcnow() - dt.timedelta(seconds=window_s):
                raise UndoTooLate(f"your last vote is older than {window_s} s and can no longer be undone")
            task = s.get(Task, vote.task_id)
            if task is not None:
                task.answered = False
                if task.kind == "gold":
                    _score_gold(s, rater_id, task, vote.overall, undo=True)
            s.delete(vote)
        return vote

    def votes(self) -> list[Vote]:
        with self.session() as s:
            return list(s.scalars(select(Vote).order_by(Vote.id)).all())

    def marker(self) -> list[int]:
        """A cheap fingerprint of everything the results rest on: votes and real-or-generated answers (count, last
        id) and raters (count, flagged, excluded, gold answers). It changes with every vote, answer, undo, deletion,
        exclusion and gold answer."""
        with self.session() as s:
            votes = s.execute(select(func.count(Vote.id), func.max(Vote.id))).one()
            answers = s.execute(select(func.count(RealAnswer.id), func.max(RealAnswer.id))).one()
            raters = s.execute(
                select(
                    func.count(Rater.id),
                    func.sum(case((Rater.flagged, 1), else_=0)),
                    func.sum(case((Rater.excluded.is_not(None), 1), else_=0)),
                    func.sum(Rater.gold_passed + Rater.gold_failed),
                )
            ).one()
            return [int(x or 0) for x in (*votes, *answers, *raters)]

    def raters(self) -> list[Rater]:
        with self.session() as s:
            return list(s.scalars(select(Rater)).all())

    def vote_count(self, rater_id: str) -> int:
        with self.session() as s:
            return s.scalar(select(func.count(Vote.id)).where(Vote.rater_id == rater_id)) or 0

    def pair_counts(self) -> dict[tuple[str, str], int]:
        with self.session() as s:
            rows = s.execute(select(Vote.models).where(Vote.kind == "pair")).all()
        counts: dict[tuple[str, str], int] = {}
        for (models,) in rows:
            key = tuple(sorted(models))
            counts[key] = counts.get(key, 0) + 1
        return counts

    def items_seen_by_others(self, rater_id: str, limit: int = 50) -> list[tuple[list[str], int, int]]:
        """(models, seed, n) of pair votes by other raters that this rater has not been shown, for repeats."""
        with self.session() as s:
            mine = {
                (tuple(sorted(m)), seed, n)
                for m, seed, n in s.execute(
                    select(Task.models, Task.seed, Task.n).where(Task.rater_id == rater_id, Task.kind == "pair")
                ).all()
            }
            rows = s.execute(
                select(Vote.models, Vote.seed, Vote.n)
                .where(Vote.rater_id != rater_id, Vote.kind == "pair")
                .order_by(Vote.id.desc())
                .limit(limit)
            ).all()
        return [(list(m), seed, n) for m, seed, n in rows if (tuple(sorted(m)), seed, n) not in mine]

    # settings ---------------------------------------------------------------
    def paused(self) -> bool:
        with self.session() as s:
            row = s.get(Setting, "paused")
            return row is not None and row.value == "1"

    def set_paused(self, paused: bool) -> None:
        with self._write() as s:
            s.merge(Setting(key="paused", value="1" if paused else "0"))

    def check(self) -> None:
        """Raise StoreUnavailable if the database cannot be reached."""
        try:
            with self.engine.connect() as c:
                c.exec_driver_sql("SELECT 1")
        except OperationalError as e:
            raise StoreUnavailable(str(e.orig)[:200]) from None


GOLD_FLAG_SHARE = 0.25  # flag a rater whose failed share of gold tasks exceeds this


def gold_flag(passed: int, failed: int) -> bool:
    """The screening rule: a rater is flagged while more than GOLD_FLAG_SHARE of their gold tasks failed."""
    total = passed + failed
    return total > 0 and failed / total > GOLD_FLAG_SHARE


def _score_gold(s: Session, rater_id: str, task: Task, overall: str, undo: bool = False) -> None:
    rater = s.get(Rater, rater_id)
    real_label = "AB"[task.models.index("real_mnist")]
    passed = overall == real_label
    step = -1 if undo else 1
    if passed:
        rater.gold_passed += step
    else:
        rater.gold_failed += step
    rater.flagged = gold_flag(rater.gold_passed, rater.gold_failed)


class _Tx:
    def __init__(self, factory):
        self.factory = factory

    def __enter__(self) -> Session:
        self.s = self.factory()
        self.s.begin()
        return self.s

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                self.s.commit()
            else:
                self.s.rollback()
        except OperationalError as e:
            self.s.rollback()
            raise StoreUnavailable(str(e.orig)[:200]) from None
        except IntegrityError as e:
            self.s.rollback()
            raise DuplicateVote("this task already has a vote (one vote per task)") from e
        finally:
            self.s.close()
        if exc_type is not None and issubclass(exc_type, OperationalError):
            raise StoreUnavailable(str(exc.orig)[:200]) from None
        if exc_type is not None and issubclass(exc_type, IntegrityError):  # two votes on one task at once (flush)
            raise DuplicateVote("this task already has a vote (one vote per task)") from exc
        return False
