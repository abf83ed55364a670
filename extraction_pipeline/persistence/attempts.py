"""``extraction_jobs``: one row per attempt, from its start to its result (and the file's metadata)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from extraction_pipeline.persistence.database import Store, translate_db_errors
from extraction_pipeline.persistence.models import CloudFile, CloudFileMetadata, ExtractionJob
from extraction_pipeline.persistence.state import (
    OPEN_JOB_STATUSES,
    FileStatus,
    JobStatus,
    apply_status,
    status_of,
    utcnow,
)


class Attempts(Store):
    """The job rows of the attempts, and what an attempt writes to its file when it ends."""

    def jobs_for(self, file_id: int) -> list[ExtractionJob]:
        query = select(ExtractionJob).where(ExtractionJob.cloud_file_id == file_id).order_by(ExtractionJob.id)
        with translate_db_errors(self.url), self.sessions() as session:
            return list(session.scalars(query))

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
            apply_status(row, FileStatus.RUNNING, **fields)
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
                    apply_status(row, file_status, **fields)

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
                apply_status(row, FileStatus.SUCCEEDED, format=envelope["format"], job_id=job_id, error=None)
                done.add(file_id)
            if values:
                statement = insert(table_).values(values)
                statement = statement.on_conflict_do_update(
                    index_elements=[table_.c.cloud_file_id],
                    set_={key: statement.excluded[key] for key in values[0] if key != "cloud_file_id"},
                )
                session.execute(statement)
        return done
