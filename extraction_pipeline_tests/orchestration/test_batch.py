"""The per-file rules of a run (``orchestration/batch.py``) without Dagster, on SQLite and PostgreSQL.

Each test drives the plain functions with a repository, file ids, run ids and attempt numbers, and
fakes for reading and extracting a file, then checks the outcomes and what the database holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from extraction_pipeline.orchestration import batch
from extraction_pipeline.orchestration.batch import Outcome, RunAttempt
from extraction_pipeline.persistence.models import CloudFile, utcnow
from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline.persistence.state import FileStatus, JobStatus
from extraction_pipeline_tests.conftest import add_file_row

add = add_file_row


def attempt(
    run_id: str = "run-1", *, retry: int = 0, retries: int = 2, group: tuple[str, ...] = (), **kw: Any
) -> RunAttempt:
    return RunAttempt(
        run_id=run_id,
        run_ids=frozenset({run_id, *group}),
        retry_number=retry,
        max_retries=retries,
        retry_delay=lambda n: 60.0 * n,
        **kw,
    )


@dataclass
class FakeEnvelope:
    """What ``extract_files`` reads of an envelope."""

    format: str | None = "pdf"
    error: Any = None
    duration_ms: int = 5
    metadata: dict[str, Any] = field(default_factory=lambda: {"page_count": 1})
    preview_uri: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        return {
            "format": self.format,
            "variant": None,
            "status": "succeeded",
            "extractor": {"name": "fake", "version": "1"},
            "metadata": self.metadata,
            "warnings": [],
        }


@dataclass
class FakeError:
    kind: str
    code: str
    message: str

    def model_dump(self) -> dict[str, Any]:
        return {"kind": self.kind, "code": self.code, "message": self.message}


def by_file(result: batch.StepResult) -> dict[int, Outcome]:
    return {item.file_id: item.outcome for item in result.outcomes}


def state(repository: CloudFileRepository, file_id: int) -> Any:
    row = repository.get_file(file_id)
    assert row is not None and row.state is not None
    return row.state


def detect_pdf(row: CloudFile) -> str:
    if row.filename.startswith("unreadable"):
        raise OSError("the blob store timed out")
    return "pdf"


def queue_and_detect(repository: CloudFileRepository, names: list[str], run: RunAttempt) -> list[int]:
    ids = [add(repository, name) for name in names]
    repository.queue_files(ids)
    batch.detect_files(repository, ids, run, detect_pdf)
    return ids


def test_detect_skips_cancelled_and_missing_files_and_retries_an_unreadable_one(
    repository: CloudFileRepository,
) -> None:
    good, cancelled, unreadable = (add(repository, n) for n in ("a.pdf", "b.pdf", "unreadable.pdf"))
    repository.queue_files([good, cancelled, unreadable])
    repository.cancel_files([cancelled])
    reported: list[batch.FileOutcome] = []
    run = attempt()
    before = utcnow()
    result = batch.detect_files(
        repository, [good, cancelled, unreadable, 9999], run, detect_pdf, report=reported.append
    )
    assert by_file(result) == {
        good: Outcome.DETECTED,
        cancelled: Outcome.CANCELLED,
        unreadable: Outcome.RETRYING,
        9999: Outcome.MISSING,
    }
    assert reported == result.outcomes and result.transient == [unreadable]
    assert state(repository, good).status == FileStatus.RUNNING and state(repository, good).format == "pdf"
    assert state(repository, good).run_id == "run-1"
    assert state(repository, cancelled).status == FileStatus.CANCELLED
    # A transient failure: the file stays running, its attempt waits for the retry policy's delay.
    assert state(repository, unreadable).status == FileStatus.RUNNING
    [job] = repository.jobs_for(unreadable)
    assert (job.status, job.attempt, job.max_attempts, job.error_code) == (
        JobStatus.RETRYING,
        1,
        3,
        "storage_unavailable",
    )
    assert job.next_retry_at is not None
    assert before + timedelta(seconds=59) <= job.next_retry_at <= utcnow() + timedelta(seconds=61)

    # The step's retry: the detected file is not read again, the unreadable one is.
    again = batch.detect_files(repository, [good, unreadable], attempt(retry=1), detect_pdf)
    assert by_file(again) == {good: Outcome.DONE_EARLIER, unreadable: Outcome.RETRYING}
    assert repository.jobs_for(unreadable)[-1].next_retry_at >= utcnow() + timedelta(seconds=119)


def test_the_last_attempt_fails_the_file_for_good(repository: CloudFileRepository) -> None:
    file_id = add(repository, "unreadable.pdf")
    repository.queue_files([file_id])
    result = batch.detect_files(repository, [file_id], attempt(retry=2, retries=2), detect_pdf)
    assert by_file(result) == {file_id: Outcome.FAILED} and result.transient == []
    current = state(repository, file_id)
    assert current.status == FileStatus.FAILED and current.error_code == "storage_unavailable"
    [job] = repository.jobs_for(file_id)
    assert (job.status, job.attempt, job.max_attempts, job.next_retry_at) == (JobStatus.FAILED, 3, 3, None)


def test_detect_abandons_attempts_a_dead_run_left_open(repository: CloudFileRepository) -> None:
    file_id = add(repository, "a.pdf")
    repository.queue_files([file_id])
    old = repository.start_attempt(file_id, run_id="dead-run", attempt=1, max_attempts=3)
    mine = repository.start_attempt(file_id, run_id="run-1", attempt=1, max_attempts=3)
    batch.detect_files(repository, [file_id], attempt(), detect_pdf)
    statuses = {job.id: job.status for job in repository.jobs_for(file_id)}
    assert statuses == {old: JobStatus.ABANDONED, mine: JobStatus.RUNNING}


def test_one_bad_file_fails_only_itself(repository: CloudFileRepository) -> None:
    good, corrupt, flaky, crashing = queue_and_detect(
        repository, ["good.pdf", "corrupt.pdf", "flaky.pdf", "crash.pdf"], attempt()
    )

    def extract(row: CloudFile, number: int, most: int) -> Any:
        if row.filename == "corrupt.pdf":
            return FakeEnvelope(error=FakeError("permanent", "corrupt", "cannot be read"))
        if row.filename == "flaky.pdf" and number == 1:
            raise OSError("the blob store went away")
        if row.filename == "crash.pdf":
            return FakeEnvelope(error=FakeError("transient", "crashed", "the worker died"))
        return FakeEnvelope()

    result = batch.extract_files(repository, [good, corrupt, flaky, crashing], attempt(), extract)
    assert by_file(result) == {
        good: Outcome.EXTRACTED,
        corrupt: Outcome.FAILED,
        flaky: Outcome.RETRYING,
        crashing: Outcome.RETRYING,
    }
    assert state(repository, corrupt).status == FileStatus.FAILED
    assert [j.status for j in repository.jobs_for(good)] == [JobStatus.EXTRACTED]

    # The step's retry redoes only the transient ones; at the last attempt a transient failure is final.
    retried = batch.extract_files(repository, [good, corrupt, flaky, crashing], attempt(retry=2), extract)
    assert by_file(retried) == {
        good: Outcome.DONE_EARLIER,
        corrupt: Outcome.NOT_THIS_RUN,
        flaky: Outcome.EXTRACTED,
        crashing: Outcome.FAILED,
    }
    assert [(j.attempt, j.status) for j in repository.jobs_for(crashing)] == [
        (1, JobStatus.RETRYING),
        (3, JobStatus.FAILED),
    ]

    plan = batch.plan_materialize(
        repository, [good, corrupt, flaky, crashing], ["run-1"], lambda env: {"ok": 1}
    )
    assert [item.file_id for item in plan.ready] == [good, flaky]
    assert [(item.file_id, item.error["code"], item.attempts) for item in plan.failed] == [
        (corrupt, "corrupt", 1),
        (crashing, "crashed", 3),
    ]
    repository.cancel_files([flaky])  # cancelled between extraction and materialization
    [chunk] = list(batch.write_materialized(repository, plan.ready))
    assert [item.file_id for item in chunk.done] == [good] and chunk.cancelled == [flaky]
    assert state(repository, good).status == FileStatus.SUCCEEDED
    assert repository.metadata_for(good) is not None and repository.metadata_for(flaky) is None


def test_a_retried_step_abandons_the_attempt_it_could_not_close(repository: CloudFileRepository) -> None:
    [file_id] = queue_and_detect(repository, ["a.pdf"], attempt())
    left_open = repository.start_attempt(file_id, run_id="run-1", attempt=1, max_attempts=3)
    result = batch.extract_files(repository, [file_id], attempt(retry=1), lambda row, n, m: FakeEnvelope())
    assert by_file(result) == {file_id: Outcome.EXTRACTED}
    jobs = repository.jobs_for(file_id)
    assert [(j.id == left_open, j.attempt, j.status) for j in jobs] == [
        (True, 1, JobStatus.ABANDONED),
        (False, 2, JobStatus.EXTRACTED),
    ]


def test_a_run_retry_resumes_the_files_of_its_crashed_parent(repository: CloudFileRepository) -> None:
    parent = attempt("parent")
    crashed, untouched, other_run = queue_and_detect(repository, ["a.pdf", "b.pdf", "c.pdf"], parent)
    open_job = repository.start_attempt(crashed, run_id="parent", attempt=1, max_attempts=3)
    # The alert sensor: the parent run died, its unfinished file is failed/crashed.
    crash = {"kind": "transient", "code": "crashed", "message": "the extraction run failed"}
    assert repository.set_status(crashed, FileStatus.FAILED, expect_run_id="parent", error=crash)
    repository.mark_running({other_run: "pdf"}, run_id="someone-else")

    child = attempt("child", group=("parent",), ancestor_run_ids=frozenset({"parent"}))
    result = batch.extract_files(
        repository, [crashed, untouched, other_run], child, lambda row, n, m: FakeEnvelope()
    )
    assert by_file(result) == {
        crashed: Outcome.EXTRACTED,
        untouched: Outcome.EXTRACTED,
        other_run: Outcome.NOT_THIS_RUN,
    }
    statuses = {job.id: job.status for job in repository.jobs_for(crashed)}
    assert statuses[open_job] == JobStatus.ABANDONED
    assert state(repository, crashed).run_id == "child"


def test_a_file_cancelled_before_its_attempt_is_not_extracted(repository: CloudFileRepository) -> None:
    a, b = queue_and_detect(repository, ["a.pdf", "b.pdf"], attempt())
    repository.cancel_files([b])
    seen: list[str] = []

    def extract(row: CloudFile, number: int, most: int) -> Any:
        seen.append(row.filename)
        return FakeEnvelope()

    result = batch.extract_files(repository, [a, b], attempt(), extract)
    assert by_file(result) == {a: Outcome.EXTRACTED, b: Outcome.CANCELLED} and seen == ["a.pdf"]


def test_passthrough_exceptions_end_the_step_at_once(repository: CloudFileRepository) -> None:
    class Terminated(Exception):
        pass

    a, b = queue_and_detect(repository, ["a.pdf", "b.pdf"], attempt())

    def extract(row: CloudFile, number: int, most: int) -> Any:
        raise Terminated

    with pytest.raises(Terminated):
        batch.extract_files(repository, [a, b], attempt(), extract, passthrough=(Terminated,))
    ended = batch.cancel_unfinished(repository, [a, b], ["run-1"])
    assert [row.id for row in ended] == [a, b]
    assert all(state(repository, i).status == FileStatus.CANCELLED for i in (a, b))


def test_attempt_numbers_come_from_the_retry_policy_values() -> None:
    run = RunAttempt(
        run_id="r", run_ids=frozenset({"r"}), retry_number=1, max_retries=3, retry_delay=lambda n: n * 10.0
    )
    assert (run.attempt, run.max_attempts, run.is_last) == (2, 4, False)
    assert timedelta(seconds=19) <= run.next_retry_at() - utcnow() <= timedelta(seconds=21)
    assert RunAttempt(run_id="r", run_ids=frozenset({"r"}), retry_number=3, max_retries=3).is_last


# -- files that are not extracted: skipped and deduplicated ---------------------------------------


def detect_by_name(row: CloudFile) -> str:
    """``.png``/``.txt`` files are of no supported format; everything else a PDF."""
    return "unknown" if row.filename.endswith((".png", ".txt")) else "pdf"


def extract_once(repository: CloudFileRepository, file_ids: list[int], run: RunAttempt) -> None:
    """``file_ids`` (detected by ``run``) extracted and materialized: ``succeeded``, metadata version "1"."""
    batch.extract_files(repository, file_ids, run, lambda row, n, m: FakeEnvelope(metadata={"page_count": 7}))
    plan = batch.plan_materialize(repository, file_ids, [run.run_id], lambda env: {"figures": {"pages": 7}})
    list(batch.write_materialized(repository, plan.ready))


def test_a_file_of_no_supported_format_is_skipped_after_one_look(repository: CloudFileRepository) -> None:
    photo, notes, plan, cancelled = (
        add(repository, n) for n in ("photo.png", "notes.txt", "plan.pdf", "x.png")
    )
    repository.queue_files([photo, notes, plan, cancelled])
    repository.cancel_files([cancelled])
    run = attempt()
    result = batch.detect_files(repository, [photo, notes, plan, cancelled], run, detect_by_name)
    assert by_file(result) == {
        photo: Outcome.SKIPPED,
        notes: Outcome.SKIPPED,
        plan: Outcome.DETECTED,
        cancelled: Outcome.CANCELLED,
    }
    assert result.transient == []  # nothing for the step's retry
    skipped = state(repository, photo)
    assert skipped.status == FileStatus.SKIPPED and skipped.format == "unknown" and skipped.run_id == "run-1"
    assert skipped.error_document() == {
        "kind": "permanent",
        "code": "unsupported_format",
        "message": "the content is not PDF, DXF, DWG, IFC or STEP",
    }
    assert skipped.attempts == 1 and skipped.completed_at is not None
    [job] = repository.jobs_for(photo)
    assert (job.status, job.attempt, job.max_attempts, job.error_code, job.finished_at is not None) == (
        JobStatus.SKIPPED,
        1,
        3,
        "unsupported_format",
        True,
    )
    assert skipped.job_id == job.id and repository.jobs_for(cancelled) == []
    assert [row.id for row in repository.list_files(status=FileStatus.SKIPPED)] == [photo, notes]

    # The other steps leave them alone; the run's plan shows them (not as failures).
    extracted: list[str] = []

    def extract(row: CloudFile, number: int, most: int) -> Any:
        extracted.append(row.filename)
        return FakeEnvelope()

    later = batch.extract_files(repository, [photo, notes, plan], run, extract)
    assert by_file(later) == {
        photo: Outcome.DONE_EARLIER,
        notes: Outcome.DONE_EARLIER,
        plan: Outcome.EXTRACTED,
    }
    assert extracted == ["plan.pdf"]
    report = batch.plan_materialize(repository, [photo, notes, plan], ["run-1"], lambda env: {})
    assert [(item.file_id, item.error["code"]) for item in report.skipped] == [
        (photo, "unsupported_format"),
        (notes, "unsupported_format"),
    ]
    assert report.failed == [] and [item.file_id for item in report.ready] == [plan]
    # A retried detect step does not look again.
    again = batch.detect_files(repository, [photo], attempt(retry=1), detect_by_name)
    assert by_file(again) == {photo: Outcome.DONE_EARLIER} and len(repository.jobs_for(photo)) == 1


def test_an_unsupported_envelope_from_the_worker_skips_the_file(repository: CloudFileRepository) -> None:
    [file_id] = queue_and_detect(repository, ["odd.pdf"], attempt())
    unsupported = FakeError(
        "permanent", "unsupported_format", "the content is not PDF, DXF, DWG, IFC or STEP"
    )
    result = batch.extract_files(
        repository, [file_id], attempt(), lambda row, n, m: FakeEnvelope(format="unknown", error=unsupported)
    )
    assert by_file(result) == {file_id: Outcome.SKIPPED} and result.transient == []
    assert state(repository, file_id).status == FileStatus.SKIPPED
    assert [j.status for j in repository.jobs_for(file_id)] == [JobStatus.SKIPPED]


def test_a_duplicate_of_a_succeeded_file_gets_its_metadata_copied(repository: CloudFileRepository) -> None:
    """Every row of ``add`` has the same sha256 and size: the same bytes."""
    [source] = queue_and_detect(repository, ["logo.pdf"], attempt("run-0"))
    extract_once(repository, [source], attempt("run-0"))
    assert state(repository, source).status == FileStatus.SUCCEEDED

    copy, older_version, forced = (add(repository, n) for n in ("copy.pdf", "older.pdf", "forced.pdf"))
    repository.queue_files([copy])
    run = attempt("run-1")
    result = batch.detect_files(repository, [copy], run, detect_pdf, versions={"pdf": "1"})
    assert by_file(result) == {copy: Outcome.DEDUPLICATED}
    assert result.outcomes[0].deduplicated_from == source
    copied = state(repository, copy)
    assert (copied.status, copied.deduplicated_from, copied.format, copied.run_id, copied.error) == (
        FileStatus.SUCCEEDED,
        source,
        "pdf",
        "run-1",
        None,
    )
    [job] = repository.jobs_for(copy)
    assert job.status == JobStatus.SUCCEEDED and job.attempt == 1 and copied.job_id == job.id
    assert job.result == {"figures": {"pages": 7}, "deduplicated_from": source}
    original, duplicate = repository.metadata_for(source), repository.metadata_for(copy)
    assert duplicate is not None and original is not None
    assert (duplicate.format, duplicate.extractor_version, duplicate.metadata_) == (
        original.format,
        original.extractor_version,
        {"page_count": 7},
    )
    # Extract leaves it alone; materialize shows it with the copied metadata.
    assert by_file(batch.extract_files(repository, [copy], run, detect_pdf)) == {copy: Outcome.DONE_EARLIER}
    plan = batch.plan_materialize(repository, [copy], ["run-1"], lambda env: {})
    [shown] = plan.deduplicated
    assert (shown.file_id, shown.source_id, shown.envelope["metadata"]) == (copy, source, {"page_count": 7})
    assert shown.envelope["file"]["name"] == "copy.pdf" and plan.ready == [] and plan.failed == []

    # Another extractor version: extracted. A file queued by `retry --force`: extracted.
    repository.queue_files([older_version])
    other = batch.detect_files(
        repository, [older_version], attempt("run-2"), detect_pdf, versions={"pdf": "2"}
    )
    assert by_file(other) == {older_version: Outcome.DETECTED}
    assert state(repository, older_version).status == FileStatus.RUNNING
    repository.queue_files([forced])
    repository.cancel_files([forced])
    assert repository.reset_to_pending([forced], force=True) == [forced]
    repository.queue_files([forced])
    assert state(repository, forced).forced is True
    again = batch.detect_files(repository, [forced], attempt("run-3"), detect_pdf, versions={"pdf": "1"})
    assert by_file(again) == {forced: Outcome.DETECTED}
    assert state(repository, forced).forced is True  # kept while the file is extracted


def test_with_deduplication_off_a_duplicate_is_extracted(repository: CloudFileRepository) -> None:
    """EXTRACTION_DEDUPLICATE=0: every file is extracted, whatever succeeded before."""
    [source] = queue_and_detect(repository, ["logo.pdf"], attempt("run-0"))
    extract_once(repository, [source], attempt("run-0"))
    copy = add(repository, "copy.pdf")
    repository.queue_files([copy])
    result = batch.detect_files(
        repository, [copy], attempt("run-1"), detect_pdf, versions={"pdf": "1"}, deduplicate=False
    )
    assert by_file(result) == {copy: Outcome.DETECTED}
    assert state(repository, copy).status == FileStatus.RUNNING
    assert state(repository, copy).deduplicated_from is None


def test_no_duplicate_without_a_succeeded_source_with_the_same_bytes(repository: CloudFileRepository) -> None:
    from extraction_pipeline.persistence.repository import NewFile

    [source] = queue_and_detect(repository, ["a.pdf"], attempt("run-0"))
    extract_once(repository, [source], attempt("run-0"))
    other_bytes = repository.add_file(
        NewFile(filename="b.pdf", size_bytes=1, sha256="1" * 64, storage_uri="mem://b.pdf")
    ).id
    not_a_digest = repository.add_file(
        NewFile(filename="c.pdf", size_bytes=1, sha256="", storage_uri="mem://c.pdf")
    ).id
    same_bytes = add(repository, "d.pdf")
    ids = [other_bytes, not_a_digest, same_bytes]
    repository.queue_files(ids)
    # The source is being extracted again: no longer `succeeded`, nothing to copy from.
    repository.reset_to_pending([source], statuses=(FileStatus.SUCCEEDED,))
    result = batch.detect_files(repository, ids, attempt("run-1"), detect_pdf, versions={"pdf": "1"})
    assert set(by_file(result).values()) == {Outcome.DETECTED}


def test_a_file_deleted_while_its_bytes_are_read_is_gone_not_failed(repository: CloudFileRepository) -> None:
    """The host deletes the row (and housekeeping the blob) between the listing and the read:
    nothing is recorded and nothing is retried (a storage failure would be, 30 s later)."""
    [file_id] = [add(repository, "plan.pdf")]
    repository.queue_files([file_id])

    def deleted_meanwhile(row: CloudFile) -> str:
        repository.delete_files([row.id])
        raise FileNotFoundError(2, "No such file or directory", "blobs/ab/cdef")

    result = batch.detect_files(repository, [file_id], attempt("run-1"), deleted_meanwhile)
    assert by_file(result) == {file_id: Outcome.MISSING}
    assert result.transient == [] and repository.jobs_for(file_id) == []
