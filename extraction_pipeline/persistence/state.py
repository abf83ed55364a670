"""The typed state of a file and of an attempt, and the status rules: the only place that reads
or writes the JSON.

``cloud_files.extraction_status`` is a JSON document whose shape INTERFACE.md fixes; the code adds
a few keys of its own (``run_key``, ``generation``, ``backfill``, ``previous_run_id``, ``forced``). Outside
persistence it is seen only as an ``ExtractionState`` (``CloudFile.state``) and the statuses as the
``FileStatus`` and ``JobStatus`` enums, whose values are the strings stored in the database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, PrivateAttr

if TYPE_CHECKING:
    from extraction_pipeline.persistence.models import CloudFile


class FileStatus(StrEnum):
    """``extraction_status.status``. A file without a status is ``PENDING`` (never stored)."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # none of the supported formats: one look, no retry, no alert
    CANCELLED = "cancelled"


# The choices of ``list --status`` (and ``repository.list_files``), in their historic order.
STATUSES: tuple[str, ...] = tuple(
    s.value
    for s in (
        FileStatus.PENDING,
        FileStatus.QUEUED,
        FileStatus.RUNNING,
        FileStatus.SUCCEEDED,
        FileStatus.FAILED,
        FileStatus.CANCELLED,
        FileStatus.SKIPPED,
    )
)
FINAL_STATUSES = (FileStatus.SUCCEEDED, FileStatus.FAILED, FileStatus.CANCELLED, FileStatus.SKIPPED)
ACTIVE_STATUSES = (FileStatus.QUEUED, FileStatus.RUNNING)


class JobStatus(StrEnum):
    """``extraction_jobs.status``: one attempt."""

    RUNNING = "running"
    RETRYING = "retrying"  # failed transiently, a later attempt follows
    EXTRACTED = "extracted"  # the envelope rides on the row until it is materialized
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # the content is none of the supported formats: nothing to extract
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"  # left open by a run or step attempt that died


# Attempts nobody closed yet (a dead run's are abandoned; a cancelled file's cancelled).
OPEN_JOB_STATUSES = (JobStatus.RUNNING, JobStatus.RETRYING, JobStatus.EXTRACTED)
# Attempts an earlier attempt of the same step finished: not extracted again.
DONE_JOB_STATUSES = (
    JobStatus.EXTRACTED,
    JobStatus.SUCCEEDED,
    JobStatus.FAILED,
    JobStatus.SKIPPED,
    JobStatus.CANCELLED,
)


class StateError(BaseModel):
    """``extraction_status.error`` (and a failed job's error columns)."""

    model_config = ConfigDict(extra="allow")

    kind: str | None = None
    code: str | None = None
    message: str | None = None


class ExtractionState(BaseModel):
    """``cloud_files.extraction_status``: the keys of INTERFACE.md plus those the pipeline adds.

    Unknown keys are kept (``extra="allow"``), so a document written by the host application or a
    later version survives a round trip unchanged.
    """

    model_config = ConfigDict(extra="allow")

    status: str = FileStatus.PENDING.value
    format: str | None = None
    job_id: int | None = None
    run_id: str | None = None
    attempts: int = 0
    updated_at: str | None = None
    completed_at: str | None = None
    error: StateError | None = None
    # Written by the pipeline beyond INTERFACE.md:
    run_key: str | None = None  # the Dagster run key of the request (sensor)
    generation: int | None = None  # the request generation that run key carries
    backfill: bool | None = None  # queued by ``backfill`` (the sensor does not re-request it)
    backfill_id: str | None = None  # the Dagster backfill the file is queued for, when known
    previous_run_id: str | None = None  # the run a cancelled file belonged to
    deduplicated_from: int | None = None  # INTERFACE.md: metadata copied from that file
    forced: bool | None = None  # queued by ``retry --force``: extracted, never deduplicated

    _keys: tuple[str, ...] = PrivateAttr(default=())  # the stored key order, for ``document``

    @property
    def file_status(self) -> FileStatus:
        """The status as the enum (an unknown stored value is kept as a string by ``status``)."""
        return FileStatus(self.status)

    def is_(self, *statuses: FileStatus) -> bool:
        return self.status in statuses

    def error_document(self) -> dict[str, Any] | None:
        """The error as stored (``{"kind", "code", "message"}``), or None."""
        return None if self.error is None else self.error.model_dump(exclude_unset=True)

    def document(self) -> dict[str, Any]:
        """The JSON document exactly as stored (the keys that were there, in their order)."""
        dumped = self.model_dump(mode="json", exclude_unset=True)
        ordered = {key: dumped[key] for key in self._keys if key in dumped}
        ordered.update((key, value) for key, value in dumped.items() if key not in ordered)
        return ordered

    @property
    def error_code(self) -> str | None:
        return self.error.code if self.error is not None else None


def parse_state(document: dict[str, Any] | None) -> ExtractionState | None:
    """The typed view of a stored document; None for a pending file (SQL NULL or an empty value)."""
    if not document:
        return None
    state = ExtractionState.model_validate(document)
    state._keys = tuple(document)
    return state


def status_of_document(document: dict[str, Any] | None) -> str:
    """``pending`` for a file the pipeline has not seen yet, else its stored status."""
    return "pending" if not document else str(document.get("status", "pending"))


# -- the status rules: how a document is written -------------------------------------------------

# The keys a transition keeps from the current document unless it sets them itself.
_KEPT_KEYS = ("format", "job_id", "run_id", "attempts", "run_key", "generation", "forced")


def utcnow() -> datetime:
    """Now, timezone-aware (the documents' timestamps and the tables' UTC columns)."""
    return datetime.now(UTC)


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


def status_of(row: CloudFile) -> str:
    """``pending`` for a file the pipeline has not seen yet, else its extraction status."""
    return status_of_document(row.extraction_status)


def apply_status(row: CloudFile, status: str, *, expect_run_id: str | None = None, **fields: Any) -> bool:
    """Move ``row`` to ``status``, keeping its format, job, run, attempts and run key unless
    ``fields`` sets them; with ``expect_run_id`` only if the file still belongs to that run.
    Returns whether the row changed."""
    current = dict(row.extraction_status or {})
    if expect_run_id is not None and current.get("run_id") != expect_run_id:
        return False
    document = new_status(status)
    for key in _KEPT_KEYS:
        if key in current:
            document[key] = current[key]
    document.update(fields)
    row.extraction_status = document
    return True
