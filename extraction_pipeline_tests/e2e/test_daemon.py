"""End to end with the real thing: a dagster-daemon on a PostgreSQL instance, uploads through the CLI.

Nothing is clicked: the sensor (on by default) must pick the uploads up, the runs extract and
materialize them into the PostgreSQL app database, a bad file fails after one attempt, no file is
extracted twice; then `extraction-pipeline backfill` launches a partition backfill that the
daemon runs in batches.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline_tests.e2e.conftest import cli, wait_for
from extraction_pipeline_tests.orchestration.conftest import make_pdf

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def launch(deployment: dict[str, str], *selection: str) -> dict:
    launched = cli(deployment, "backfill", *selection, "--json")
    assert launched.returncode == 0, launched.stderr
    document = json.loads(launched.stdout)
    assert document["backfill_id"]
    return document


def backfill_runs(instance: Any, document: dict) -> list[Any]:
    import dagster as dg

    filters = dg.RunsFilter(tags={"dagster/backfill": document["backfill_id"]})
    return list(instance.get_run_records(filters=filters))


def test_uploads_are_extracted_by_the_daemon_and_a_backfill_reruns_them(
    deployment: dict[str, str], daemon: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    assert cli(deployment, "db", "upgrade").returncode == 0
    files = tmp_path / "upload"
    files.mkdir()
    for pages in (1, 2, 3):
        (files / f"plan {pages} <draft>.pdf").write_bytes(make_pdf(pages=pages))
    # A PDF header over garbage: a permanent failure (a file of no supported format would be skipped).
    (files / "notes.pdf").write_bytes(b"%PDF-1.4\n garbage that is not a pdf body\n" * 20)
    upload = cli(deployment, "upload", str(files), "--json")
    assert upload.returncode == 0, upload.stderr
    uploaded = {item["filename"]: item["id"] for item in json.loads(upload.stdout)}
    assert len(uploaded) == 4

    repository = CloudFileRepository.from_url(deployment["EXTRACTION_DATABASE_URL"])
    log = tmp_path / "daemon.log"

    def finished() -> dict[int, dict] | None:
        rows = repository.list_files()
        states = {row.id: row.extraction_status or {} for row in rows}
        if all(s.get("status") in ("succeeded", "failed") for s in states.values()):
            return states
        return None

    try:
        states = wait_for(finished, "every upload to finish", daemon, log)
        bad = uploaded.pop("notes.pdf")
        assert states[bad]["status"] == "failed" and states[bad]["error"]["code"] == "corrupt"
        assert [(j.attempt, j.status) for j in repository.jobs_for(bad)] == [(1, "failed")]
        for name, file_id in uploaded.items():
            assert states[file_id]["status"] == "succeeded", (name, states[file_id])
            jobs = repository.jobs_for(file_id)
            assert [j.status for j in jobs] == ["succeeded"], (name, jobs)  # extracted exactly once
            assert repository.metadata_for(file_id).metadata_["page_count"] == int(name.split()[1])
        # The alert sensor marks nothing else and the daemon is still alive.
        assert daemon.poll() is None

        import dagster as dg

        os.environ["DAGSTER_POSTGRES_URL"] = deployment["DAGSTER_POSTGRES_URL"]
        try:
            with dg.DagsterInstance.from_config(deployment["DAGSTER_HOME"]) as instance:
                # A backfill of the succeeded files: the daemon runs it as batched runs (3 per run).
                document = launch(deployment, "--status", "succeeded")
                assert document["files"] == 3
                wait_for(
                    lambda: backfill_runs(instance, document), "the backfill's run", daemon, log, 60, 0.2
                )
                # The backfill daemon has just iterated. Dagster's own daemon would look again in 30 s;
                # `extraction-pipeline daemon` looks every EXTRACTION_BACKFILL_POLL_S (2 s): a second
                # backfill (the failed file, tried again) gets its run within seconds.
                again = launch(deployment, "--status", "failed")
                assert again["files"] == 1
                runs = wait_for(
                    lambda: backfill_runs(instance, again), "the second backfill's run", daemon, log
                )
                created = instance.get_backfill(again["backfill_id"]).backfill_timestamp
                waited = runs[0].create_timestamp.timestamp() - created
                assert waited < 10, f"the backfill daemon picked the backfill up after {waited:.1f} s"

                def re_extracted() -> bool:
                    return all(
                        [j.status for j in repository.jobs_for(file_id)] == ["succeeded", "succeeded"]
                        for file_id in uploaded.values()
                    ) and [j.status for j in repository.jobs_for(bad)] == ["failed", "failed"]

                wait_for(re_extracted, "the backfills to re-extract the files", daemon, log)
                for file_id in uploaded.values():
                    assert repository.get_file(file_id).extraction_status["status"] == "succeeded"
                assert repository.get_file(bad).extraction_status["error"]["code"] == "corrupt"
                runs = {j.dagster_run_id for f in uploaded.values() for j in repository.jobs_for(f)[1:]}
                assert len(runs) == 1  # one batched run for the three partitions

                backfills = instance.get_backfills()
                assert {b.backfill_id for b in backfills} == {document["backfill_id"], again["backfill_id"]}
                materialized = instance.get_materialized_partitions(dg.AssetKey("cloud_file_metadata"))
                assert materialized == {str(i) for i in uploaded.values()}
        finally:
            del os.environ["DAGSTER_POSTGRES_URL"]
    finally:
        repository.dispose()


def test_cancel_terminates_the_run_of_a_hanging_file(
    deployment: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    deployment["EXTRACTION_FAULT_INJECTION"] = "1"  # the worker of "hang" files sleeps forever
    daemon = request.getfixturevalue("daemon")
    assert cli(deployment, "db", "upgrade").returncode == 0
    stuck = tmp_path / "stuck.pdf"
    stuck.write_bytes(b"EXTRACTION-FAULT:hang\n%PDF-1.7\n")  # a PDF to detection: extracted, not skipped
    upload = cli(deployment, "upload", str(stuck), "--json")
    assert upload.returncode == 0, upload.stderr
    file_id = json.loads(upload.stdout)[0]["id"]
    repository = CloudFileRepository.from_url(deployment["EXTRACTION_DATABASE_URL"])
    log = tmp_path / "daemon.log"
    try:

        def extracting() -> bool:
            jobs = repository.jobs_for(file_id)
            return bool(jobs) and jobs[-1].status == "running"

        wait_for(extracting, "the extraction to start", daemon, log)
        cancelled = cli(deployment, "cancel", str(file_id), "--json")
        assert cancelled.returncode == 0, cancelled.stderr
        document = json.loads(cancelled.stdout)
        assert document["cancelled"] == [file_id] and len(document["terminated_runs"]) == 1
        status = repository.get_file(file_id).extraction_status
        assert status["status"] == "cancelled"
        assert [j.status for j in repository.jobs_for(file_id)] == ["cancelled"]

        import dagster as dg

        os.environ["DAGSTER_POSTGRES_URL"] = deployment["DAGSTER_POSTGRES_URL"]
        try:
            with dg.DagsterInstance.from_config(deployment["DAGSTER_HOME"]) as instance:

                def run_cancelled() -> bool:
                    run = instance.get_run_by_id(document["terminated_runs"][0])
                    return run.status == dg.DagsterRunStatus.CANCELED

                wait_for(run_cancelled, "the run to be cancelled", daemon, log, timeout_s=90)
        finally:
            del os.environ["DAGSTER_POSTGRES_URL"]
        assert repository.get_file(file_id).extraction_status["status"] == "cancelled"
    finally:
        repository.dispose()
