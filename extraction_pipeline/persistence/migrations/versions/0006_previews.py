"""Previews: ``cloud_file_metadata.preview_uri`` names the file's PNG preview in the blob store.

A preview is a blob of its own (written like an upload), shared by the files that have the same
bytes (a deduplicated file gets its source's). Housekeeping keeps every blob that a
``storage_uri`` or a ``preview_uri`` names, hence the index (``preview_uri IN (...)`` per batch of
listed blobs).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN on both backends (nullable, no default).
    op.add_column("cloud_file_metadata", sa.Column("preview_uri", sa.Text(), nullable=True))
    op.create_index("ix_cloud_file_metadata_preview_uri", "cloud_file_metadata", ["preview_uri"])


def downgrade() -> None:
    op.drop_index("ix_cloud_file_metadata_preview_uri", table_name="cloud_file_metadata")
    op.drop_column("cloud_file_metadata", "preview_uri")
