"""The asset through dg.materialize: detect -> extract -> materialize into the database."""

from __future__ import annotations

import dagster as dg

from extraction_pipeline.orchestration.assets import ASSET_KEY
from extraction_pipeline_tests.orchestration.conftest import App, make_pdf, run


def test_a_pdf_is_materialized_with_status_job_and_ui_metadata(
    any_app: App, instance: dg.DagsterInstance
) -> None:
    file_id = any_app.upload("report <v1>*.pdf", make_pdf(pages=3))
    result = run(any_app, instance, [file_id])
    assert result.success
    status = any_app.status(file_id)
    assert status["status"] == "succeeded" and status["format"] == "pdf" and status["error"] is None
    assert status["run_id"] == result.run_id and status["attempts"] == 1 and status["completed_at"]
    stored = any_app.repository.metadata_for(file_id)
    assert stored is not None and stored.metadata_["page_count"] == 3
    jobs = any_app.repository.jobs_for(file_id)
    assert [(j.status, j.attempt, j.max_attempts) for j in jobs] == [("succeeded", 1, 1)]
    assert jobs[0].result["figures"]["pages"] == 3 and status["job_id"] == jobs[0].id
    event = instance.get_latest_materialization_event(ASSET_KEY)
    assert event is not None and event.asset_materialization.partition == str(file_id)
    metadata = event.asset_materialization.metadata
    assert metadata["format"].value == "pdf" and metadata["pages"].value == 3
    assert r"report &lt;v1&gt;\*\.pdf" in metadata["summary"].value


def test_rematerializing_updates_the_metadata_row_in_place(app: App, instance: dg.DagsterInstance) -> None:
    file_id = app.upload("a.pdf", make_pdf(pages=1))
    assert run(app, instance, [file_id]).success
    assert run(app, instance, [file_id]).success
    assert app.repository.metadata_for(file_id).metadata_["page_count"] == 1
    assert [j.status for j in app.repository.jobs_for(file_id)] == ["succeeded", "succeeded"]


def test_a_permanent_failure_is_one_attempt_and_fails_the_run(app: App, instance: dg.DagsterInstance) -> None:
    # A PDF header over garbage: unreadable (content of no supported format is skipped instead).
    file_id = app.upload("notes.pdf", b"%PDF-1.4\nthis is not a pdf at all, just text\n" * 10)
    settings = app.settings(max_retries=3, retry_delay_s=0.0)
    result = run(app, instance, [file_id], settings=settings, resource=app.resource(max_retries=3))
    assert not result.success
    status = app.status(file_id)
    assert status["status"] == "failed" and status["error"]["code"] == "corrupt"
    assert status["error"]["kind"] == "permanent"
    jobs = app.repository.jobs_for(file_id)
    assert [(j.status, j.attempt, j.max_attempts) for j in jobs] == [("failed", 1, 4)]
    assert app.repository.metadata_for(file_id) is None


def test_one_bad_file_in_a_batch_fails_only_that_file(app: App, instance: dg.DagsterInstance) -> None:
    good1 = app.upload("one.pdf", make_pdf(pages=1))
    bad = app.upload("two.pdf", b"%PDF-1.4\n garbage that is not a pdf body")
    good2 = app.upload("three.pdf", make_pdf(pages=2))
    result = run(app, instance, [good1, bad, good2])
    assert not result.success  # the batch reports the bad file
    assert app.status(good1)["status"] == "succeeded" and app.status(good2)["status"] == "succeeded"
    assert app.status(bad)["status"] == "failed"
    assert len(app.repository.jobs_for(bad)) == 1
    materialized = instance.get_materialized_partitions(ASSET_KEY)
    assert materialized == {str(good1), str(good2)}
