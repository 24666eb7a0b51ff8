"""The vote store's refusals, as domain exceptions; app/api/refusals.py decides what each means over HTTP."""

from __future__ import annotations


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
