"""Steps record the Delta table versions they committed and read.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "step_tables",
        sa.Column("execution_id", sa.String(64), primary_key=True),
        sa.Column("layer", sa.String(16), primary_key=True),
        sa.Column("table_path", sa.String(512), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(64)),
        sa.ForeignKeyConstraint(
            ["execution_id", "layer"],
            ["execution_steps.execution_id", "execution_steps.layer"],
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_step_tables_table", "step_tables", ["table_path", "version"])


def downgrade() -> None:
    op.drop_index("ix_step_tables_table", table_name="step_tables")
    op.drop_table("step_tables")
