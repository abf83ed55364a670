"""The documents the CLI prints with ``--json`` and the API serves: a file's status, list items."""

from __future__ import annotations

from typing import Any

from extraction_pipeline.persistence.repository import CloudFileRepository, status_of
from extraction_pipeline.persistence.state import ExtractionState
from extraction_pipeline.service.errors import FileNotFound


def file_summary(row: Any) -> dict[str, Any]:
    """One item of ``list --json`` and of ``GET /v1/files``."""
    state: ExtractionState | None = row.state
    if state is None:
        return {
            "id": row.id,
            "filename": row.filename,
            "format": None,
            "status": None,
            "attempts": 0,
            "error": None,
        }
    document = state.document()  # the keys as stored: a missing one reads as before
    return {
        "id": row.id,
        "filename": row.filename,
        "format": state.format,
        "status": document.get("status"),
        "attempts": document.get("attempts", 0),
        "error": state.error_document(),
    }


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


def status_document(row: Any, jobs: list[Any], stored: Any) -> dict[str, Any]:
    """``status ID --json`` and ``GET /v1/files/{id}``: the row, its attempts and its metadata."""
    return {
        "id": row.id,
        "filename": row.filename,
        "size_bytes": row.size_bytes,
        "sha256": row.sha256,
        "content_type": row.content_type,
        "uploaded_at": row.uploaded_at.isoformat(),
        "status": status_of(row),
        "extraction_status": row.state_document,
        "jobs": [
            {
                "id": job.id,
                "attempt": job.attempt,
                "max_attempts": job.max_attempts,
                "status": job.status,
                "dagster_run_id": job.dagster_run_id,
                "started_at": _iso(job.started_at),
                "finished_at": _iso(job.finished_at),
                "next_retry_at": _iso(job.next_retry_at),
                "error": {"kind": job.error_kind, "code": job.error_code, "message": job.error_message}
                if job.error_code
                else None,
            }
            for job in jobs
        ],
        "metadata": None
        if stored is None
        else {
            "format": stored.format,
            "variant": stored.variant,
            "extractor_version": stored.extractor_version,
            "extracted_at": stored.extracted_at.isoformat(),
            "warnings": stored.warnings,
            "values": stored.metadata_,
            # A PNG preview is stored (`thumbnail ID`); false: none yet (a backfilled file gets it
            # on its first request) or none can be made (a `no preview: ...` warning says why).
            "preview_stored": stored.preview_uri is not None,
        },
    }


def file_status(repository: CloudFileRepository, file_id: int) -> tuple[Any, list[Any], Any]:
    """The row, its attempts and its metadata row; ``FileNotFound`` when there is no such file."""
    row = repository.get_file(file_id)
    if row is None:
        raise FileNotFound(file_id)
    return row, repository.jobs_for(file_id), repository.metadata_for(file_id)


def load_status_document(repository: CloudFileRepository, file_id: int) -> dict[str, Any]:
    return status_document(*file_status(repository, file_id))


def list_page(
    repository: CloudFileRepository,
    *,
    status: str | None = None,
    fmt: str | None = None,
    limit: int,
    after_id: int | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of files in id order after ``after_id`` and the cursor of the next (None: last page).

    One row more than the page is read, so the last page says so itself (no empty page at the end).
    """
    rows = repository.list_files(status=status, fmt=fmt, limit=limit + 1, after_id=after_id)
    page = rows[:limit]
    next_cursor = page[-1].id if len(rows) > limit else None
    return [file_summary(row) for row in page], next_cursor
