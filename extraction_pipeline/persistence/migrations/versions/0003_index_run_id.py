"""Index the run a file's status names: the sensors ask for the files of a run on every event.

``files_of_run`` filters on ``extraction_status ->> 'run_id'``; without an index every failed or
cancelled run read the whole ``cloud_files`` table. The same expression works on PostgreSQL (jsonb)
and SQLite (3.38 and later), and the repository's query uses it verbatim so both planners use it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cloud_files_run_id", "cloud_files", [sa.text("(extraction_status ->> 'run_id')")])


def downgrade() -> None:
    op.drop_index("ix_cloud_files_run_id", table_name="cloud_files")
