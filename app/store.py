"""The vote store: SQLAlchemy 2 over SQLite (WAL) or PostgreSQL; schema by Alembic; every write one transaction."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Rater(Base):
    __tablename__ = "raters"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    gold_passed: Mapped[int] = mapped_column(Integer, default=0)
    gold_failed: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    rater_id: Mapped[str] = mapped_column(ForeignKey("raters.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # pair | four | gold
    models: Mapped[list] = mapped_column(JSON)  # in display order: models[0] is "A" (left)
    seed: Mapped[int] = mapped_column(BigInteger)
    n: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    answered: Mapped[bool] = mapped_column(Boolean, default=False)


class Vote(Base):
    __tablename__ = "votes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), unique=True)
    rater_id: Mapped[str] = mapped_column(ForeignKey("raters.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    models: Mapped[list] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(BigInteger)
    n: Mapped[int] = mapped_column(Integer)
    overall: Mapped[str] = mapped_column(String(8))
    legibility: Mapped[str] = mapped_column(String(8))
    noise: Mapped[str] = mapped_column(String(8))
    elapsed_ms: Mapped[int] = mapped_column(Integer)
    user_agent: Mapped[str] = mapped_column(String(32))
    app_version: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Setting(Base):
    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


QUESTIONS = ("overall", "legibility", "noise")


class StoreError(Exception):
    """The store refused a request; `detail` says why, in words for the person who asked. The subclasses say which
    refusal it was; the API layer (app/api/refusals.py) decides what each means over HTTP."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class UnknownRater(StoreError):
    """No rater has this id."""


class UnknownTask(StoreError):
    """No task with this id was ever issued."""


class NotYourTask(StoreError):
    """The task was issued to another rater."""


class DuplicateVote(StoreError):
    """The task already has a vote (one vote per task)."""


class TaskExpired(StoreError):
    """The task's time ran out before the vote came."""


class RateLimited(StoreError):
    """The rater voted more often than the per-minute limit allows."""


class NoVoteToUndo(StoreError):
    """The rater has no vote to undo."""


class UndoTooLate(StoreError):
    """The rater's last vote is older than the undo window."""


class StoreUnavailable(Exception):
    """The database cannot take writes (read-only file, disk full, server down)."""


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")  # an acknowledged vote survives a crash
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str):
    if url.startswith("sqlite"):
        db = make_url(url).database or ""
        # A plain file path gets its folder made; URI forms ("file:...?mode=ro") and memory do not.
        if db and db != ":memory:" and not db.startswith("file:"):
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def migrate(url: str) -> None:
    """Create or upgrade the schema with Alembic (the migrations live in app/migrations)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")


@dataclass
class IssuedTask:
    id: str
    kind: str
    models: list[str]
    seed: int
    n: int
    expires_at: dt.datetime


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
        with self._write() as s:
            votes = s.scalars(select(Vote).where(Vote.rater_id == rater_id)).all()
            for v in votes:
                s.delete(v)
            for t in s.scalars(select(Task).where(Task.rater_id == rater_id)).all():
                s.delete(t)
            rater = s.get(Rater, rater_id)
            if rater is None:
                raise UnknownRater(f"no rater {rater_id!r}")
            s.delete(rater)
            return len(votes)

    # tasks ------------------------------------------------------------------
    def issue(self, rater_id: str, kind: str, models: list[str], seed: int, n: int, ttl_s: int) -> IssuedTask:
        task = Task(
            id=secrets.token_hex(16),
            rater_id=rater_id,
            kind=kind,
            models=models,
            seed=seed,
            n=n,
            expires_at=utcnow() + dt.timedelta(seconds=ttl_s),
        )
        with self._write() as s:
            s.add(task)
        return IssuedTask(task.id, kind, models, seed, n, task.expires_at)

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
        return False
