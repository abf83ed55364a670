"""The queries the project needs, in one place: uploads, listings, status transitions, metadata."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Table, func, literal_column, null, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from extraction_pipeline.persistence.database import create_db_engine, session_factory, translate_db_errors
from extraction_pipeline.persistence.models import (
    RUN_ID_SQL,
    CloudFile,
    CloudFileMetadata,
    ExtractionJob,
    utcnow,
)
from extraction_pipeline.persistence.state import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    OPEN_JOB_STATUSES,
    STATUSES,
    FileStatus,
    JobStatus,
    status_of_document,
)

__all__ = [
    "ACTIVE_STATUSES",
    "FINAL_STATUSES",
    "STATUSES",
    "CloudFileRepository",
    "NewFile",
    "QueuedFile",
    "new_status",
    "status_of",
]


@dataclass(frozen=True)
class QueuedFile:
    """A file the pipeline just queued: its partition key and the Dagster run key of the request."""

    id: int
    generation: int

    @property
    def partition_key(self) -> str:
        return str(self.id)

    @property
    def run_key(self) -> str:
        return f"cloud-file-{self.id}-{self.generation}"


def new_status(status: str, **fields: Any) -> dict[str, Any]:
    """An ``extraction_status`` document with every key of INTERFACE.md."""
    now = utcnow().isoformat()
    document: dict[str, Any] = {
        "status": FileStatus(status).value,
        "format": None,
        "job_id": None,
        "run_id": None,
        "attempts": 0,
        "updated_at": now,
        "completed_at": now if status in FINAL_STATUSES else None,
        "error": None,
    }
    document.update(fields)
    return document


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
        query = _where_status(select(CloudFile).order_by(CloudFile.id), status)
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

    # -- the pipeline: queueing -------------------------------------------------------------------------

    def pending_ids(self, limit: int) -> list[int]:
        """The oldest files the pipeline has not seen yet (uses the partial index ix_cloud_files_pending)."""
        query = select(CloudFile.id).where(CloudFile.extraction_status.is_(None)).order_by(CloudFile.id)
        with translate_db_errors(self.url), self.sessions() as session:
            return list(session.scalars(query.limit(limit)))

    def queue_files(self, ids: Iterable[int], *, only_pending: bool = True, **extra: Any) -> list[QueuedFile]:
        """Mark files ``queued`` and give each a new request generation, in one transaction.

        With ``only_pending`` a file that is no longer pending (another tick, a concurrent command)
        is left alone and not returned, so two callers never both queue the same file.
        """
        ids = sorted(set(ids))
        if not ids:
            return []
        queued: list[QueuedFile] = []
        with translate_db_errors(self.url), self.sessions.begin() as session:
            query = select(CloudFile.id, CloudFile.extraction_generation).where(CloudFile.id.in_(ids))
            if only_pending:
                query = query.where(CloudFile.extraction_status.is_(None))
            else:
                query = query.where(
                    CloudFile.extraction_status.is_(None)
                    | CloudFile.extraction_status["status"]
                    .as_string()
                    .not_in([s.value for s in ACTIVE_STATUSES])
                )
            rows = session.execute(query.with_for_update()).all()
            for file_id, generation in rows:
                item = QueuedFile(id=file_id, generation=generation)
                condition = CloudFile.id == file_id
                if only_pending:
                    condition = condition & CloudFile.extraction_status.is_(None)
                result = session.execute(
                    update(CloudFile)
                    .where(condition)
                    .values(
                        extraction_status=new_status(
                            FileStatus.QUEUED, run_key=item.run_key, generation=generation, **extra
                        ),
                        extraction_generation=generation + 1,
                    )
                )
                if cast(CursorResult[Any], result).rowcount:
                    queued.append(item)
        return queued

    def stale_queued(self, older_than: datetime, limit: int) -> list[QueuedFile]:
        """Files queued by the sensor before ``older_than`` that no run has picked up yet.

        Files queued by ``backfill`` are not the sensor's: the backfill daemon runs them batch by
        batch, and in a long backfill the later batches wait far longer than the grace period
        (re-requesting them would add one run per file next to the backfill's). The filter runs in
        SQL with a LIMIT, so a tick does not read every queued row of a large backfill.
        """
        status = CloudFile.extraction_status
        query = (
            select(CloudFile.id, status)
            .where(
                status["status"].as_string() == FileStatus.QUEUED.value,
                status["run_key"].as_string().is_not(None),
                status["updated_at"].as_string() < older_than.isoformat(),
                or_(status["backfill"].as_boolean().is_(None), status["backfill"].as_boolean().is_(False)),
            )
            .order_by(CloudFile.id)
            .limit(limit)
        )
        with translate_db_errors(self.url), self.sessions() as session:
            return [
                QueuedFile(id=file_id, generation=int(document.get("generation", 0)))
                for file_id, document in session.execute(query)
            ]

    def touch_queued(self, ids: Iterable[int]) -> None:
        """Refresh ``updated_at`` of queued files (they were just requested again)."""
        now = utcnow().isoformat()
        with translate_db_errors(self.url), self.sessions.begin() as session:
            for row in session.scalars(select(CloudFile).where(CloudFile.id.in_(list(ids)))):
                status = dict(row.extraction_status or {})
                if status_of_document(status) == FileStatus.QUEUED:
                    status["updated_at"] = now
                    row.extraction_status = status

    def reset_to_pending(
        self, ids: Iterable[int], *, statuses: Sequence[str] = (FileStatus.FAILED, FileStatus.CANCELLED)
    ) -> list[int]:
        """``retry``: files in one of ``statuses`` become pending again (the sensor queues them anew)."""
        changed: list[int] = []
        with translate_db_errors(self.url), self.sessions.begin() as session:
            rows = session.scalars(select(CloudFile).where(CloudFile.id.in_(list(ids))).with_for_update())
            for row in rows:
                if row.extraction_status and status_of_document(row.extraction_status) in statuses:
                    changed.append(row.id)
            if changed:
                # SQL NULL (a Python None would be stored as the JSON value null on a JSON column).
                session.execute(
                    update(CloudFile).where(CloudFile.id.in_(changed)).values(extraction_status=null())
                )
        return sorted(changed)

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

    # -- the pipeline: a run -----------------------------------------------------------------------------

    def set_status(
        self, file_id: int, status: str, *, expect_run_id: str | None = None, **fields: Any
    ) -> bool:
        """Move one file to ``status`` keeping its other keys; with ``expect_run_id`` only if it still
        belongs to that run. Returns whether the file changed."""
        with translate_db_errors(self.url), self.sessions.begin() as session:
            row = session.get(CloudFile, file_id, with_for_update=True)
            if row is None:
                return False
            return _apply_status(row, status, expect_run_id=expect_run_id, **fields)

    def mark_running(self, formats: dict[int, str], *, run_id: str) -> list[int]:
        """Detected files -> ``running`` with their format, in ONE transaction (a run's batch).

        Like ``set_status(id, "running", run_id=..., format=..., error=None)`` per file, but files
        cancelled meanwhile are left alone. Returns the ids that changed.
        """
        if not formats:
            return []
        changed: list[int] = []
        with translate_db_errors(self.url), self.sessions.begin() as session:
            query = select(CloudFile).where(CloudFile.id.in_(list(formats))).order_by(CloudFile.id)
            for row in session.scalars(query.with_for_update()):
                if status_of(row) == FileStatus.CANCELLED:
                    continue
                _apply_status(row, FileStatus.RUNNING, run_id=run_id, format=formats[row.id], error=None)
                changed.append(row.id)
        return changed

    def start_attempt(
        self, file_id: int, *, run_id: str, attempt: int, max_attempts: int, format: str | None = None
    ) -> int | None:
        """A new ``extraction_jobs`` row (running) and the file ``running``; None if it was cancelled."""
        now = utcnow()
        with translate_db_errors(self.url), self.sessions.begin() as session:
            row = session.get(CloudFile, file_id, with_for_update=True)
            if row is None or status_of(row) == FileStatus.CANCELLED:
                return None
            job = ExtractionJob(
                cloud_file_id=file_id,
                status=JobStatus.RUNNING.value,
                attempt=attempt,
                max_attempts=max_attempts,
                dagster_run_id=run_id,
                started_at=now,
            )
            session.add(job)
            session.flush()
            fields: dict[str, Any] = {"run_id": run_id, "job_id": job.id, "attempts": attempt, "error": None}
            if format is not None:
                fields["format"] = format
            _apply_status(row, FileStatus.RUNNING, **fields)
            return job.id

    def finish_attempt(
        self,
        job_id: int,
        status: str,
        *,
        error: dict[str, Any] | None = None,
        next_retry_at: datetime | None = None,
        result: dict[str, Any] | None = None,
        file_status: str | None = None,
        format: str | None = None,
    ) -> None:
        """Close a job row (``retrying``, ``extracted``, ``failed``, ...) and optionally move its file."""
        with translate_db_errors(self.url), self.sessions.begin() as session:
            job = session.get(ExtractionJob, job_id, with_for_update=True)
            if job is None:
                return
            job.status = JobStatus(status).value
            job.next_retry_at = next_retry_at
            if status != JobStatus.RETRYING:
                job.finished_at = utcnow()
            if error is not None:
                job.error_kind, job.error_code, job.error_message = (
                    error["kind"],
                    error["code"],
                    error["message"],
                )
            if result is not None:
                job.result = result
            if file_status is not None:
                row = session.get(CloudFile, job.cloud_file_id, with_for_update=True)
                if row is not None and status_of(row) != FileStatus.CANCELLED:
                    fields: dict[str, Any] = {"error": error, "job_id": job.id}
                    if format is not None:
                        fields["format"] = format
                    _apply_status(row, file_status, **fields)

    def abandon_jobs(self, file_ids: Iterable[int], *, except_run_ids: Iterable[str]) -> int:
        """Job rows left ``running``/``retrying`` by a run that died: mark them ``abandoned``."""
        keep = list(except_run_ids)
        with translate_db_errors(self.url), self.sessions.begin() as session:
            result = session.execute(
                update(ExtractionJob)
                .where(
                    ExtractionJob.cloud_file_id.in_(list(file_ids)),
                    ExtractionJob.status.in_([s.value for s in OPEN_JOB_STATUSES]),
                    ExtractionJob.dagster_run_id.not_in(keep),
                )
                .values(status=JobStatus.ABANDONED.value, finished_at=utcnow(), next_retry_at=None)
            )
            return cast(CursorResult[Any], result).rowcount or 0

    def abandon_jobs_of_runs(
        self,
        file_ids: Iterable[int],
        run_ids: Iterable[str],
        statuses: Sequence[str] = (JobStatus.RUNNING, JobStatus.RETRYING),
    ) -> int:
        """Attempts the given runs left open (``statuses``) and that nobody will close: ``abandoned``."""
        with translate_db_errors(self.url), self.sessions.begin() as session:
            result = session.execute(
                update(ExtractionJob)
                .where(
                    ExtractionJob.cloud_file_id.in_(list(file_ids)),
                    ExtractionJob.status.in_([str(s) for s in statuses]),
                    ExtractionJob.dagster_run_id.in_(list(run_ids)),
                )
                .values(status=JobStatus.ABANDONED.value, finished_at=utcnow(), next_retry_at=None)
            )
            return cast(CursorResult[Any], result).rowcount or 0

    def run_jobs(self, file_ids: Iterable[int], run_ids: Iterable[str]) -> dict[int, ExtractionJob]:
        """The latest job row of each file written by one of ``run_ids`` (a run and its retries)."""
        query = (
            select(ExtractionJob)
            .where(
                ExtractionJob.cloud_file_id.in_(list(file_ids)),
                ExtractionJob.dagster_run_id.in_(list(run_ids)),
            )
            .order_by(ExtractionJob.id)
        )
        with translate_db_errors(self.url), self.sessions() as session:
            return {job.cloud_file_id: job for job in session.scalars(query)}

    def materialize_many(self, items: Sequence[tuple[int, int, dict[str, Any], dict[str, Any]]]) -> set[int]:
        """Upsert ``cloud_file_metadata``, each file ``succeeded`` and its job row for a batch
        ``[(file_id, job_id, envelope, summary), ...]``, in ONE transaction.

        One commit per batch instead of one per file (each commit waits for the WAL flush). Files
        cancelled meanwhile are skipped (nothing written for them); returns the ids materialized.
        """
        if not items:
            return set()
        now = utcnow()
        done: set[int] = set()
        by_file = {item[0]: item for item in items}
        with translate_db_errors(self.url), self.sessions.begin() as session:
            dialect = session.get_bind().dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            table_ = cast(Table, CloudFileMetadata.__table__)
            query = select(CloudFile).where(CloudFile.id.in_(list(by_file))).order_by(CloudFile.id)
            rows = list(session.scalars(query.with_for_update()))
            jobs = {
                job.id: job
                for job in session.scalars(
                    select(ExtractionJob)
                    .where(ExtractionJob.id.in_([item[1] for item in items]))
                    .order_by(ExtractionJob.id)
                    .with_for_update()
                )
            }
            values = []
            for row in rows:
                if status_of(row) == FileStatus.CANCELLED:
                    continue
                file_id, job_id, envelope, summary = by_file[row.id]
                values.append(
                    {
                        "cloud_file_id": file_id,
                        "format": envelope["format"],
                        "variant": envelope.get("variant"),
                        "extractor_version": envelope["extractor"]["version"],
                        "metadata": envelope.get("metadata") or {},
                        "warnings": envelope.get("warnings") or [],
                        "extracted_at": now,
                    }
                )
                job = jobs.get(job_id)
                if job is not None:
                    job.status, job.finished_at, job.result = JobStatus.SUCCEEDED.value, now, summary
                    job.error_kind = job.error_code = job.error_message = None
                _apply_status(row, FileStatus.SUCCEEDED, format=envelope["format"], job_id=job_id, error=None)
                done.add(file_id)
            if values:
                statement = insert(table_).values(values)
                statement = statement.on_conflict_do_update(
                    index_elements=[table_.c.cloud_file_id],
                    set_={key: statement.excluded[key] for key in values[0] if key != "cloud_file_id"},
                )
                session.execute(statement)
        return done

    def cancel_files(self, ids: Iterable[int]) -> list[CloudFile]:
        """Files not finished yet become ``cancelled`` (their open job rows too); returns them."""
        changed: list[CloudFile] = []
        with translate_db_errors(self.url), self.sessions.begin() as session:
            rows = session.scalars(select(CloudFile).where(CloudFile.id.in_(list(ids))).with_for_update())
            for row in rows:
                if status_of(row) in FINAL_STATUSES:
                    continue
                previous = dict(row.extraction_status or {})
                _apply_status(row, FileStatus.CANCELLED, error=None)
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


def _where_status(query: Any, status: str | None) -> Any:
    """Only files in ``status`` (``pending``: not seen by the pipeline yet); all when None."""
    if status == FileStatus.PENDING:
        return query.where(CloudFile.extraction_status.is_(None))
    if status is not None:
        return query.where(CloudFile.extraction_status["status"].as_string() == str(status))
    return query


def status_of(row: CloudFile) -> str:
    """``pending`` for a file the pipeline has not seen yet, else its extraction status."""
    return status_of_document(row.extraction_status)


def _apply_status(row: CloudFile, status: str, *, expect_run_id: str | None = None, **fields: Any) -> bool:
    current = dict(row.extraction_status or {})
    if expect_run_id is not None and current.get("run_id") != expect_run_id:
        return False
    document = new_status(status)
    for key in ("format", "job_id", "run_id", "attempts", "run_key", "generation"):
        if key in current:
            document[key] = current[key]
    document.update(fields)
    row.extraction_status = document
    return True
