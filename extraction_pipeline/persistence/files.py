"""``cloud_files``: uploads, the reads of the CLI and the sensors, and the status transitions of a run."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, literal_column, or_, select, update
from sqlalchemy.orm import Session

from extraction_pipeline.persistence.database import Store, translate_db_errors
from extraction_pipeline.persistence.models import (
    RUN_ID_SQL,
    CloudFile,
    CloudFileMetadata,
    CloudFileText,
    ExtractionJob,
)
from extraction_pipeline.persistence.state import (
    FINAL_STATUSES,
    OPEN_JOB_STATUSES,
    FileStatus,
    JobStatus,
    apply_status,
    status_of,
    utcnow,
)


def locked_files(session: Session, ids: Iterable[int]) -> list[CloudFile]:
    """The rows of ``ids`` that exist, locked for this transaction, in id order (every writer locks
    in the same order, so two batches never wait for each other in a cycle)."""
    query = select(CloudFile).where(CloudFile.id.in_(list(ids))).order_by(CloudFile.id)
    return list(session.scalars(query.with_for_update()))


@dataclass(frozen=True)
class NewFile:
    filename: str
    size_bytes: int
    sha256: str
    storage_uri: str
    content_type: str | None = None


@dataclass(frozen=True)
class DeletedFile:
    """A file whose rows are gone: what is left to remove outside the database."""

    id: int
    storage_uri: str
    # Its preview, when no other file shares it (a duplicate keeps its source's preview).
    preview_uri: str | None = None


class FileQueries(Store):
    """Typed access to ``cloud_files`` (and the metadata row of a file)."""

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
        after_id: int | None = None,
    ) -> list[CloudFile]:
        """Files in id order. ``status='pending'`` means not yet seen by the pipeline.

        ``after_id``: only files with a greater id (keyset pagination: a page costs the same
        whether it is the first or the thousandth, and uploads in between shift nothing)."""
        query = _where_status(select(CloudFile).order_by(CloudFile.id), status)
        if after_id is not None:
            query = query.where(CloudFile.id > after_id)
        if fmt is not None:
            query = query.where(CloudFile.extraction_status["format"].as_string() == fmt)
        if ids is not None:
            query = query.where(CloudFile.id.in_(list(ids)))
        if limit is not None:
            query = query.limit(limit)
        with translate_db_errors(self.url), self.sessions() as session:
            return list(session.scalars(query))

    def metadata_for(self, file_id: int) -> CloudFileMetadata | None:
        with translate_db_errors(self.url), self.sessions() as session:
            return session.get(CloudFileMetadata, file_id)

    def metadata_of(self, file_ids: Sequence[int]) -> dict[int, CloudFileMetadata]:
        """The metadata rows of several files (those that have one)."""
        query = select(CloudFileMetadata).where(CloudFileMetadata.cloud_file_id.in_(list(file_ids)))
        with translate_db_errors(self.url), self.sessions() as session:
            return {meta.cloud_file_id: meta for meta in session.scalars(query)}

    def record_preview(self, file_id: int, *, uri: str | None, warning: str | None = None) -> bool:
        """A preview made after the extraction (on first request): ``uri`` names it, or ``warning``
        (``no preview: ...``) joins the metadata's warnings when none could be made. Only while the
        file's metadata row has no preview yet (a re-extraction or another request may have made
        one meanwhile); returns whether it was recorded."""
        with translate_db_errors(self.url), self.sessions.begin() as session:
            meta = session.get(CloudFileMetadata, file_id, with_for_update=True)
            if meta is None or meta.preview_uri is not None:
                return False
            if uri is not None:
                meta.preview_uri = uri
            elif warning is not None and warning not in (meta.warnings or []):
                meta.warnings = [*(meta.warnings or []), warning]
            return True

    def count_files(self) -> int:
        with translate_db_errors(self.url), self.sessions() as session:
            return session.scalar(select(func.count()).select_from(CloudFile)) or 0

    def ids_by_filter(
        self,
        *,
        status: str | None = None,
        uploaded_before: datetime | None = None,
        outdated: dict[str, str] | None = None,
    ) -> list[int]:
        """Ids for ``backfill``: every file, or by status, upload date, or outdated extractor version."""
        query = _where_status(select(CloudFile.id).order_by(CloudFile.id), status)
        if uploaded_before is not None:
            query = query.where(CloudFile.uploaded_at < uploaded_before)
        if outdated is not None:
            query = query.join(CloudFileMetadata, CloudFileMetadata.cloud_file_id == CloudFile.id)
            stale = [
                (CloudFileMetadata.format == fmt) & (CloudFileMetadata.extractor_version != version)
                for fmt, version in outdated.items()
            ]
            query = query.where(or_(*stale))
        with translate_db_errors(self.url), self.sessions() as session:
            return list(session.scalars(query))

    def files_of_run_query(self, run_id: str, statuses: Sequence[str] | None = None) -> Any:
        """The query of ``files_of_run``. Its condition is the expression of the index
        ``ix_cloud_files_run_id``, written the same way, so PostgreSQL and SQLite both use it (a
        ``extraction_status["run_id"]`` comparison compiles to something no index matches)."""
        query = select(CloudFile).where(literal_column(RUN_ID_SQL) == run_id)
        if statuses is not None:
            query = query.where(
                CloudFile.extraction_status["status"].as_string().in_([str(s) for s in statuses])
            )
        return query

    def files_of_run(self, run_id: str, statuses: Sequence[str] | None = None) -> list[CloudFile]:
        """Files whose status names ``run_id`` (optionally only in ``statuses``)."""
        query = self.files_of_run_query(run_id, statuses)
        with translate_db_errors(self.url), self.sessions() as session:
            return list(session.scalars(query.order_by(CloudFile.id)))

    # -- status transitions of a run -------------------------------------------------------------------

    def set_status(
        self, file_id: int, status: str, *, expect_run_id: str | None = None, **fields: Any
    ) -> bool:
        """Move one file to ``status`` keeping its other keys; with ``expect_run_id`` only if it still
        belongs to that run. Returns whether the file changed."""
        with translate_db_errors(self.url), self.sessions.begin() as session:
            row = session.get(CloudFile, file_id, with_for_update=True)
            if row is None:
                return False
            return apply_status(row, status, expect_run_id=expect_run_id, **fields)

    def mark_running(self, formats: dict[int, str], *, run_id: str) -> list[int]:
        """Detected files -> ``running`` with their format, in ONE transaction (a run's batch).

        Like ``set_status(id, "running", run_id=..., format=..., error=None)`` per file, but files
        cancelled meanwhile are left alone. Returns the ids that changed.
        """
        if not formats:
            return []
        changed: list[int] = []
        with translate_db_errors(self.url), self.sessions.begin() as session:
            for row in locked_files(session, formats):
                if status_of(row) == FileStatus.CANCELLED:
                    continue
                apply_status(row, FileStatus.RUNNING, run_id=run_id, format=formats[row.id], error=None)
                changed.append(row.id)
        return changed

    def cancel_files(self, ids: Iterable[int]) -> list[CloudFile]:
        """Files not finished yet become ``cancelled`` (their open job rows too); returns them."""
        changed: list[CloudFile] = []
        with translate_db_errors(self.url), self.sessions.begin() as session:
            rows = session.scalars(select(CloudFile).where(CloudFile.id.in_(list(ids))).with_for_update())
            for row in rows:
                if status_of(row) in FINAL_STATUSES:
                    continue
                previous = dict(row.extraction_status or {})
                apply_status(row, FileStatus.CANCELLED, error=None)
                row.extraction_status = {
                    **(row.extraction_status or {}),
                    "previous_run_id": previous.get("run_id"),
                }
                changed.append(row)
            if changed:  # their open job rows, in one statement
                session.execute(
                    update(ExtractionJob)
                    .where(
                        ExtractionJob.cloud_file_id.in_([row.id for row in changed]),
                        ExtractionJob.status.in_([s.value for s in OPEN_JOB_STATUSES]),
                    )
                    .values(status=JobStatus.CANCELLED.value, finished_at=utcnow(), next_retry_at=None)
                )
        return changed

    # -- deletion ---------------------------------------------------------------------------------------

    def delete_files(self, ids: Iterable[int]) -> list[DeletedFile]:
        """Delete the files of ``ids`` that exist and return them (their blobs are the caller's).

        The attempts, the metadata and the text are deleted explicitly rather than left to ``ON DELETE
        CASCADE``: a SQLite connection opened without ``PRAGMA foreign_keys`` would keep them."""
        wanted = sorted(set(ids))
        if not wanted:
            return []
        with translate_db_errors(self.url), self.sessions.begin() as session:
            found = session.execute(
                select(CloudFile.id, CloudFile.storage_uri)
                .where(CloudFile.id.in_(wanted))
                .order_by(CloudFile.id)
                .with_for_update()
            ).all()
            gone = [file_id for file_id, _ in found]
            previews: dict[int, str] = {}
            if gone:
                previews = {
                    file_id: str(uri)
                    for file_id, uri in session.execute(
                        select(CloudFileMetadata.cloud_file_id, CloudFileMetadata.preview_uri).where(
                            CloudFileMetadata.cloud_file_id.in_(gone),
                            CloudFileMetadata.preview_uri.is_not(None),
                        )
                    )
                }
                session.execute(delete(ExtractionJob).where(ExtractionJob.cloud_file_id.in_(gone)))
                session.execute(delete(CloudFileMetadata).where(CloudFileMetadata.cloud_file_id.in_(gone)))
                session.execute(delete(CloudFileText).where(CloudFileText.cloud_file_id.in_(gone)))
                session.execute(delete(CloudFile).where(CloudFile.id.in_(gone)))
                if previews:  # a preview that a remaining file shares (a duplicate's) stays
                    shared = set(
                        session.scalars(
                            select(CloudFileMetadata.preview_uri).where(
                                CloudFileMetadata.preview_uri.in_(sorted(set(previews.values())))
                            )
                        )
                    )
                    previews = {key: uri for key, uri in previews.items() if uri not in shared}
        return [
            DeletedFile(id=file_id, storage_uri=uri, preview_uri=previews.get(file_id))
            for file_id, uri in found
        ]


def _where_status(query: Any, status: str | None) -> Any:
    """Only files in ``status`` (``pending``: not seen by the pipeline yet); all when None."""
    if status == FileStatus.PENDING:
        return query.where(CloudFile.extraction_status.is_(None))
    if status is not None:
        return query.where(CloudFile.extraction_status["status"].as_string() == str(status))
    return query
