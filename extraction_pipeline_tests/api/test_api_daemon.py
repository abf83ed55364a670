"""End to end over HTTP: a corpus PDF uploaded through the API reaches ``succeeded`` under a real
``dagster-daemon run`` (PostgreSQL for the app and the instance), its metadata is served, and a
delete through the API removes the file, its blob and its partition."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from extraction_pipeline_tests.api.conftest import TOKEN, running_server
from extraction_pipeline_tests.conftest import run_cli
from extraction_pipeline_tests.corpus import CORPUS_DIR, corpus_entries, mismatches
from extraction_pipeline_tests.e2e.conftest import (
    DAGSTER_DAEMON,
    REPO_ROOT,
    daemon_running,
    fresh_deployment,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CORPUS_FILE = "pdf/testPDF.pdf"


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, str]]:
    with fresh_deployment(tmp_path, "ep_api_e2e") as env:
        env["EXTRACTION_API_TOKEN"] = TOKEN
        assert run_cli(env, "db", "upgrade", cwd=REPO_ROOT).returncode == 0
        yield env


@pytest.fixture
def dagster_daemon(deployment: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with daemon_running(deployment, tmp_path / "daemon.log", DAGSTER_DAEMON) as process:
        yield process


def test_an_upload_through_the_api_is_extracted_served_and_deleted(
    deployment: dict[str, str],
    dagster_daemon: subprocess.Popen[bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entry = next((e for e in corpus_entries() if e["file"] == CORPUS_FILE), None)
    if entry is None:
        pytest.skip(f"no {CORPUS_FILE} in the corpus at {CORPUS_DIR}")
    with running_server(deployment, tmp_path / "serve.log") as server:
        with (CORPUS_DIR / CORPUS_FILE).open("rb") as source:
            response = server.client.post(
                "/v1/files", files={"file": ("testPDF.pdf", source, "application/pdf")}
            )
        assert response.status_code == 201, response.text
        file_id = response.json()["id"]

        deadline = time.monotonic() + 180
        while True:
            document = server.client.get(f"/v1/files/{file_id}").json()
            if document["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
                break
            if dagster_daemon.poll() is not None:
                pytest.fail(f"the daemon exited:\n{(tmp_path / 'daemon.log').read_text()[-3000:]}")
            time.sleep(0.5)
        assert document["status"] == "succeeded", (document, (tmp_path / "daemon.log").read_text()[-3000:])
        metadata = document["metadata"]
        assert metadata["format"] == "pdf"
        assert metadata["values"]["page_count"] == 1
        assert metadata["values"]["title"] == "Apache Tika - Apache Tika"
        assert mismatches(metadata["values"], entry["expect"]) == {}
        assert [job["status"] for job in document["jobs"]] == ["succeeded"]
        listed = server.client.get("/v1/files", params={"status": "succeeded", "format": "pdf"}).json()
        assert [item["id"] for item in listed["items"]] == [file_id]

        conflict = server.client.post(f"/v1/files/{file_id}/cancel")
        assert conflict.status_code == 409, conflict.text
        assert conflict.json()["error"]["message"] == f"file {file_id} is succeeded: nothing to cancel"

        monkeypatch.setenv("DAGSTER_POSTGRES_URL", deployment["DAGSTER_POSTGRES_URL"])
        instance = dg.DagsterInstance.from_config(deployment["DAGSTER_HOME"])
        try:
            assert instance.has_dynamic_partition("cloud_files", str(file_id))
            assert server.client.delete(f"/v1/files/{file_id}").status_code == 204
            assert not instance.has_dynamic_partition("cloud_files", str(file_id))
        finally:
            instance.dispose()
        assert server.client.get(f"/v1/files/{file_id}").status_code == 404
        assert server.blob_files() == []
