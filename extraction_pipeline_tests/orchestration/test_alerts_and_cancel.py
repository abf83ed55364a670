"""Run-level sensors (alerts on failure, cancelled runs) and the retry / cancel commands."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
from click.testing import CliRunner

from extraction_pipeline.cli import cli
from extraction_pipeline.definitions import build_definitions
from extraction_pipeline.orchestration.assets import JOB_NAME, build_extraction_asset
from extraction_pipeline.orchestration.notify import notify, redact_webhook_url
from extraction_pipeline.orchestration.partitions import run_key_for
from extraction_pipeline.orchestration.sensors import extraction_cancellations, extraction_failure_alerts
from extraction_pipeline_tests.orchestration.conftest import App, webhook_receiver


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    with webhook_receiver() as (port, received):
        yield f"http://alerts:s3cret@127.0.0.1:{port}/hook?token=abc", received


def failed_run(app: App, instance: dg.DagsterInstance) -> tuple[int, dg.DagsterRun]:
    # A PDF header over garbage: corrupt, a permanent failure (no supported format would be skipped).
    file_id = app.upload("broken <b>.pdf", b"%PDF-1.4\n no pdf here\n" * 5)
    instance.add_dynamic_partitions("cloud_files", [str(file_id)])
    result = dg.materialize(
        [build_extraction_asset(app.settings(max_retries=2, retry_delay_s=0.0))],
        instance=instance,
        resources={"extraction": app.resource(isolated=False, max_retries=2)},
        partition_key=str(file_id),
        raise_on_error=False,
    )
    assert not result.success
    return file_id, instance.get_run_by_id(result.run_id)


def test_a_permanent_failure_is_announced_by_log_line_and_webhook(
    app: App,
    instance: dg.DagsterInstance,
    webhook: tuple[str, list[dict]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, received = webhook
    monkeypatch.setenv("EXTRACTION_NOTIFY_WEBHOOK_URL", url)
    file_id, run = failed_run(app, instance)
    failure = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    event = failure[0].event_log_entry.dagster_event if failure else None
    if event is None:  # dg.materialize reports step failure; the run failure event carries the reason
        event = next(
            e.dagster_event
            for e in instance.all_logs(run.run_id)
            if e.dagster_event and e.dagster_event.event_type_value == "RUN_FAILURE"
        )
    with (
        caplog.at_level(logging.WARNING, logger="extraction_pipeline.notify"),
        dg.build_run_status_sensor_context(
            sensor_name="extraction_failure_alerts",
            dagster_event=event,
            dagster_instance=instance,
            dagster_run=run,
            resources={"extraction": app.resource()},
        ) as status_context,
    ):
        extraction_failure_alerts(status_context.for_run_failure())
    assert len(received) == 1 and received[0]["content_type"] == "application/json"
    assert received[0]["authorization"] == "Basic YWxlcnRzOnMzY3JldA=="  # alerts:s3cret
    assert received[0]["path"] == "/hook?token=abc"
    body = received[0]["body"]
    assert body["event"] == "extraction_failed" and body["run_id"] == run.run_id
    assert body["files"] == [
        {
            "id": file_id,
            "filename": "broken <b>.pdf",
            "format": "pdf",
            "error": {
                "kind": "permanent",
                "code": "corrupt",
                "message": body["files"][0]["error"]["message"],
            },
        }
    ]
    assert body["files"][0]["error"]["message"]  # says why, not just a code
    logged = [r.getMessage() for r in caplog.records if "extraction alert" in r.getMessage()]
    assert len(logged) == 1 and '"code": "corrupt"' in logged[0]
    assert "s3cret" not in caplog.text and "token=abc" not in caplog.text


def test_an_unreachable_webhook_is_logged_without_its_secret(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="extraction_pipeline.notify"):
        delivered = notify({"event": "x"}, "http://user:pw@127.0.0.1:9/hook?key=secret", timeout_s=2)
    assert delivered is False
    assert "pw" not in caplog.text and "secret" not in caplog.text and "127.0.0.1:9/hook" in caplog.text
    assert redact_webhook_url("https://u:p@example.com:8443/a?b=c#d") == "https://example.com:8443/a"


def _cancelled_run(app: App, instance: dg.DagsterInstance, file_id: int) -> tuple[dg.DagsterRun, Any]:
    """A run of the file's request (the upload sensor's run key), cancelled before it started."""
    defs = build_definitions(app.settings(), app.resource())
    run = instance.create_run_for_job(
        defs.resolve_job_def(JOB_NAME),
        tags={"dagster/partition": str(file_id), "dagster/run_key": run_key_for(file_id, 0)},
    )
    instance.report_run_canceled(run)
    event = next(
        e.dagster_event
        for e in instance.all_logs(run.run_id)
        if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_CANCELED"
    )
    canceled = instance.get_run_by_id(run.run_id)
    assert canceled is not None
    return canceled, event


def _cancellation_sensor(app: App, instance: dg.DagsterInstance, run: dg.DagsterRun, event: Any) -> None:
    with dg.build_run_status_sensor_context(
        sensor_name="extraction_cancellations",
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"extraction": app.resource()},
    ) as context:
        extraction_cancellations(context)


def test_a_cancelled_run_cancels_its_files(app: App, instance: dg.DagsterInstance) -> None:
    file_id = app.upload("a.pdf", b"%PDF-1.4 x")
    app.repository.queue_files([file_id], run_key=run_key_for)
    run, event = _cancelled_run(app, instance, file_id)
    _cancellation_sensor(app, instance, run, event)
    assert app.status(file_id)["status"] == "cancelled"


def test_a_file_queued_again_before_the_sensor_sees_the_cancelled_run_stays_queued(
    app: App, instance: dg.DagsterInstance
) -> None:
    """``cancel`` then ``retry`` at once: the upload sensor queues the file for a new run before the
    cancellation sensor looks at the old run; the new request is not the old run's to cancel."""
    file_id = app.upload("a.pdf", b"%PDF-1.4 x")
    app.repository.queue_files([file_id], run_key=run_key_for)
    run, event = _cancelled_run(app, instance, file_id)
    app.repository.cancel_files([file_id])  # what `cancel` does
    assert app.repository.reset_to_pending([file_id]) == [file_id]  # `retry`
    [again] = app.repository.queue_files([file_id], run_key=run_key_for)  # the next sensor tick
    assert again.generation == 1
    _cancellation_sensor(app, instance, run, event)
    status = app.status(file_id)
    assert (status["status"], status["run_key"]) == ("queued", run_key_for(file_id, 1))


