"""The per-file rules of an extraction run, as plain code: no Dagster in here.

The three ops of ``assets.py`` are thin adapters: they build a ``RunAttempt`` from the run and the
op's ``RetryPolicy``, call one function of this module per step, then log and raise from the
outcomes. The rules live here, tested on SQLite and PostgreSQL without a Dagster run:

- a cancelled file is skipped (and never written again: the repository checks under lock);
- a file already detected or extracted by an earlier attempt of the same run is not redone;
- a run that re-executes a crashed parent resumes the parent's files, including those the alert
  sensor marked ``failed``/``crashed``, and the attempts the dead run left open are ``abandoned``;
- a file of no supported format is ``skipped`` and a file with the same bytes as one extracted
  already gets its metadata copied (``deduplicated_from``), both at detection (``shortcuts.py``);
- a failure is transient (the file stays ``running``, its attempt ``retrying``, the step is
  retried) or final (permanent, or transient at the last attempt: the file is ``failed``);
- one bad file fails only itself: every file of the batch gets its outcome, the others go on.

``RunAttempt`` carries the attempt numbers: ``max_retries`` and the delays come from the op's
``RetryPolicy`` (the one Dagster applies), never from a second copy of the settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from extraction_pipeline.orchestration import shortcuts

# Step 3, re-exported: ``batch`` is where the rules of a run are looked up.
from extraction_pipeline.orchestration.materializing import (
    MATERIALIZE_CHUNK,
    FailedFile,
    MaterializePlan,
    ReadyFile,
    WrittenChunk,
    plan_materialize,
    write_materialized,
)

# Not persistence.models (SQLAlchemy's ORM, 0.15-0.3 s): the code location imports this module on
# every run and sensor tick; the repository brings the models when a run first touches the database.
from extraction_pipeline.persistence.state import (
    DONE_JOB_STATUSES,
    ExtractionState,
    FileStatus,
    JobStatus,
    utcnow,
)

if TYPE_CHECKING:
    from extraction_pipeline.extraction.envelope import Envelope
    from extraction_pipeline.persistence.models import CloudFile
    from extraction_pipeline.persistence.repository import CloudFileRepository

__all__ = [
    "MATERIALIZE_CHUNK",
    "FailedFile",
    "FileOutcome",
    "MaterializePlan",
    "Outcome",
    "ReadyFile",
    "RunAttempt",
    "StepResult",
    "WrittenChunk",
    "cancel_unfinished",
    "detect_files",
    "extract_files",
    "plan_materialize",
    "record_failure",
    "write_materialized",
]


def _no_delay(attempt_num: int) -> float:
    return 0.0


@dataclass(frozen=True)
class RunAttempt:
    """Who is working and which attempt this is.

    ``retry_number`` is the step's (0 on its first attempt); ``max_retries`` and ``retry_delay``
    are the op's ``RetryPolicy.max_retries`` and ``RetryPolicy.calculate_delay`` (called, as Dagster
    does, with the number of attempts made so far).
    """

    run_id: str
    # This run and the runs of its group (a retried run sees the work of its parents).
    run_ids: frozenset[str]
    retry_number: int = 0
    max_retries: int = 0
    retry_delay: Callable[[int], float] = _no_delay
    # The runs this run re-executes: all finished, their workers gone.
    ancestor_run_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def attempt(self) -> int:
        return self.retry_number + 1

    @property
    def max_attempts(self) -> int:
        return self.max_retries + 1

    @property
    def is_last(self) -> bool:
        return self.attempt >= self.max_attempts

    def next_retry_at(self) -> datetime:
        """When the step's retry is due: the delay the retry policy gives after this attempt."""
        return utcnow() + timedelta(seconds=float(self.retry_delay(self.retry_number + 1)))


