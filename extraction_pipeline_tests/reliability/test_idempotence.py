"""Idempotence: re-running a partition updates its rows in place; ``extraction_jobs`` keeps the history.

Re-runs tried: a second ``dg.materialize`` (SQLite and PostgreSQL), and with the real daemon the
``retry`` command after a failure and a partition ``backfill`` of finished files.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import dagster as dg
import pytest
import sqlalchemy as sa

from extraction_pipeline.orchestration.assets import ASSET_KEY
from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline_tests.e2e.conftest import cli, fresh_deployment, start_daemon, stop_daemon, wait_for
from extraction_pipeline_tests.orchestration import conftest as orchestration
from extraction_pipeline_tests.orchestration.conftest import App, make_pdf, run

# The orchestration tests' fixtures: migrated SQLite / PostgreSQL app databases, a Dagster instance.
app = orchestration.app
pg_app = orchestration.pg_app
any_app = orchestration.any_app
instance = orchestration.instance


def row_counts(repository: CloudFileRepository) -> dict[str, int]:
    with repository.engine.connect() as conn:
        return {
            name: conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one()
            for name in ("cloud_files", "cloud_file_metadata", "extraction_jobs")
        }


def extracted_at(repository: CloudFileRepository, file_id: int) -> datetime:
    stored = repository.metadata_for(file_id)
    assert stored is not None
    return stored.extracted_at


def test_a_second_materialization_updates_rows_in_place_and_keeps_the_attempts(
    any_app: App, instance: dg.DagsterInstance
) -> None:
    first = any_app.upload("first.pdf", make_pdf(pages=1))
    second = any_app.upload("second.pdf", make_pdf(pages=2))
    batch = run(any_app, instance, [first, second])
    assert batch.success
    before = row_counts(any_app.repository)
    assert before == {"cloud_files": 2, "cloud_file_metadata": 2, "extraction_jobs": 2}
    first_at, second_at = extracted_at(any_app.repository, first), extracted_at(any_app.repository, second)

    again = run(any_app, instance, [first])  # the same partition, once more
    assert again.success
    after = row_counts(any_app.repository)
    assert after == {"cloud_files": 2, "cloud_file_metadata": 2, "extraction_jobs": 3}
    assert extracted_at(any_app.repository, first) > first_at  # replaced in place ...
    assert extracted_at(any_app.repository, second) == second_at  # ... and only that partition
    assert any_app.repository.metadata_for(first).metadata_["page_count"] == 1
    jobs = any_app.repository.jobs_for(first)
    assert [(j.status, j.dagster_run_id) for j in jobs] == [
        ("succeeded", batch.run_id),
        ("succeeded", again.run_id),
    ]
    status = any_app.status(first)
    assert status["status"] == "succeeded" and status["job_id"] == jobs[-1].id
    assert status["run_id"] == again.run_id and status["attempts"] == 1
    # Dagster shows both materializations of the partition, one per run.
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=ASSET_KEY, asset_partitions=[str(first)]), limit=10
    ).records
    assert sorted(r.run_id for r in records) == sorted([batch.run_id, again.run_id])


# --------------------------------------------------------------------------------------------
# retry and backfill, through the CLI and a real dagster-daemon on PostgreSQL
# --------------------------------------------------------------------------------------------


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, str]]:
    with fresh_deployment(tmp_path, "ep_idem") as env:
        yield env


@pytest.mark.slow
@pytest.mark.postgres
def test_retry_command_and_backfill_update_rows_in_place_under_the_daemon(
    deployment: dict[str, str], tmp_path: Path
) -> None:
    assert cli(deployment, "db", "upgrade").returncode == 0
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "plan.pdf").write_bytes(make_pdf(pages=2))
    (folder / "lost.pdf").write_bytes(make_pdf(pages=3))
    upload = cli(deployment, "upload", str(folder), "--json")
    assert upload.returncode == 0, upload.stderr
    uploaded = {item["filename"]: item for item in json.loads(upload.stdout)}
    plan, lost = uploaded["plan.pdf"]["id"], uploaded["lost.pdf"]["id"]
    repository = CloudFileRepository.from_url(deployment["EXTRACTION_DATABASE_URL"])
    # A blob store outage for one file: its bytes are away until the operator retries.
    blob = Path(unquote(urlparse(repository.get_file(lost).storage_uri).path))
    parked = tmp_path / "parked.pdf"
    shutil.move(blob, parked)

    log = tmp_path / "daemon.log"
    daemon = start_daemon(deployment, log)
    try:

        def states() -> dict[int, str]:
            return {row.id: (row.extraction_status or {}).get("status") for row in repository.list_files()}

        wait_for(lambda: states() == {plan: "succeeded", lost: "failed"}, "the first runs", daemon, log)
        error = repository.get_file(lost).extraction_status["error"]
        assert error["code"] == "storage_unavailable"
        assert [j.status for j in repository.jobs_for(lost)] == ["retrying", "failed"]  # 1 + 1 retry
        assert row_counts(repository) == {"cloud_files": 2, "cloud_file_metadata": 1, "extraction_jobs": 3}

        # The outage is over: `retry --failed` queues the file again and the sensor starts a new run.
        shutil.move(parked, blob)
        retried = cli(deployment, "retry", "--failed", "--json")
        assert retried.returncode == 0, retried.stderr
        assert json.loads(retried.stdout)["requeued"] == [lost]
        wait_for(lambda: states() == {plan: "succeeded", lost: "succeeded"}, "the retried file", daemon, log)
        jobs = repository.jobs_for(lost)  # the failed attempts stay, the new one is added
        assert [(j.error_code, j.status) for j in jobs][1:] == [
            ("storage_unavailable", "failed"),
            (None, "succeeded"),
        ]
        assert jobs[0].error_code == "storage_unavailable"
        assert repository.metadata_for(lost).metadata_["page_count"] == 3
        counts = row_counts(repository)
        assert counts == {"cloud_files": 2, "cloud_file_metadata": 2, "extraction_jobs": 4}
        before = {file_id: extracted_at(repository, file_id) for file_id in (plan, lost)}

        # A backfill of both finished files: re-extracted, rows replaced, one more job row each.
        launched = cli(deployment, "backfill", "--all", "--json")
        assert launched.returncode == 0, launched.stderr
        assert json.loads(launched.stdout)["files"] == 2

        def backfilled() -> bool:
            return all(
                [j.status for j in repository.jobs_for(i)][-1:] == ["succeeded"] for i in (plan, lost)
            ) and (len(repository.jobs_for(plan)) == 2 and len(repository.jobs_for(lost)) == 4)

        wait_for(backfilled, "the backfill", daemon, log)
        assert states() == {plan: "succeeded", lost: "succeeded"}
        assert row_counts(repository) == {"cloud_files": 2, "cloud_file_metadata": 2, "extraction_jobs": 6}
        for file_id in (plan, lost):
            assert extracted_at(repository, file_id) > before[file_id]
            assert (
                repository.get_file(file_id).extraction_status["job_id"]
                == repository.jobs_for(file_id)[-1].id
            )
        assert [j.status for j in repository.jobs_for(plan)] == ["succeeded", "succeeded"]
        assert len({j.dagster_run_id for j in repository.jobs_for(plan)}) == 2  # two runs, one history
        assert daemon.poll() is None
    finally:
        repository.dispose()
        stop_daemon(daemon)
