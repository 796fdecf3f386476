"""Workflow runs: one workflow execution over its jobs' executions and its own models.

Revision ID: 0006
Revises: 0005_progress
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005_progress"
branch_labels = None
depends_on = None

ACTIVE = "status IN ('PENDING', 'RUNNING')"


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workflow_executions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "workflow_id",
            sa.String(64),
            sa.ForeignKey("workflows.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("jobs", sa.JSON(), nullable=False),
        sa.Column("full_refresh", sa.Boolean(), nullable=False),
        sa.Column("cause", sa.String(16), nullable=True),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("started_at", _when(), nullable=True),
        sa.Column("finished_at", _when(), nullable=True),
        sa.Column("heartbeat_at", _when(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("models", sa.JSON(), nullable=True),
        sa.Column("gold", sa.JSON(), nullable=True),
    )
    op.create_index(
        "uq_workflow_executions_one_active",
        "workflow_executions",
        ["workflow_id"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )
    op.create_index(
        "ix_workflow_executions_created", "workflow_executions", ["workflow_id", "created_at"]
    )
    op.create_index("ix_workflow_executions_flow_run_id", "workflow_executions", ["flow_run_id"])
    with op.batch_alter_table("executions") as table:
        table.add_column(sa.Column("workflow_execution_id", sa.String(64), nullable=True))
        table.create_index("ix_executions_workflow_execution_id", ["workflow_execution_id"])


def downgrade() -> None:
    with op.batch_alter_table("executions") as table:
        table.drop_index("ix_executions_workflow_execution_id")
        table.drop_column("workflow_execution_id")
    op.drop_table("workflow_executions")
