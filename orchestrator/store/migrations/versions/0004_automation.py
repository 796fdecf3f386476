"""Runs that start themselves: pending triggers, the landing scan's view, schedules' pause
state, webhook notifications; executions record their cause and when they were noticed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("executions") as table:
        table.add_column(sa.Column("cause", sa.String(16), nullable=True))
        table.add_column(sa.Column("noticed_at", _when(), nullable=True))
    # Executions that ended before notifications existed are not announced now.
    op.execute("UPDATE executions SET noticed_at = finished_at WHERE finished_at IS NOT NULL")
    op.execute("UPDATE executions SET cause = 'manual'")
    op.create_table(
        "job_triggers",
        sa.Column("workflow_id", sa.String(64), primary_key=True),
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("due_at", _when(), nullable=True),
        sa.Column("pending_since", _when(), nullable=True),
        sa.Column("cause", sa.String(16), nullable=False),
        sa.Column("waiting_for", sa.String(64), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("last_execution_id", sa.String(64), nullable=True),
        sa.Column("last_fired_at", _when(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_job_triggers_due_at", "job_triggers", ["due_at"])
    op.create_table(
        "landing_seen",
        sa.Column("workflow_id", sa.String(64), primary_key=True),
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(1024), primary_key=True),
        sa.Column("etag", sa.String(128), nullable=False),
        sa.Column("seen_at", _when(), nullable=False),
    )
    op.create_table(
        "job_schedules",
        sa.Column("workflow_id", sa.String(64), primary_key=True),
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("prefect_schedule_id", sa.String(64), nullable=True),
        sa.Column("synced_at", _when(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "execution_id",
            sa.String(64),
            sa.ForeignKey("executions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _when(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("sent_at", _when(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_notifications_due", "notifications", ["status", "next_attempt_at"])
    op.create_index("ix_notifications_execution_id", "notifications", ["execution_id"])


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("job_schedules")
    op.drop_table("landing_seen")
    op.drop_index("ix_job_triggers_due_at", table_name="job_triggers")
    op.drop_table("job_triggers")
    with op.batch_alter_table("executions") as table:
        table.drop_column("noticed_at")
        table.drop_column("cause")
