"""Raters, tasks, votes and settings.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "raters",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("display_name", sa.String(40)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("gold_passed", sa.Integer, nullable=False),
        sa.Column("gold_failed", sa.Integer, nullable=False),
        sa.Column("flagged", sa.Boolean, nullable=False),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("rater_id", sa.String(32), sa.ForeignKey("raters.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("issued_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("answered", sa.Boolean, nullable=False),
    )
    op.create_table(
        "votes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(32), sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False, unique=True),
        sa.Column("rater_id", sa.String(32), sa.ForeignKey("raters.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("overall", sa.String(8), nullable=False),
        sa.Column("legibility", sa.String(8), nullable=False),
        sa.Column("noise", sa.String(8), nullable=False),
        sa.Column("elapsed_ms", sa.Integer, nullable=False),
        sa.Column("user_agent", sa.String(32), nullable=False),
        sa.Column("app_version", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    )
    op.create_table("settings", sa.Column("key", sa.String(32), primary_key=True), sa.Column("value", sa.String(200), nullable=False))


def downgrade() -> None:
    for table in ("settings", "votes", "tasks", "raters"):
        op.drop_table(table)
