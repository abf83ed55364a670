"""End to end: a row the host application deletes with plain SQL loses its partition, metadata and
blob to the housekeeping sensor of a real ``dagster-daemon run`` (PostgreSQL app and instance, the
committed ``dagster.yaml`` with its retention settings), while a blob younger than the grace period
(an upload whose row is not committed yet) stays."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from extraction_pipeline.persistence.blobs import FileBlobStore, blob_store_from_url
from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline_tests.e2e.conftest import (
    cli,
    fresh_deployment,
    wait_for,
)
from extraction_pipeline_tests.orchestration.conftest import make_pdf

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, str]]:
    with fresh_deployment(tmp_path, "ep_housekeeping") as env:
        env["EXTRACTION_HOUSEKEEPING_INTERVAL_S"] = "1"  # every daemon wake-up (5 s)
        assert cli(env, "db", "upgrade").returncode == 0
        yield env


def test_a_row_deleted_with_plain_sql_loses_its_partition_metadata_and_blob(
    deployment: dict[str, str],
    dagster_daemon: subprocess.Popen[bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = tmp_path / "daemon.log"
    source = tmp_path / "plan.pdf"
    source.write_bytes(make_pdf(pages=2))
    upload = cli(deployment, "upload", str(source), "--json")
    assert upload.returncode == 0, upload.stderr
    file_id = json.loads(upload.stdout)[0]["id"]

    repository = CloudFileRepository.from_url(deployment["EXTRACTION_DATABASE_URL"])
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", deployment["DAGSTER_POSTGRES_URL"])
    instance = dg.DagsterInstance.from_config(deployment["DAGSTER_HOME"])
    try:

        def succeeded() -> bool:
            row = repository.get_file(file_id)
            return row is not None and (row.extraction_status or {}).get("status") == "succeeded"

        wait_for(succeeded, f"file {file_id} to succeed", dagster_daemon, log, timeout_s=60)
        row = repository.get_file(file_id)
        assert row is not None and repository.metadata_for(file_id) is not None
        assert instance.has_dynamic_partition("cloud_files", str(file_id))
        store = blob_store_from_url(deployment["EXTRACTION_STORAGE_URL"])
        assert isinstance(store, FileBlobStore)
        blob = store.path_of(row.storage_uri)
        # Uploaded an hour ago, as far as the grace period can tell; and an upload in flight (its
        # blob written a moment ago, its row not inserted yet) that must survive.
        os.utime(blob, (time.time() - 3600, time.time() - 3600))
        in_flight = store.path_of(store.put(io.BytesIO(b"an upload whose row is on its way")).uri)

        engine = sa.create_engine(deployment["EXTRACTION_DATABASE_URL"])
        with engine.begin() as connection:  # the host application, in its own connection
            connection.execute(sa.text("DELETE FROM cloud_files WHERE id = :id"), {"id": file_id})
        engine.dispose()
        deleted_at = time.monotonic()

        def cleaned() -> bool:
            return not blob.exists() and not instance.has_dynamic_partition("cloud_files", str(file_id))

        wait_for(
            cleaned,
            "the housekeeping to remove the partition and the blob",
            dagster_daemon,
            log,
            timeout_s=45,
        )
        assert time.monotonic() - deleted_at < 60
        assert repository.metadata_for(file_id) is None and repository.jobs_for(file_id) == []
        assert in_flight.is_file()
        # The ticks say what they did (their skip reason: the UI's tick history, the daemon's log);
        # the partition may go a tick after the blob, once the file's run has ended.
        said = [
            line for line in log.read_text().splitlines() if "housekeeping_sensor skipped: removed" in line
        ]
        assert any("1 partition(s)" in line for line in said) and any("1 blob(s)" in line for line in said)
    finally:
        instance.dispose()
        repository.dispose()
