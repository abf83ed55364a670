"""Create cloud_files, extraction_jobs and cloud_file_metadata.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cloud_files",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("filename", sa.String(1024), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=True),
        sa.Column("storage_uri", sa.Text(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("extraction_status", JSONType, nullable=True),
    )
    op.create_index(
        "ix_cloud_files_pending",
        "cloud_files",
        ["id"],
        postgresql_where=sa.text("extraction_status IS NULL"),
        sqlite_where=sa.text("extraction_status IS NULL"),
    )
    op.create_index("ix_cloud_files_uploaded_at", "cloud_files", ["uploaded_at"])

    op.create_table(
        "extraction_jobs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "cloud_file_id",
            sa.BigInteger(),
            sa.ForeignKey("cloud_files.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("next_retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dagster_run_id", sa.String(64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_kind", sa.String(32), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("result", JSONType, nullable=True),
    )
    op.create_index("ix_extraction_jobs_status_next_retry_at", "extraction_jobs", ["status", "next_retry_at"])
    op.create_index("ix_extraction_jobs_cloud_file_id", "extraction_jobs", ["cloud_file_id"])

    op.create_table(
        "cloud_file_metadata",
        sa.Column(
            "cloud_file_id",
            sa.BigInteger(),
            sa.ForeignKey("cloud_files.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("variant", sa.String(32), nullable=True),
        sa.Column("extractor_version", sa.String(32), nullable=False),
        sa.Column("metadata", JSONType, nullable=False),
        sa.Column("warnings", JSONType, nullable=False),
        sa.Column("extracted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cloud_file_metadata")
    op.drop_index("ix_extraction_jobs_cloud_file_id", table_name="extraction_jobs")
    op.drop_index("ix_extraction_jobs_status_next_retry_at", table_name="extraction_jobs")
    op.drop_table("extraction_jobs")
    op.drop_index("ix_cloud_files_uploaded_at", table_name="cloud_files")
    op.drop_index("ix_cloud_files_pending", table_name="cloud_files")
    op.drop_table("cloud_files")
