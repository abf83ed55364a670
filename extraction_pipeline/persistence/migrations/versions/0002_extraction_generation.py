"""Count extraction requests per file, so that every request gets its own Dagster run key.

``cloud_files.extraction_generation`` starts at 0 and grows by one each time the pipeline queues
the file (sensor, backfill). ``retry`` resets ``extraction_status`` to null (pending again); the
next request then uses a new run key instead of being deduplicated against the old run.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cloud_files") as batch:
        batch.add_column(
            sa.Column("extraction_generation", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("cloud_files") as batch:
        batch.drop_column("extraction_generation")
