"""Step 3 of a run (``materialize``) as plain code, no Dagster in here: the plan, then the writes.

``plan_materialize`` reads the latest attempt of each file in the run's group: failed for good
(reported, the run fails), extracted (the envelope waits on the attempt row: ready to be written),
skipped or deduplicated at detection (written already; shown in the UI). A file deleted meanwhile
(its row is gone; an orphan attempt row may outlive it on SQLite) is none of these. ``write_materialized``
writes the ready files one transaction per chunk. ``batch`` re-exports these names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from extraction_pipeline.orchestration import shortcuts
from extraction_pipeline.orchestration.shortcuts import DeduplicatedFile, SkippedFile
from extraction_pipeline.persistence.state import JobStatus

if TYPE_CHECKING:
    from extraction_pipeline.persistence.repository import CloudFileRepository

# Files written per transaction by ``materialize``.
MATERIALIZE_CHUNK = 50


@dataclass(frozen=True)
class FailedFile:
    """A file whose attempt in this run failed for good."""

    file_id: int
    filename: str | None
    error: dict[str, Any]
    format: str | None
    attempts: int


@dataclass(frozen=True)
class ReadyFile:
    """An extracted file waiting to be materialized: its attempt row, envelope and summary."""

    file_id: int
    job_id: int
    envelope: dict[str, Any]
    summary: dict[str, Any]

    def as_item(self) -> tuple[int, int, dict[str, Any], dict[str, Any]]:
        return (self.file_id, self.job_id, self.envelope, self.summary)


@dataclass
class MaterializePlan:
    """Step 3 before any write: which files failed in this run, which are ready to be written, and
    which ended without an extraction (skipped, deduplicated: written already, shown in the UI)."""

    names: dict[int, str]
    failed: list[FailedFile]
    ready: list[ReadyFile]
    skipped: list[SkippedFile] = field(default_factory=list)
    deduplicated: list[DeduplicatedFile] = field(default_factory=list)


@dataclass(frozen=True)
class WrittenChunk:
    """One transaction of ``materialize``: the files written and those cancelled meanwhile."""

    done: list[ReadyFile]
    cancelled: list[int]


def plan_materialize(
    repository: CloudFileRepository,
    file_ids: Sequence[int],
    run_ids: Iterable[str],
    summarize: Callable[[dict[str, Any]], dict[str, Any]],
) -> MaterializePlan:
    """The latest attempt of each file in this run's group: failed ones, extracted ones, skipped
    and deduplicated ones."""
    jobs = repository.run_jobs(file_ids, run_ids)
    rows = {row.id: row for row in repository.list_files(ids=file_ids)}
    names = {file_id: row.filename for file_id, row in rows.items()}
    other = shortcuts.not_extracted(repository, file_ids, jobs, rows)
    plan = MaterializePlan(
        names=names, failed=[], ready=[], skipped=other.skipped, deduplicated=other.deduplicated
    )
    for file_id in file_ids:
        job = jobs.get(file_id)
        if job is None or file_id not in rows:
            continue  # not tried in this run, or deleted meanwhile: nothing to report or write
        if job.status == JobStatus.FAILED:
            state = rows[file_id].state
            plan.failed.append(
                FailedFile(
                    file_id=file_id,
                    filename=names.get(file_id),
                    error={"kind": job.error_kind, "code": job.error_code, "message": job.error_message},
                    format=state.format if state is not None else None,
                    attempts=job.attempt,
                )
            )
            continue
        if job.status != JobStatus.EXTRACTED or not job.result:
            continue
        plan.ready.append(ReadyFile(file_id, job.id, job.result, summarize(job.result)))
    return plan


def write_materialized(
    repository: CloudFileRepository, ready: Sequence[ReadyFile], chunk_size: int = MATERIALIZE_CHUNK
) -> Iterator[WrittenChunk]:
    """Metadata, status and attempt of ``ready`` files, one transaction per chunk (yielded as written)."""
    for start in range(0, len(ready), chunk_size):
        chunk = list(ready[start : start + chunk_size])
        done = repository.materialize_many([item.as_item() for item in chunk])
        yield WrittenChunk(
            done=[item for item in chunk if item.file_id in done],
            cancelled=[item.file_id for item in chunk if item.file_id not in done],
        )
