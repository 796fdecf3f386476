"""Workflows, jobs, executions and execution steps.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ACTIVE = sa.text("status IN ('PENDING', 'RUNNING')")


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("source_yaml", sa.Text()),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("workflow_id", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["workflow_id"], ["workflows.id"], ondelete="CASCADE"),
    )
    op.create_table(
        "executions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("workflow_id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("flow_run_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("layers", sa.JSON(), nullable=False),
        sa.Column("full_refresh", sa.Boolean(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("started_at", _when()),
        sa.Column("finished_at", _when()),
        sa.Column("error", sa.Text()),
        sa.Column("balance", sa.JSON()),
        sa.ForeignKeyConstraint(["workflow_id", "job_id"], ["jobs.workflow_id", "jobs.id"]),
    )
    op.create_index("ix_executions_flow_run_id", "executions", ["flow_run_id"])
    op.create_index(
        "ix_executions_job_created", "executions", ["workflow_id", "job_id", "created_at"]
    )
    op.create_index(
        "uq_executions_one_active_per_job",
        "executions",
        ["workflow_id", "job_id"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    op.create_table(
        "execution_steps",
        sa.Column("execution_id", sa.String(64), primary_key=True),
        sa.Column("layer", sa.String(16), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", _when()),
        sa.Column("finished_at", _when()),
        sa.Column("run_id", sa.String(64)),
        sa.Column("rows_in", sa.BigInteger()),
        sa.Column("rows_out", sa.BigInteger()),
        sa.Column("rows_rejected", sa.BigInteger()),
        sa.Column("manifest_key", sa.Text()),
        sa.Column("warnings", sa.JSON()),
        sa.Column("quality", sa.JSON()),
        sa.Column("error", sa.Text()),
        sa.ForeignKeyConstraint(["execution_id"], ["executions.id"], ondelete="CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("execution_steps")
    op.drop_index("uq_executions_one_active_per_job", table_name="executions")
    op.drop_index("ix_executions_job_created", table_name="executions")
    op.drop_index("ix_executions_flow_run_id", table_name="executions")
    op.drop_table("executions")
    op.drop_table("jobs")
    op.drop_table("workflows")
