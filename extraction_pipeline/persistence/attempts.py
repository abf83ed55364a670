"""``extraction_jobs``: one row per attempt, from its start to its result (and the file's metadata).

Two attempts end without an extraction: a file whose content is none of the supported formats is
``skipped`` (``skip_files``), and a file with the same bytes as one that succeeded with the same
extractor version gets that file's metadata copied (``duplicate_sources``, ``deduplicate_files``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from extraction_pipeline.persistence.database import Store, translate_db_errors
from extraction_pipeline.persistence.files import locked_files
from extraction_pipeline.persistence.models import CloudFile, CloudFileMetadata, CloudFileText, ExtractionJob
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
            rows = locked_files(session, by_file)
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
            texts = _TextRows()
            for row in rows:
                if status_of(row) == FileStatus.CANCELLED:
                    continue
                file_id, job_id, envelope, summary = by_file[row.id]
                if "text" in envelope:  # the attempt gathered the text (EXTRACTION_MAX_TEXT_CHARS > 0)
                    texts.set(file_id, envelope["text"], bool(envelope.get("text_truncated")))
                values.append(
                    {
                        "cloud_file_id": file_id,
                        "format": envelope["format"],
                        "variant": envelope.get("variant"),
                        "extractor_version": envelope["extractor"]["version"],
                        "metadata": envelope.get("metadata") or {},
                        "warnings": envelope.get("warnings") or [],
                        "extracted_at": now,
                        "preview_uri": envelope.get("preview_uri"),
                    }
                )
                job = jobs.get(job_id)
                if job is not None:
                    job.status, job.finished_at, job.result = JobStatus.SUCCEEDED.value, now, summary
                    job.error_kind = job.error_code = job.error_message = None
                apply_status(row, FileStatus.SUCCEEDED, format=envelope["format"], job_id=job_id, error=None)
                done.add(file_id)
            _upsert_metadata(session, values)
            texts.write(session)
        return done

    # -- files that are not extracted ------------------------------------------------------------------

    def skip_files(
        self,
        errors: dict[int, dict[str, Any]],
        *,
        run_id: str | None,
        attempt: int,
        max_attempts: int,
        format: str = "unknown",
    ) -> list[int]:
        """Files whose content is none of the supported formats: one ``skipped`` attempt each and the
        file ``skipped`` with its error, in ONE transaction. Cancelled files are left alone; returns
        the ids skipped."""
        if not errors:
            return []
        instant = _InstantAttempts(run_id, attempt, max_attempts, utcnow())
        done: list[int] = []
        with translate_db_errors(self.url), self.sessions.begin() as session:
            for row in locked_files(session, errors):
                if status_of(row) == FileStatus.CANCELLED:
                    continue
                error = errors[row.id]
                job = instant.add(
                    session,
                    row.id,
                    JobStatus.SKIPPED,
                    error_kind=error["kind"],
                    error_code=error["code"],
                    error_message=error["message"],
                )
                apply_status(
                    row,
                    FileStatus.SKIPPED,
                    run_id=run_id,
                    job_id=job.id,
                    attempts=attempt,
                    format=format,
                    error=error,
                )
                done.append(row.id)
        return done

    def duplicate_sources(self, wanted: dict[int, tuple[str, str]]) -> dict[int, int]:
        """For files ``{id: (format, extractor version)}``: the oldest other file with the same bytes
        (``sha256`` and size) that ``succeeded`` and whose metadata has that format and version.

        One query per (format, version), through ``ix_cloud_files_sha256``."""
        groups: dict[tuple[str, str], list[int]] = {}
        for file_id, key in wanted.items():
            groups.setdefault(key, []).append(file_id)
        target, source = aliased(CloudFile), aliased(CloudFile)
        found: dict[int, int] = {}
        with translate_db_errors(self.url), self.sessions() as session:
            for (fmt, version), ids in groups.items():
                query = (
                    select(target.id, func.min(source.id))
                    .join(
                        source,
                        (source.sha256 == target.sha256)
                        & (source.size_bytes == target.size_bytes)
                        & (source.id != target.id),
                    )
                    .join(CloudFileMetadata, CloudFileMetadata.cloud_file_id == source.id)
                    .where(
                        target.id.in_(ids),
                        source.extraction_status["status"].as_string() == FileStatus.SUCCEEDED.value,
                        CloudFileMetadata.format == fmt,
                        CloudFileMetadata.extractor_version == version,
                    )
                    .group_by(target.id)
                )
                found.update({file_id: source_id for file_id, source_id in session.execute(query)})
        return found

    def deduplicate_files(
        self, sources: dict[int, int], *, run_id: str | None, attempt: int, max_attempts: int
    ) -> dict[int, int]:
        """Copy the metadata of ``{file: source}``, in ONE transaction: the metadata row, a
        ``succeeded`` attempt whose ``result`` is the source's plus ``deduplicated_from``, and the
        file ``succeeded`` with ``deduplicated_from``. A file cancelled meanwhile, or whose source no
        longer succeeded, is left alone (it is extracted instead); returns ``{file: source}`` done."""
        if not sources:
            return {}
        now = utcnow()
        instant = _InstantAttempts(run_id, attempt, max_attempts, now)
        done: dict[int, int] = {}
        source_ids = sorted(set(sources.values()))
        with translate_db_errors(self.url), self.sessions.begin() as session:
            rows = locked_files(session, sources)
            stored = {
                meta.cloud_file_id: meta
                for meta in session.scalars(
                    select(CloudFileMetadata).where(CloudFileMetadata.cloud_file_id.in_(source_ids))
                )
            }
            status = CloudFile.extraction_status["status"].as_string()
            succeeded = set(
                session.scalars(
                    select(CloudFile.id).where(
                        CloudFile.id.in_(source_ids), status == FileStatus.SUCCEEDED.value
                    )
                )
            )
            results = {
                job.cloud_file_id: job.result
                for job in session.scalars(
                    select(ExtractionJob)
                    .where(
                        ExtractionJob.cloud_file_id.in_(source_ids),
                        ExtractionJob.status == JobStatus.SUCCEEDED.value,
                    )
                    .order_by(ExtractionJob.id)
                )
            }
            source_texts = {
                item.cloud_file_id: item
                for item in session.scalars(
                    select(CloudFileText).where(CloudFileText.cloud_file_id.in_(source_ids))
                )
            }
            texts = _TextRows()
            values = []
            for row in rows:
                source_id = sources[row.id]
                meta = stored.get(source_id)
                if status_of(row) == FileStatus.CANCELLED or meta is None or source_id not in succeeded:
                    continue
                result = dict(results.get(source_id) or {"format": meta.format, "variant": meta.variant})
                result["deduplicated_from"] = source_id
                job = instant.add(session, row.id, JobStatus.SUCCEEDED, result=result)
                values.append(
                    {
                        "cloud_file_id": row.id,
                        "format": meta.format,
                        "variant": meta.variant,
                        "extractor_version": meta.extractor_version,
                        "metadata": meta.metadata_,
                        "warnings": meta.warnings,
                        "extracted_at": now,
                        "preview_uri": meta.preview_uri,  # the same bytes: the same preview, shared
                    }
                )
                apply_status(
                    row,
                    FileStatus.SUCCEEDED,
                    run_id=run_id,
                    job_id=job.id,
                    attempts=attempt,
                    format=meta.format,
                    error=None,
                    deduplicated_from=source_id,
                )
                done[row.id] = source_id
                source_text = source_texts.get(source_id)
                if source_text is not None:
                    texts.set(row.id, source_text.text, source_text.truncated)
                else:
                    texts.set(row.id, None, False)
            _upsert_metadata(session, values)
            texts.write(session)
        return done


def _upsert_metadata(session: Session, values: list[dict[str, Any]]) -> None:
    """Insert or replace ``cloud_file_metadata`` rows (one statement)."""
    _upsert(session, cast(Table, CloudFileMetadata.__table__), values)


def _upsert(session: Session, table_: Table, values: list[dict[str, Any]]) -> None:
    """Insert or replace rows of a table keyed by ``cloud_file_id`` (one statement)."""
    if not values:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(table_).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=[table_.c.cloud_file_id],
        set_={key: statement.excluded[key] for key in values[0] if key != "cloud_file_id"},
    )
    session.execute(statement)


class _TextRows:
    """The ``cloud_file_text`` rows a transaction writes: upserted, or deleted when a file now has no
    text (a re-extraction of a file whose text is gone)."""

    def __init__(self) -> None:
        self.upserts: list[dict[str, Any]] = []
        self.deletes: list[int] = []

    def set(self, file_id: int, text: str | None, truncated: bool) -> None:
        if text:
            self.upserts.append(
                {"cloud_file_id": file_id, "text": text, "char_count": len(text), "truncated": truncated}
            )
        else:
            self.deletes.append(file_id)

    def write(self, session: Session) -> None:
        if self.deletes:
            session.execute(delete(CloudFileText).where(CloudFileText.cloud_file_id.in_(self.deletes)))
        _upsert(session, cast(Table, CloudFileText.__table__), self.upserts)


@dataclass(frozen=True)
class _InstantAttempts:
    """Attempts that end as they begin (a skipped file, copied metadata): no worker was involved."""

    run_id: str | None
    attempt: int
    max_attempts: int
    at: datetime

    def add(self, session: Session, file_id: int, status: JobStatus, **fields: Any) -> ExtractionJob:
        job = ExtractionJob(
            cloud_file_id=file_id,
            status=status.value,
            attempt=self.attempt,
            max_attempts=self.max_attempts,
            dagster_run_id=self.run_id,
            started_at=self.at,
            finished_at=self.at,
            **fields,
        )
        session.add(job)
        session.flush()  # its id, for the file's status
        return job
