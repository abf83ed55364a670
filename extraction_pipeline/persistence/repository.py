"""The queries the project needs, in one place: uploads, listings, status transitions, metadata."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from extraction_pipeline.persistence.database import create_db_engine, session_factory, translate_db_errors
from extraction_pipeline.persistence.models import CloudFile, CloudFileMetadata, ExtractionJob

STATUSES = ("pending", "queued", "running", "succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class NewFile:
    filename: str
    size_bytes: int
    sha256: str
    storage_uri: str
    content_type: str | None = None


class CloudFileRepository:
    """Typed access to ``cloud_files``, ``extraction_jobs`` and ``cloud_file_metadata``."""

    def __init__(self, engine: Engine, url: str | None = None) -> None:
        self.engine = engine
        self.url = url or engine.url.render_as_string(hide_password=False)
        self.sessions: sessionmaker[Session] = session_factory(engine)

    @classmethod
    def from_url(cls, url: str) -> CloudFileRepository:
        return cls(create_db_engine(url), url)

    def dispose(self) -> None:
        self.engine.dispose()

    # -- uploads -----------------------------------------------------------------------------------

    def add_file(self, new: NewFile) -> CloudFile:
        with translate_db_errors(self.url), self.sessions.begin() as session:
            row = CloudFile(
                filename=new.filename,
                size_bytes=new.size_bytes,
                sha256=new.sha256,
                content_type=new.content_type,
                storage_uri=new.storage_uri,
            )
            session.add(row)
            session.flush()
            return row

    # -- reads ---------------------------------------------------------------------------------------

    def get_file(self, file_id: int) -> CloudFile | None:
        with translate_db_errors(self.url), self.sessions() as session:
            return session.get(CloudFile, file_id)

    def list_files(
        self,
        *,
        status: str | None = None,
        fmt: str | None = None,
        limit: int | None = None,
        ids: Sequence[int] | None = None,
    ) -> list[CloudFile]:
        """Files in id order. ``status='pending'`` means not yet seen by the pipeline."""
        query = select(CloudFile).order_by(CloudFile.id)
        if status == "pending":
            query = query.where(CloudFile.extraction_status.is_(None))
        elif status is not None:
            query = query.where(CloudFile.extraction_status["status"].as_string() == status)
        if fmt is not None:
            query = query.where(CloudFile.extraction_status["format"].as_string() == fmt)
        if ids is not None:
            query = query.where(CloudFile.id.in_(list(ids)))
        if limit is not None:
            query = query.limit(limit)
        with translate_db_errors(self.url), self.sessions() as session:
            return list(session.scalars(query))

    def jobs_for(self, file_id: int) -> list[ExtractionJob]:
        query = select(ExtractionJob).where(ExtractionJob.cloud_file_id == file_id).order_by(ExtractionJob.id)
        with translate_db_errors(self.url), self.sessions() as session:
            return list(session.scalars(query))

    def metadata_for(self, file_id: int) -> CloudFileMetadata | None:
        with translate_db_errors(self.url), self.sessions() as session:
            return session.get(CloudFileMetadata, file_id)

    def count_files(self) -> int:
        with translate_db_errors(self.url), self.sessions() as session:
            return session.scalar(select(func.count()).select_from(CloudFile)) or 0


def status_of(row: CloudFile) -> str:
    """``pending`` for a file the pipeline has not seen yet, else its extraction status."""
    status: dict[str, Any] | None = row.extraction_status
    return "pending" if not status else str(status.get("status", "pending"))
