"""``delete`` as an operator runs it, on SQLite and PostgreSQL: a file extracted by a real run goes
with its attempts, metadata, blob and dynamic partition; unknown ids are reported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from extraction_pipeline.cli import cli
from extraction_pipeline.persistence.blobs import FileBlobStore
from extraction_pipeline_tests.orchestration.conftest import App, make_pdf, run


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def file_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance in DAGSTER_HOME (its default local storage), as `delete` finds it."""
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = dg.DagsterInstance.from_config(str(home))
    yield instance
    instance.dispose()


def blob_path(app: App, file_id: int) -> Path:
    row = app.repository.get_file(file_id)
    assert row is not None
    return FileBlobStore(Path(app.storage_url.removeprefix("file://"))).path_of(row.storage_uri)


def test_delete_removes_everything_of_an_extracted_file(
    cli_app: App, file_instance: dg.DagsterInstance
) -> None:
    extracted = cli_app.upload("plan.pdf", make_pdf(pages=2))
    kept = cli_app.upload("kept.pdf", make_pdf())
    assert run(cli_app, file_instance, [extracted]).success
    blob = blob_path(cli_app, extracted)
    assert blob.is_file() and cli_app.repository.metadata_for(extracted) is not None
    assert cli_app.repository.jobs_for(extracted)
    assert file_instance.has_dynamic_partition("cloud_files", str(extracted))

    code, out, err = invoke("delete", str(extracted), "--json")
    assert code == 0, err
    assert json.loads(out) == {
        "deleted": [extracted],
        "not_found": [],
        "terminated_runs": [],
        "leftovers": [],
    }
    assert cli_app.repository.get_file(extracted) is None
    assert cli_app.repository.jobs_for(extracted) == []
    assert cli_app.repository.metadata_for(extracted) is None
    assert not blob.exists()
    assert not file_instance.has_dynamic_partition("cloud_files", str(extracted))
    assert cli_app.repository.get_file(kept) is not None and blob_path(cli_app, kept).is_file()

    code, out, err = invoke("status", str(extracted))
    assert code == 2 and f"no file with id {extracted}" in err


def test_delete_reports_unknown_ids_and_cancels_a_running_file(cli_app: App) -> None:
    code, out, err = invoke("delete", "424242")
    assert code == 2 and out == ""
    assert err.strip() == "file 424242 does not exist: nothing to delete"

    running = cli_app.upload("busy.pdf", make_pdf())
    cli_app.repository.queue_files([running])
    job = cli_app.repository.start_attempt(
        running, run_id="run-busy", attempt=1, max_attempts=1, format="pdf"
    )
    assert job is not None
    code, out, err = invoke("delete", str(running), "424242")
    assert code == 0, err
    assert out.strip() == f"deleted 1 file: {running}"
    assert "file 424242 does not exist" in err
    assert cli_app.repository.get_file(running) is None
    # The run that was extracting it finds its attempt gone and writes nothing back.
    cli_app.repository.finish_attempt(job, "succeeded", file_status="succeeded")
    assert cli_app.repository.get_file(running) is None and cli_app.repository.jobs_for(running) == []
