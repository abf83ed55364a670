"""Uploads that are not extracted, through dg.materialize: files of no supported format end
``skipped`` in a successful run (no alert), and a file with the same bytes as one that succeeded
gets its metadata copied (``deduplicated_from``) unless ``retry --force`` asked for an extraction."""

from __future__ import annotations

import json

import dagster as dg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from extraction_pipeline.cli import cli
from extraction_pipeline.orchestration.assets import ASSET_KEY
from extraction_pipeline_tests.orchestration.conftest import App, make_pdf, run

PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)


def records(instance: dg.DagsterInstance, file_id: int, kind: str) -> list[dg.EventLogRecord]:
    records_filter = dg.AssetRecordsFilter(asset_key=ASSET_KEY, asset_partitions=[str(file_id)])
    fetch = instance.fetch_observations if kind == "observation" else instance.fetch_materializations
    return list(fetch(records_filter, limit=10).records)


def run_logs(instance: dg.DagsterInstance, run_id: str) -> str:
    return "\n".join(entry.user_message for entry in instance.all_logs(run_id))


def test_files_of_no_supported_format_are_skipped_by_a_successful_run(
    any_app: App, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = any_app
    photo = app.upload("photo.png", PNG_HEAD)
    notes = app.upload("notes.txt", b"minutes of the meeting\n" * 20)
    empty = app.upload("empty.pdf", b"")
    plan = app.upload("plan.pdf", make_pdf(pages=2))
    settings = app.settings(max_retries=3, retry_delay_s=0.0)
    result = run(
        app, instance, [photo, notes, empty, plan], settings=settings, resource=app.resource(max_retries=3)
    )
    assert result.success  # nothing failed: no failed run, so no alert
    assert instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])) == []
    for file_id, reason in (
        (photo, "the content is not PDF, DXF, DWG, IFC or STEP"),
        (notes, "the content is not PDF, DXF, DWG, IFC or STEP"),
        (empty, "the file is empty"),
    ):
        status = app.status(file_id)
        assert status["status"] == "skipped" and status["format"] == "unknown"
        assert status["error"] == {"kind": "permanent", "code": "unsupported_format", "message": reason}
        assert status["attempts"] == 1 and status["completed_at"]
        jobs = app.repository.jobs_for(file_id)
        assert [(j.status, j.attempt, j.max_attempts, j.error_code) for j in jobs] == [
            ("skipped", 1, 4, "unsupported_format")
        ]
        assert app.repository.metadata_for(file_id) is None
        # The partition says why it was not extracted.
        [observation] = records(instance, file_id, "observation")
        shown = observation.asset_observation.metadata
        assert shown["status"].value == "skipped" and shown["error_message"].value == reason
    assert app.status(plan)["status"] == "succeeded"
    assert instance.get_materialized_partitions(ASSET_KEY) == {str(plan)}
    assert "skipped 3 file(s) of no supported format" in run_logs(instance, result.run_id)

    monkeypatch.setenv("EXTRACTION_DATABASE_URL", app.url)
    monkeypatch.setenv("EXTRACTION_STORAGE_URL", app.storage_url)
    listed = CliRunner().invoke(cli, ["list", "--status", "skipped", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(item["id"], item["status"]) for item in json.loads(listed.stdout)] == [
        (photo, "skipped"),
        (notes, "skipped"),
        (empty, "skipped"),
    ]
    retried = CliRunner().invoke(cli, ["retry", "--failed", str(photo), "--json"])
    assert json.loads(retried.stdout)["skipped_reasons"] == {str(photo): "skipped: --force re-extracts it"}


def test_a_duplicate_is_copied_an_older_version_is_not_and_force_extracts(
    any_app: App, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = any_app
    data = make_pdf(pages=3, text="standard detail")
    source = app.upload("detail.pdf", data)
    assert run(app, instance, [source]).success

    copy = app.upload("detail (copy).pdf", data)
    app.repository.queue_files([copy])  # as the sensor does
    result = run(app, instance, [copy])
    assert result.success
    status = app.status(copy)
    assert status["status"] == "succeeded" and status["deduplicated_from"] == source
    assert status["format"] == "pdf" and status["error"] is None
    [job] = app.repository.jobs_for(copy)
    assert job.status == "succeeded" and job.result["deduplicated_from"] == source
    assert job.result["figures"]["pages"] == 3  # the source's summary, copied
    original, copied = app.repository.metadata_for(source), app.repository.metadata_for(copy)
    assert copied.metadata_ == original.metadata_ and copied.extractor_version == original.extractor_version
    logs = run_logs(instance, result.run_id)
    assert f"{copy} <- {source}" in logs and "extracted 1 file(s)" not in logs  # no worker ran
    [event] = records(instance, copy, "materialization")
    shown = event.asset_materialization.metadata
    assert shown["deduplicated_from"].value == source and shown["pages"].value == 3
    assert shown["file"].value == "detail (copy).pdf"

    # Extracted by an older extractor version: nothing is copied from it.
    engine = sa.create_engine(app.url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE cloud_file_metadata SET extractor_version = '0.9.0'"))
    engine.dispose()
    third = app.upload("detail (3).pdf", data)
    assert run(app, instance, [third]).success
    assert "deduplicated_from" not in app.status(third)
    assert [
        (j.status, (j.result or {}).get("deduplicated_from")) for j in app.repository.jobs_for(third)
    ] == [("succeeded", None)]

    # `retry --force` of the copy: extracted, even though its source succeeded with this version.
    fourth = app.upload("detail (4).pdf", data)
    app.repository.queue_files([fourth])
    assert run(app, instance, [fourth]).success
    assert app.status(fourth)["deduplicated_from"] == third  # the current version's extraction
    monkeypatch.setenv("EXTRACTION_DATABASE_URL", app.url)
    monkeypatch.setenv("EXTRACTION_STORAGE_URL", app.storage_url)
    retried = CliRunner().invoke(cli, ["retry", str(fourth), "--force", "--json"])
    assert retried.exit_code == 0, retried.output
    assert json.loads(retried.stdout)["requeued"] == [fourth]
    app.repository.queue_files([fourth])
    forced = run(app, instance, [fourth])
    assert forced.success
    status = app.status(fourth)
    assert status["status"] == "succeeded" and status["forced"] is True
    assert "deduplicated_from" not in status
    jobs = app.repository.jobs_for(fourth)
    assert [(j.status, (j.result or {}).get("deduplicated_from")) for j in jobs] == [
        ("succeeded", third),
        ("succeeded", None),
    ]
    assert "extracted 1 file(s)" in run_logs(instance, forced.run_id)
