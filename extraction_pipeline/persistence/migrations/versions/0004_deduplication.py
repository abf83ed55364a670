"""Deduplication: index ``cloud_files.sha256``, and remember a forced re-extraction; index
``cloud_files.storage_uri`` for housekeeping.

A run looks for a file with the same bytes (``sha256``) that succeeded already and copies its
metadata instead of extracting again; without an index every detected file read the whole
``cloud_files`` table. ``extraction_force`` is set by ``retry --force`` (the file is extracted even
when a duplicate succeeded) until the file is queued, where it moves into ``extraction_status``.
Housekeeping asks which of the blobs it lists some row still names (``storage_uri IN (...)``):
without an index, a scan of the table per batch of blobs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cloud_files_sha256", "cloud_files", ["sha256"])
    op.create_index("ix_cloud_files_storage_uri", "cloud_files", ["storage_uri"])
    # Plain ALTER TABLE on both backends (SQLite adds a NOT NULL column that has a default).
    op.add_column(
        "cloud_files",
        sa.Column("extraction_force", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later), not a batch copy of the table: a copy
    # would lose the expression index ix_cloud_files_run_id, which SQLAlchemy cannot reflect.
    op.drop_column("cloud_files", "extraction_force")
    op.drop_index("ix_cloud_files_storage_uri", table_name="cloud_files")
    op.drop_index("ix_cloud_files_sha256", table_name="cloud_files")
