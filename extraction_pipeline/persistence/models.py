"""SQLAlchemy 2 typed models of the three tables in INTERFACE.md."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from extraction_pipeline.persistence.state import ExtractionState, parse_state, utcnow

# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments INTEGER PRIMARY KEY columns.
BigId = BigInteger().with_variant(Integer(), "sqlite")


# ``extraction_status ->> 'run_id'``: the same SQL on PostgreSQL (jsonb) and SQLite (3.38+), so one
# expression index (``ix_cloud_files_run_id``) serves the query of both (``files_of_run``, what the
# sensors ask per run). Constant SQL: the query must spell the index's expression exactly.
RUN_ID_SQL = "cloud_files.extraction_status ->> 'run_id'"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them without an offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class CloudFile(Base):
    """One uploaded file: its bytes live in the blob store at ``storage_uri``."""

    __tablename__ = "cloud_files"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    filename: Mapped[str] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str | None] = mapped_column(String(255))
    storage_uri: Mapped[str] = mapped_column(Text)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Null until the pipeline sees the file; then {"status": ..., "format": ..., ...}.
    extraction_status: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    # How many times a run was requested for this file: part of the sensor's run_key, so a
    # retry is a new request while a re-evaluated tick is the same one.
    extraction_generation: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Set by ``retry --force``: the next request extracts the file even when a file with the same
    # bytes succeeded already (no deduplication); moved into the status when the file is queued.
    extraction_force: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        # The sensor's query: pending files in id order. Partial, so it stays small with millions of rows.
        Index(
            "ix_cloud_files_pending",
            "id",
            postgresql_where=text("extraction_status IS NULL"),
            sqlite_where=text("extraction_status IS NULL"),
        ),
        Index("ix_cloud_files_uploaded_at", "uploaded_at"),
        # The sensors' query per run (files_of_run): the run a file's status names.
        Index("ix_cloud_files_run_id", text("(extraction_status ->> 'run_id')")),
        # Deduplication: the files with the same bytes as the ones a run detects.
        Index("ix_cloud_files_sha256", "sha256"),
        # Housekeeping: which of the blobs it lists a row still names.
        Index("ix_cloud_files_storage_uri", "storage_uri"),
    )

    @property
    def state(self) -> ExtractionState | None:
        """``extraction_status`` typed; None while the file is pending."""
        return parse_state(self.extraction_status)

    @property
    def state_document(self) -> dict[str, Any] | None:
        """``extraction_status`` as stored (a copy), for output that shows the document itself."""
        state = self.state
        return state.document() if state is not None else self.extraction_status


class ExtractionJob(Base):
    """One attempt at extracting one file."""

    __tablename__ = "extraction_jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    cloud_file_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("cloud_files.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dagster_run_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error_kind: Mapped[str | None] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    __table_args__ = (
        Index("ix_extraction_jobs_status_next_retry_at", "status", "next_retry_at"),
        Index("ix_extraction_jobs_cloud_file_id", "cloud_file_id"),
    )


class CloudFileMetadata(Base):
    """The materialized metadata: one row per file, replaced in place on re-extraction."""

    __tablename__ = "cloud_file_metadata"

    cloud_file_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("cloud_files.id", ondelete="CASCADE"), primary_key=True
    )
    format: Mapped[str] = mapped_column(String(32))
    variant: Mapped[str | None] = mapped_column(String(32))
    extractor_version: Mapped[str] = mapped_column(String(32))
    # "metadata" is reserved on declarative classes, hence the attribute name.
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType)
    warnings: Mapped[list[str]] = mapped_column(JSONType)
    extracted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The PNG preview in the blob store (None: none was made). Files with the same bytes share it.
    preview_uri: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_cloud_file_metadata_preview_uri", "preview_uri"),)


class CloudFileText(Base):
    """A file's plain text (the envelope's ``text``), at most ``EXTRACTION_MAX_TEXT_CHARS`` characters.

    Its full-text index is not declared here: it differs by backend and only migration 0005 makes
    it (PostgreSQL: the generated ``tsv`` column and its GIN index; SQLite: the FTS5 table
    ``cloud_file_text_fts`` kept in step by triggers). ``persistence/search.py`` queries it.
    """

    __tablename__ = "cloud_file_text"

    # INTEGER PRIMARY KEY on SQLite: the rowid that the FTS5 index refers to.
    cloud_file_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("cloud_files.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    text: Mapped[str] = mapped_column(Text)
    char_count: Mapped[int] = mapped_column(Integer)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