class Outcome(StrEnum):
    MISSING = "missing"  # the row no longer exists
    CANCELLED = "cancelled"  # cancelled before or during this step: skipped
    NOT_THIS_RUN = "not_this_run"  # taken over by another run, or not running (failed earlier)
    DONE_EARLIER = "done_earlier"  # finished by an earlier attempt of this run
    DETECTED = "detected"
    SKIPPED = "skipped"  # none of the supported formats: recorded, nothing to extract
    DEDUPLICATED = "deduplicated"  # the metadata of a file with the same bytes was copied
    EXTRACTED = "extracted"
    RETRYING = "retrying"  # transient failure: the step is retried for this file
    FAILED = "failed"  # final failure, recorded on the file and its attempt


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one file in one step."""

    file_id: int
    outcome: Outcome
    format: str | None = None
    error: dict[str, Any] | None = None
    duration_ms: int = 0
    # False when a failure could not be recorded (the file was cancelled at that moment).
    recorded: bool = True
    deduplicated_from: int | None = None


@dataclass
class StepResult:
    """The outcomes of one step over a batch, in file order."""

    outcomes: list[FileOutcome] = field(default_factory=list)

    def of(self, *kinds: Outcome) -> list[FileOutcome]:
        return [item for item in self.outcomes if item.outcome in kinds]

    @property
    def transient(self) -> list[int]:
        """Files the step must be retried for."""
        return [item.file_id for item in self.of(Outcome.RETRYING)]


def error(kind: str, code: str, message: str) -> dict[str, str]:
    return {"kind": kind, "code": code, "message": message}


def storage_error(exc: BaseException) -> dict[str, str]:
    return error("transient", "storage_unavailable", f"the stored file cannot be read: {exc}")


def left_by_crashed_parent(state: ExtractionState | None, run_id: str) -> bool:
    """A file the alert sensor marked failed because its run (this run's parent) died: resumable."""
    if state is None:
        return False
    return state.status == FileStatus.FAILED and state.run_id != run_id and state.error_code == "crashed"


def unreadable(
    repository: CloudFileRepository,
    run: RunAttempt,
    file_id: int,
    exc: Exception,
    *,
    job_id: int | None = None,
) -> FileOutcome:
    """A file whose bytes could not be read: gone with its row (deleted meanwhile, the blob with it:
    nothing to record or retry), else a storage failure (transient until the last attempt)."""
    if repository.get_file(file_id) is None:
        return FileOutcome(file_id, Outcome.MISSING)
    return record_failure(repository, run, file_id, storage_error(exc), job_id=job_id, final=run.is_last)


def record_failure(
    repository: CloudFileRepository,
    run: RunAttempt,
    file_id: int,
    failure: dict[str, Any],
    *,
    final: bool,
    job_id: int | None = None,
    fmt: str | None = None,
) -> FileOutcome:
    """Close the attempt (opening one if needed) as ``failed`` (final) or ``retrying``."""
    outcome = Outcome.FAILED if final else Outcome.RETRYING
    if job_id is None:
        job_id = repository.start_attempt(
            file_id, run_id=run.run_id, attempt=run.attempt, max_attempts=run.max_attempts
        )
        if job_id is None:  # cancelled meanwhile; still counted, as before, but nothing recorded
            return FileOutcome(file_id, outcome, format=fmt, error=failure, recorded=False)
    if final:
        repository.finish_attempt(
            job_id, JobStatus.FAILED, error=failure, file_status=FileStatus.FAILED, format=fmt
        )
    else:
        repository.finish_attempt(
            job_id,
            JobStatus.RETRYING,
            error=failure,
            next_retry_at=run.next_retry_at(),
            file_status=FileStatus.RUNNING,
            format=fmt,
        )
    return FileOutcome(file_id, outcome, format=fmt, error=failure)


Report = Callable[[FileOutcome], None]


def _ignore(outcome: FileOutcome) -> None:
    pass


def detect_files(
    repository: CloudFileRepository,
    file_ids: Sequence[int],
    run: RunAttempt,
    detect: Callable[[CloudFile], str],
    *,
    report: Report = _ignore,
    versions: Mapping[str, str] | None = None,
    deduplicate: bool = True,
) -> StepResult:
    """Step 1: each file's format (``detect(row)``, which reads its bytes); detected files ``running``,
    except those of no supported format (``skipped``) and duplicates (their metadata copied).

    Attempts that runs outside this run's group left open are abandoned first. ``report`` is
    called with each outcome as soon as it is decided (a failure is recorded by then).
    ``versions``: format -> the extractor version a duplicate must have been extracted with
    (default: the table of formats'); ``deduplicate`` False: duplicates are extracted too.
    """
    result = StepResult()

    def add(item: FileOutcome) -> None:
        result.outcomes.append(item)
        report(item)

    repository.abandon_jobs(file_ids, except_run_ids=run.run_ids)
    rows = {row.id: row for row in repository.list_files(ids=file_ids)}
    detected: dict[int, str] = {}
    for file_id in file_ids:
        row = rows.get(file_id)
        if row is None:
            add(FileOutcome(file_id, Outcome.MISSING))
            continue
        state = row.state
        if state is not None and state.status == FileStatus.CANCELLED:
            add(FileOutcome(file_id, Outcome.CANCELLED))
            continue
        if state is not None and state.run_id in run.run_ids and state.format:
            add(FileOutcome(file_id, Outcome.DONE_EARLIER, format=state.format))
            continue
        try:
            detected[file_id] = detect(row)
        except Exception as exc:  # storage down, blob missing: maybe back on the next attempt
            add(unreadable(repository, run, file_id, exc))
    settled = shortcuts.settle(
        repository,
        rows,
        detected,
        run_id=run.run_id,
        attempt=run.attempt,
        max_attempts=run.max_attempts,
        versions=versions,
        deduplicate=deduplicate,
    )
    for file_id, error in settled.skipped.items():
        add(FileOutcome(file_id, Outcome.SKIPPED, format=shortcuts.UNKNOWN_FORMAT, error=error))
    for file_id in settled.cancelled:
        add(FileOutcome(file_id, Outcome.CANCELLED))
    for file_id, (source, fmt) in settled.deduplicated.items():
        add(FileOutcome(file_id, Outcome.DEDUPLICATED, format=fmt, deduplicated_from=source))
    # One transaction for the whole batch (files cancelled meanwhile are left alone).
    repository.mark_running(settled.to_extract, run_id=run.run_id)
    for file_id, fmt in settled.to_extract.items():
        add(FileOutcome(file_id, Outcome.DETECTED, format=fmt))
    return result


def extract_files(
    repository: CloudFileRepository,
    file_ids: Sequence[int],
    run: RunAttempt,
    extract: Callable[[CloudFile, int, int], Envelope],
    *,
    passthrough: tuple[type[BaseException], ...] = (),
    report: Report = _ignore,
) -> StepResult:
    """Step 2: ``extract(row, attempt, max_attempts)`` per detected file, one attempt row each.

    Exceptions of the types in ``passthrough`` (a terminated run) end the step at once; any other
    exception of ``extract`` is a storage failure of that file only.
    """
    result = StepResult()

    def add(item: FileOutcome) -> None:
        result.outcomes.append(item)
        report(item)

    rows = {row.id: row for row in repository.list_files(ids=file_ids)}
    jobs = repository.run_jobs(file_ids, run.run_ids)
    if run.ancestor_run_ids:  # a re-execution (run retry): the attempts its crashed parent left open are over
        repository.abandon_jobs_of_runs(file_ids, sorted(run.ancestor_run_ids))
    if run.retry_number > 0:
        # A retry of this step: an earlier attempt that died before closing its row (the database
        # went away after the extraction) left it ``running``; that attempt is over.
        repository.abandon_jobs_of_runs(file_ids, [run.run_id], statuses=(JobStatus.RUNNING,))
    for file_id in file_ids:
        row = rows.get(file_id)
        state = row.state if row is not None else None
        if row is None or state is None or state.run_id not in run.run_ids:
            add(FileOutcome(file_id, Outcome.MISSING if row is None else Outcome.NOT_THIS_RUN))
            continue  # gone, or taken over by another run
        if state.is_(FileStatus.SUCCEEDED, FileStatus.SKIPPED):
            add(FileOutcome(file_id, Outcome.DONE_EARLIER))
            continue  # skipped or deduplicated at detection (or a step re-executed after success)
        if state.status != FileStatus.RUNNING and not left_by_crashed_parent(state, run.run_id):
            kind = Outcome.CANCELLED if state.status == FileStatus.CANCELLED else Outcome.NOT_THIS_RUN
            add(FileOutcome(file_id, kind))
            continue  # cancelled, or failed while detecting
        job = jobs.get(file_id)
        if job is not None and job.status in DONE_JOB_STATUSES:
            add(FileOutcome(file_id, Outcome.DONE_EARLIER))
            continue  # finished by an earlier attempt of this step
        job_id = repository.start_attempt(
            file_id, run_id=run.run_id, attempt=run.attempt, max_attempts=run.max_attempts
        )
        if job_id is None:
            add(FileOutcome(file_id, Outcome.CANCELLED))
            continue  # cancelled just now
        try:
            envelope = extract(row, run.attempt, run.max_attempts)
        except passthrough:
            raise
        except Exception as exc:
            add(unreadable(repository, run, file_id, exc, job_id=job_id))
            continue
        if envelope.succeeded:
            # The text (and the preview's URI) ride along until ``materialize`` writes them.
            result_document = envelope.model_dump(mode="json")
            if envelope.preview_uri is not None:  # stored by ``extract``; materialize names it
                result_document["preview_uri"] = envelope.preview_uri
            repository.finish_attempt(job_id, JobStatus.EXTRACTED, result=result_document)
            add(
                FileOutcome(
                    file_id,
                    Outcome.EXTRACTED,
                    format=envelope.format or "?",
                    duration_ms=envelope.duration_ms or 0,
                )
            )
            continue
        failure = (
            envelope.error.model_dump() if envelope.error else error("permanent", "crashed", "no result")
        )
        if failure["code"] == shortcuts.UNSUPPORTED_CODE:  # the worker found no supported format either
            repository.finish_attempt(
                job_id,
                JobStatus.SKIPPED,
                error=failure,
                file_status=FileStatus.SKIPPED,
                format=envelope.format,
            )
            add(FileOutcome(file_id, Outcome.SKIPPED, format=envelope.format, error=failure))
            continue
        final = failure["kind"] == "permanent" or run.is_last
        add(
            record_failure(repository, run, file_id, failure, job_id=job_id, final=final, fmt=envelope.format)
        )
    return result


def cancel_unfinished(
    repository: CloudFileRepository, file_ids: Sequence[int], run_ids: Iterable[str]
) -> list[CloudFile]:
    """A terminated run: its unfinished files end ``cancelled``; returns the files of this run (or
    of the runs it re-executes) that are cancelled now, whoever cancelled them.

    ``extraction-pipeline cancel`` marks a file cancelled *before* it terminates the file's run, so
    ``cancel_files`` here may change nothing.
    """
    cancelled_now = {row.id for row in repository.cancel_files(file_ids)}
    group = set(run_ids)
    ended = []
    for row in repository.list_files(ids=file_ids):
        state = row.state
        if state is None or state.status != FileStatus.CANCELLED:
            continue
        if row.id in cancelled_now or state.run_id in group:
            ended.append(row)
    return ended
