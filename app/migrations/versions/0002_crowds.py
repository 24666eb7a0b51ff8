"""Crowd campaigns: participants keyed by their platform's ids, "real or generated?" answers, a task's named digit and
a rater's exclusion.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("raters") as batch:
        batch.add_column(sa.Column("excluded", sa.String(120)))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("digit", sa.Integer))
    op.create_table(
        "participants",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("participant_id", sa.String(64), nullable=False),
        sa.Column("study_id", sa.String(64)),
        sa.Column("session_id", sa.String(64)),
        sa.Column("assignment_id", sa.String(64)),
        sa.Column(
            "rater_id", sa.String(32), sa.ForeignKey("raters.id", ondelete="CASCADE"), nullable=False, unique=True
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("steps", sa.JSON, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("last_seen_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.UniqueConstraint("campaign", "participant_id"),
    )
    op.create_table(
        "real_answers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(32), sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False, unique=True),
        sa.Column("rater_id", sa.String(32), sa.ForeignKey("raters.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("image", sa.BigInteger, nullable=False),
        sa.Column("digit", sa.Integer),
        sa.Column("said_real", sa.Boolean, nullable=False),
        sa.Column("elapsed_ms", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("real_answers")
    op.drop_table("participants")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("digit")
    with op.batch_alter_table("raters") as batch:
        batch.drop_column("excluded")
