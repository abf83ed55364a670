"""Retry behaviour: transient failures are retried with the RetryPolicy, permanent ones are not."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from extraction_pipeline.extraction.errors import StorageUnavailable
from extraction_pipeline.orchestration.assets import retry_policy
from extraction_pipeline.orchestration.resources import ExtractionResource
from extraction_pipeline.persistence.errors import DatabaseUnavailable
from extraction_pipeline_tests.orchestration.conftest import App, make_pdf, run


class FlakyStorage(ExtractionResource):
    """The blob store fails ``failures`` times when a file is read for extraction, then recovers."""

    failures: int = 2
    counter_path: str = ""

    def extract(self, path: Path, filename: str, *, attempt: int, max_attempts: int, preview: bool = True):  # type: ignore[override]
        counter = Path(self.counter_path)
        seen = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(seen + 1))
        if seen < self.failures:
            raise StorageUnavailable("the blob store timed out")
        return super().extract(path, filename, attempt=attempt, max_attempts=max_attempts, preview=preview)


class _LosesTheDatabaseOnce:
    """The real repository, whose first ``finish_attempt(..., "extracted")`` meets a database outage."""

    def __init__(self, repository: object, counter: Path) -> None:
        self._repository = repository
        self._counter = counter

    def finish_attempt(self, job_id: int, status: str, **kwargs: object) -> None:
        if status == "extracted" and not self._counter.exists():
            self._counter.write_text("1")
            raise DatabaseUnavailable("the database server closed the connection")
        self._repository.finish_attempt(job_id, status, **kwargs)

    def __getattr__(self, name: str) -> object:
        return getattr(self._repository, name)


class DatabaseGoneAfterExtraction(ExtractionResource):
    counter_path: str = ""

    @property
    def repository(self):  # type: ignore[override]
        return _LosesTheDatabaseOnce(super().repository, Path(self.counter_path))


def test_an_attempt_the_database_outage_left_open_is_closed_by_the_retry(
    app: App, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """The extraction finished but its row could not be closed: the retried step abandons it."""
    file_id = app.upload("plan.pdf", make_pdf(pages=2))
    resource = DatabaseGoneAfterExtraction(
        database_url=app.url,
        storage_url=app.storage_url,
        max_retries=1,
        isolated=False,
        counter_path=str(tmp_path / "outage"),
    )
    result = run(
        app, instance, [file_id], settings=app.settings(max_retries=1, retry_delay_s=0.01), resource=resource
    )
    assert result.success
    jobs = app.repository.jobs_for(file_id)
    assert [(j.attempt, j.status) for j in jobs] == [(1, "abandoned"), (2, "succeeded")]
    assert app.status(file_id)["status"] == "succeeded"
    assert app.repository.metadata_for(file_id).metadata_["page_count"] == 2


def test_transient_error_twice_then_success_is_three_attempts(
    app: App, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    file_id = app.upload("plan.pdf", make_pdf())
    resource = FlakyStorage(
        database_url=app.url,
        storage_url=app.storage_url,
        max_retries=3,
        isolated=False,
        counter_path=str(tmp_path / "count"),
    )
    result = run(
        app, instance, [file_id], settings=app.settings(max_retries=3, retry_delay_s=0.01), resource=resource
    )
    assert result.success
    jobs = app.repository.jobs_for(file_id)
    assert [(j.attempt, j.status) for j in jobs] == [(1, "retrying"), (2, "retrying"), (3, "succeeded")]
    assert all(j.max_attempts == 4 for j in jobs)
    assert jobs[0].error_code == "storage_unavailable" and jobs[0].next_retry_at is not None
    status = app.status(file_id)
    assert status["status"] == "succeeded" and status["attempts"] == 3 and status["error"] is None
    retries = [
        e
        for e in instance.all_logs(result.run_id)
        if e.dagster_event and e.dagster_event.event_type_value == "STEP_UP_FOR_RETRY"
    ]
    assert len(retries) == 2


def test_transient_errors_until_the_retries_are_used_up_fail_the_file(
    app: App, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    file_id = app.upload("plan.pdf", make_pdf())
    resource = FlakyStorage(
        database_url=app.url,
        storage_url=app.storage_url,
        max_retries=1,
        isolated=False,
        failures=5,
        counter_path=str(tmp_path / "count"),
    )
    result = run(
        app, instance, [file_id], settings=app.settings(max_retries=1, retry_delay_s=0.01), resource=resource
    )
    assert not result.success
    jobs = app.repository.jobs_for(file_id)
    assert [(j.attempt, j.status) for j in jobs] == [(1, "retrying"), (2, "failed")]
    status = app.status(file_id)
    assert status["status"] == "failed" and status["error"]["code"] == "storage_unavailable"


def test_a_crashing_worker_is_retried_then_fails_permanently(
    app: App, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXTRACTION_FAULT_INJECTION", "1")
    file_id = app.upload("boom.pdf", b"EXTRACTION-FAULT:exit\n%PDF-1.7\n")
    result = run(
        app,
        instance,
        [file_id],
        settings=app.settings(max_retries=1, retry_delay_s=0.01),
        resource=app.resource(max_retries=1),
    )
    assert not result.success
    jobs = app.repository.jobs_for(file_id)
    assert [(j.attempt, j.status, j.error_code) for j in jobs] == [
        (1, "retrying", "crashed"),
        (2, "failed", "crashed"),
    ]
    assert [j.error_kind for j in jobs] == ["transient", "permanent"]


def test_retry_policy_is_exponential_with_jitter(app: App) -> None:
    policy = retry_policy(app.settings(max_retries=3, retry_delay_s=30.0))
    assert policy.max_retries == 3 and policy.delay == 30.0
    assert policy.backoff == dg.Backoff.EXPONENTIAL and policy.jitter == dg.Jitter.PLUS_MINUS
