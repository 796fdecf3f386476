"""Steps keep the layer's last progress report.

Revision ID: 0005_progress
Revises: 0004
Create Date: 2027-01-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_progress"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("execution_steps") as batch:
        batch.add_column(sa.Column("progress", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("execution_steps") as batch:
        batch.drop_column("progress")
