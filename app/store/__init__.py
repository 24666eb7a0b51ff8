"""The vote store: its tables (models), refusals (errors), database connection and migration (engine), and the
operations on it (operations: VoteStore). The names other modules import are re-exported here."""

from app.store.engine import make_engine, migrate
from app.store.errors import (
    DuplicateVote,
    NotYourTask,
    NoVoteToUndo,
    RateLimited,
    StoreError,
    StoreUnavailable,
    TaskExpired,
    UndoTooLate,
    UnknownRater,
    UnknownTask,
)
from app.store.operations import GOLD_FLAG_SHARE, IssuedTask, VoteStore, gold_flag
from app.store.schema import QUESTIONS, Base, Participant, Rater, RealAnswer, Setting, Task, Vote, utcnow

__all__ = [
    "QUESTIONS",
    "GOLD_FLAG_SHARE",
    "Base",
    "DuplicateVote",
    "IssuedTask",
    "NoVoteToUndo",
    "NotYourTask",
    "Participant",
    "RateLimited",
    "Rater",
    "RealAnswer",
    "Setting",
    "StoreError",
    "StoreUnavailable",
    "Task",
    "TaskExpired",
    "UndoTooLate",
    "UnknownRater",
    "UnknownTask",
    "Vote",
    "VoteStore",
    "gold_flag",
    "make_engine",
    "migrate",
    "utcnow",
]
