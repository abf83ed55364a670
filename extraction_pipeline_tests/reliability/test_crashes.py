"""Crashes: a file that segfaults, hangs or exhausts memory fails alone; a killed run worker is retried.

Faults come from the extraction core's test-only fault injection (``EXTRACTION_FAULT_INJECTION=1``,
see extraction/workers.py): the isolated worker really segfaults, sleeps forever or allocates until
its address-space limit. The run worker itself is killed with SIGKILL under a real dagster-daemon.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psutil
import pytest

from extraction_pipeline.definitions import build_definitions
from extraction_pipeline.orchestration.assets import ASSET_KEY, JOB_NAME, build_extraction_asset
from extraction_pipeline.orchestration.sensors import extraction_failure_alerts
from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline_tests.e2e.conftest import (
    cli,
    fresh_deployment,
    patch_instance_yaml,
    start_daemon,
    stop_daemon,
    wait_for,
)
from extraction_pipeline_tests.orchestration import conftest as orchestration
from extraction_pipeline_tests.orchestration.conftest import App, make_pdf
from extraction_pipeline_tests.pdfs import pdf_bytes

# The orchestration tests' fixtures: a migrated SQLite app database, a blob store, a Dagster instance.
app = orchestration.app
instance = orchestration.instance

FAULTS = {"segfault": "crashed", "hang": "timeout", "oom": "out_of_memory"}


def slow_pdf(pages: int, lines: int = 60) -> bytes:
    """A valid PDF whose text extraction takes seconds: ``pages`` pages sharing one long text stream."""
    text = (
        b"BT /F1 8 Tf 36 800 Td 10 TL "
        + b" ".join(
            b"(line %d lorem ipsum dolor sit amet consectetur adipiscing elit) '" % i for i in range(lines)
        )
        + b" ET"
    )
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
    ]
    kids = []
    for _ in range(pages):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842]"
            b" /Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"
        )
        kids.append(b"%d 0 R" % len(objects))
    objects[1] = b"<< /Type /Pages /Count %d /Kids [" % pages + b" ".join(kids) + b"] >>"
    return pdf_bytes(objects)


# --------------------------------------------------------------------------------------------
# Faulty extractions in a multi-partition run (in-process Dagster, isolated workers)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_segfault_hang_and_oom_fail_only_their_own_file_in_a_batch(
    app: App, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXTRACTION_FAULT_INJECTION", "1")  # read when the run's worker pool starts
    monkeypatch.setenv("EXTRACTION_TIMEOUT_S", "3")
    monkeypatch.setenv("EXTRACTION_MEMORY_LIMIT_MB", "1024")
    ids: dict[str, int] = {"first.pdf": app.upload("first.pdf", make_pdf(pages=1))}
    for fault in FAULTS:
        name = f"{fault}.pdf"
        ids[name] = app.upload(name, f"EXTRACTION-FAULT:{fault}\n%PDF-1.7\n".encode())
    ids["last.pdf"] = app.upload("last.pdf", make_pdf(pages=2))
    keys = [str(i) for i in ids.values()]
    instance.add_dynamic_partitions("cloud_files", keys)

    started = time.monotonic()
    result = dg.materialize(
        [build_extraction_asset(app.settings(max_retries=1, retry_delay_s=0.01))],
        instance=instance,
        resources={"extraction": app.resource(max_retries=1)},
        tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
        raise_on_error=False,
    )
    elapsed = time.monotonic() - started

    assert not result.success  # the run reports the three bad files ...
    for name, pages in (("first.pdf", 1), ("last.pdf", 2)):  # ... and the others are extracted, once
        status = app.status(ids[name])
        assert status["status"] == "succeeded", (name, status)
        assert [j.status for j in app.repository.jobs_for(ids[name])] == ["succeeded"]
        assert app.repository.metadata_for(ids[name]).metadata_["page_count"] == pages
    for fault, code in FAULTS.items():
        file_id = ids[f"{fault}.pdf"]
        status = app.status(file_id)
        assert status["status"] == "failed" and status["error"]["code"] == code, (fault, status)
        jobs = app.repository.jobs_for(file_id)
        # Worker faults are transient while attempts remain: one retry, then a permanent failure.
        assert [(j.attempt, j.status, j.error_code, j.error_kind) for j in jobs] == [
            (1, "retrying", code, "transient"),
            (2, "failed", code, "permanent"),
        ], fault
        assert app.repository.metadata_for(file_id) is None
    assert "SIGSEGV" in app.repository.jobs_for(ids["segfault.pdf"])[-1].error_message
    assert instance.get_materialized_partitions(ASSET_KEY) == {str(ids["first.pdf"]), str(ids["last.pdf"])}
    assert elapsed < 60  # two 3 s timeouts, not a hang


# --------------------------------------------------------------------------------------------
# A run worker killed with SIGKILL, under a real dagster-daemon on PostgreSQL
# --------------------------------------------------------------------------------------------


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, str]]:
    with fresh_deployment(tmp_path, "ep_crash") as env:
        env["EXTRACTION_MAX_RETRIES"] = "0"  # a second attempt must come from the run retry, not a step retry
        patch_instance_yaml(env, run_monitoring={"poll_interval_seconds": 2})
        yield env


@pytest.fixture
def dagster_instance(
    deployment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", deployment["DAGSTER_POSTGRES_URL"])
    with dg.DagsterInstance.from_config(deployment["DAGSTER_HOME"]) as instance:
        yield instance


def run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid the run worker reported in its "Started process for run (pid: N)" engine event."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        found = re.search(r"Started process for run \(pid: (\d+)\)", entry.message or "")
        if found:
            return int(found.group(1))
    return None


@pytest.mark.slow
@pytest.mark.postgres
def test_a_run_worker_killed_mid_run_is_detected_and_its_files_are_extracted_by_a_retried_run(
    deployment: dict[str, str], dagster_instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    assert cli(deployment, "db", "upgrade").returncode == 0
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "a-first.pdf").write_bytes(make_pdf(pages=1))
    (folder / "b-slow.pdf").write_bytes(slow_pdf(pages=4000))  # several seconds of real extraction
    (folder / "c-last.pdf").write_bytes(make_pdf(pages=3))
    upload = cli(deployment, "upload", str(folder), "--json")
    assert upload.returncode == 0, upload.stderr
    ids = {item["filename"]: item["id"] for item in json.loads(upload.stdout)}
    slow = ids["b-slow.pdf"]
    # Historic files: a backfill (3 partitions per run) before the daemon, and so the sensor, starts.
    launched = cli(deployment, "backfill", "--status", "pending", "--json")
    assert launched.returncode == 0, launched.stderr
    assert json.loads(launched.stdout)["files"] == 3

    log = tmp_path / "daemon.log"
    daemon = start_daemon(deployment, log)
    repository = CloudFileRepository.from_url(deployment["EXTRACTION_DATABASE_URL"])
    try:

        def slow_file_extracting() -> str | None:
            jobs = repository.jobs_for(slow)
            return jobs[-1].dagster_run_id if jobs and jobs[-1].status == "running" else None

        run_id = wait_for(slow_file_extracting, "the slow file's extraction", daemon, log, interval_s=0.2)
        pid = run_worker_pid(dagster_instance, run_id)
        assert pid is not None
        worker = psutil.Process(pid)
        assert any("dagster" in " ".join(p.cmdline()) for p in worker.parents()), worker.cmdline()
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        assert repository.jobs_for(slow)[-1].status == "running"  # killed mid-extraction

        def failed_run() -> dg.DagsterRun | None:
            run = dagster_instance.get_run_by_id(run_id)
            return run if run.status == dg.DagsterRunStatus.FAILURE else None

        wait_for(failed_run, "the killed run to be marked failed", daemon, log, timeout_s=60, interval_s=0.5)
        detected_s = time.monotonic() - killed_at
        messages = " ".join(e.message or "" for e in dagster_instance.all_logs(run_id))
        assert "signal 9" in messages or "SIGKILL" in messages, messages[-2000:]

        def all_succeeded() -> bool:
            states = [(row.extraction_status or {}).get("status") for row in repository.list_files()]
            return states == ["succeeded"] * 3

        wait_for(all_succeeded, "the retried run to extract the files", daemon, log, timeout_s=180)
        # The retry is Dagster's run retry (run_retries in dagster.yaml), a child of the killed run.
        group = dagster_instance.get_run_group(run_id)
        assert group is not None
        retries = [run for run in group[1] if run.parent_run_id == run_id]
        assert len(retries) == 1 and retries[0].tags.get("dagster/retry_number") == "1"
        retried = retries[0]
        for name, file_id in ids.items():
            jobs = repository.jobs_for(file_id)
            # Exactly one successful extraction per file, none lost, none done twice.
            assert [j.status for j in jobs].count("succeeded") == 1, (name, jobs)
            assert repository.metadata_for(file_id) is not None
            assert repository.get_file(file_id).extraction_status["error"] is None
        slow_jobs = repository.jobs_for(slow)
        assert [(j.dagster_run_id, j.status) for j in slow_jobs] == [
            (run_id, "abandoned"),
            (retried.run_id, "succeeded"),
        ]
        assert repository.metadata_for(slow).metadata_["page_count"] == 4000
        assert daemon.poll() is None
        print(
            f"killed run worker {pid}; failure detected after {detected_s:.1f} s; retried by {retried.run_id}"
        )
    finally:
        repository.dispose()
        stop_daemon(daemon)


def test_a_crashed_run_that_dagster_will_retry_leaves_its_files_to_the_retried_run(
    app: App, instance: dg.DagsterInstance, caplog: pytest.LogCaptureFixture
) -> None:
    """The alert sensor must not fail (nor announce) the files of a run that run_retries will re-execute."""
    file_id = app.upload("a.pdf", make_pdf())
    defs = build_definitions(app.settings(), app.resource())
    run = instance.create_run_for_job(
        defs.resolve_job_def(JOB_NAME), tags={"dagster/partition": str(file_id)}
    )
    app.repository.queue_files([file_id])
    app.repository.set_status(file_id, "running", run_id=run.run_id)  # its run worker died mid-run
    instance.report_run_failed(run)
    event = next(
        e.dagster_event
        for e in instance.all_logs(run.run_id)
        if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_FAILURE"
    )

    def evaluate(will_retry: str) -> None:
        instance.add_run_tags(run.run_id, {"dagster/will_retry": will_retry})
        with dg.build_run_status_sensor_context(
            sensor_name="extraction_failure_alerts",
            dagster_event=event,
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(run.run_id),
            resources={"extraction": app.resource()},
        ) as context:
            extraction_failure_alerts(context.for_run_failure())

    with caplog.at_level(logging.WARNING, logger="extraction_pipeline.notify"):
        evaluate("true")
        assert app.status(file_id)["status"] == "running" and "extraction alert" not in caplog.text
        evaluate("false")  # the last retry failed too: now the file fails and is announced
    status = app.status(file_id)
    assert status["status"] == "failed" and status["error"]["code"] == "crashed"
    assert "extraction alert" in caplog.text