def test_cancel_and_retry_commands(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXTRACTION_DATABASE_URL", app.url)
    monkeypatch.setenv("EXTRACTION_STORAGE_URL", app.storage_url)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    queued = app.upload("a.pdf", b"%PDF-1.4 x")
    done = app.upload("b.pdf", b"%PDF-1.4 x")
    app.repository.queue_files([queued, done])
    app.repository.set_status(done, "succeeded")
    runner = CliRunner()
    result = runner.invoke(cli, ["cancel", str(queued), str(done), "--json"])
    assert result.exit_code == 0, result.output
    cancelled = json.loads(result.stdout)
    assert {key: cancelled[key] for key in ("cancelled", "terminated_runs", "not_cancelled")} == {
        "cancelled": [queued],
        "terminated_runs": [],
        "not_cancelled": [done],
    }
    assert app.status(queued)["status"] == "cancelled"
    result = runner.invoke(cli, ["retry", "--cancelled", "--json"])
    assert result.exit_code == 0, result.output
    retried = json.loads(result.stdout)
    assert {key: retried[key] for key in ("requeued", "skipped", "not_found")} == {
        "requeued": [queued],
        "skipped": [],
        "not_found": [],
    }
    assert app.status(queued) == {}  # pending again: the sensor queues it with a new run key
    result = runner.invoke(cli, ["retry", "999", "--json"])
    assert result.exit_code == 2
