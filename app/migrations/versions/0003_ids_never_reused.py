"""Vote and answer ids are never reused: SQLite's AUTOINCREMENT on `votes` and `real_answers`.

Without it SQLite gives a new row the largest id plus one, so a vote undone and answered again got the undone vote's
id; the results' fingerprint (count and largest id, `VoteStore.marker`) then did not change and /results kept showing
the undone answer. PostgreSQL's sequences never hand an id out twice: nothing to do there.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("votes", "real_answers")


def _recreate(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:  # a copy of the table under the new definition, rows, keys and indexes kept
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
