"""The vote store's tables, as SQLAlchemy 2 ORM models; Alembic (app/migrations) reads their metadata."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

QUESTIONS = ("overall", "legibility", "noise")  # what a vote answers: one column each in `votes`


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
    excluded: Mapped[str | None] = mapped_column(String(120))  # why this rater's answers never count (None: they do)


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    rater_id: Mapped[str] = mapped_column(ForeignKey("raters.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # pair | four | gold | real (one image: real or generated?)
    models: Mapped[list] = mapped_column(JSON)  # in display order: models[0] is "A" (left); a real task's one source
    seed: Mapped[int] = mapped_column(BigInteger)
    n: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    answered: Mapped[bool] = mapped_column(Boolean, default=False)
    digit: Mapped[int | None] = mapped_column(Integer)  # the digit a real task's image is named as (None: not named)


# An id is never handed out twice, even after its row is deleted (an undone vote): VoteStore.marker rests on it.
NEVER_REUSED = {"sqlite_autoincrement": True}


class Vote(Base):
    __tablename__ = "votes"
    __table_args__ = NEVER_REUSED
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


class Participant(Base):
    """A crowd campaign's participant: the platform's ids (nothing personal beyond them), the rater whose answers
    they give, the steps planned for them and where they stand."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("campaign", "participant_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(16))
    participant_id: Mapped[str] = mapped_column(String(64))
    study_id: Mapped[str | None] = mapped_column(String(64))
    session_id: Mapped[str | None] = mapped_column(String(64))
    assignment_id: Mapped[str | None] = mapped_column(String(64))
    rater_id: Mapped[str] = mapped_column(ForeignKey("raters.id", ondelete="CASCADE"), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # active | completed | screened_out | preview
    steps: Mapped[list] = mapped_column(JSON)  # the kinds of the participant's tasks, in order
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class RealAnswer(Base):
    """One answer to "real or generated?": which source the image came from and what the rater said."""

    __tablename__ = "real_answers"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), unique=True)
    rater_id: Mapped[str] = mapped_column(ForeignKey("raters.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(64))  # a served model, or real digits
    image: Mapped[int] = mapped_column(BigInteger)  # a model's seed, or the real digit's index in the shipped set
    digit: Mapped[int | None] = mapped_column(Integer)
    said_real: Mapped[bool] = mapped_column(Boolean)
    elapsed_ms: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
