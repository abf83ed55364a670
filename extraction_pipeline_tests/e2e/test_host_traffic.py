"""Real host traffic under a plain ``dagster-daemon run`` on PostgreSQL: uploads that are not CAD
end ``skipped`` (no failed run, so no alert), a second upload of a file that succeeded gets its
metadata copied (``deduplicated_from``), and a drawing named ``.bin`` is still extracted."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline.samples import write_dxf
from extraction_pipeline_tests.corpus import CORPUS_DIR
from extraction_pipeline_tests.e2e.conftest import (
    cli,
    fresh_deployment,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CORPUS_PDF = CORPUS_DIR / "pdf" / "testPDF.pdf"
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)
UNSUPPORTED = {
    "kind": "permanent",
    "code": "unsupported_format",
    "message": "the content is not PDF, DXF, DWG, IFC or STEP",
}
FINISHED = ("succeeded", "failed", "skipped", "cancelled")


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, str]]:
    with fresh_deployment(tmp_path, "ep_traffic") as env:
        assert cli(env, "db", "upgrade").returncode == 0
        yield env


def upload(deployment: dict[str, str], *paths: Path) -> dict[str, int]:
    done = cli(deployment, "upload", *map(str, paths), "--json")
    assert done.returncode == 0, done.stderr
    return {item["filename"]: item["id"] for item in json.loads(done.stdout)}


def test_other_files_are_skipped_duplicates_copied_and_a_bin_drawing_extracted(
    deployment: dict[str, str],
    dagster_daemon: subprocess.Popen[bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not CORPUS_PDF.is_file():
        pytest.skip(f"no {CORPUS_PDF.name} in the corpus at {CORPUS_DIR}")
    files = tmp_path / "files"
    files.mkdir()
    (files / "photo.png").write_bytes(PNG_HEAD)
    (files / "notes.txt").write_text("minutes of the site meeting\n" * 20)
    shutil.copy(CORPUS_PDF, files / "testPDF.pdf")
    write_dxf(files / "plan.dxf").rename(files / "plan.bin")
    ids = upload(deployment, *sorted(files.iterdir()))
    log = tmp_path / "daemon.log"
    repository = CloudFileRepository.from_url(deployment["EXTRACTION_DATABASE_URL"])

    def finished(wanted: list[int]) -> dict[int, dict[str, Any]] | None:
        states = {row.id: row.extraction_status or {} for row in repository.list_files(ids=wanted)}
        return states if all(s.get("status") in FINISHED for s in states.values()) else None

    try:
        states = wait_for(
            lambda: finished(list(ids.values())), "the uploads to finish", dagster_daemon, log, 90
        )
        for name in ("photo.png", "notes.txt"):
            state = states[ids[name]]
            assert state["status"] == "skipped" and state["error"] == UNSUPPORTED, (name, state)
            jobs = [(j.attempt, j.status) for j in repository.jobs_for(ids[name])]
            assert jobs == [(1, "skipped")], (name, jobs)  # one look, no retry
            assert repository.jobs_for(ids[name])[0].dagster_run_id is None  # settled by the sensor: no run
        source = ids["testPDF.pdf"]
        assert states[source]["status"] == "succeeded", states[source]
        drawing = states[ids["plan.bin"]]
        assert drawing["status"] == "succeeded" and drawing["format"] == "dxf", drawing  # content decides
        assert repository.metadata_for(ids["plan.bin"]).format == "dxf"

        # The same PDF again, once the first one succeeded: its metadata is copied.
        (tmp_path / "again").mkdir()
        copy_path = shutil.copy(CORPUS_PDF, tmp_path / "again" / "testPDF copy.pdf")
        copy = upload(deployment, Path(copy_path))["testPDF copy.pdf"]
        copied = wait_for(lambda: finished([copy]), "the copy to finish", dagster_daemon, log, 60)[copy]
        assert copied["status"] == "succeeded" and copied["deduplicated_from"] == source, copied
        [job] = repository.jobs_for(copy)
        assert job.status == "succeeded" and job.result["deduplicated_from"] == source
        assert job.dagster_run_id is None  # copied by the sensor, without a run
        original, duplicate = repository.metadata_for(source), repository.metadata_for(copy)
        assert duplicate.metadata_ == original.metadata_ and duplicate.metadata_["page_count"] == 1

        listed = cli(deployment, "list", "--status", "skipped", "--json")
        assert listed.returncode == 0, listed.stderr
        items = json.loads(listed.stdout)
        assert sorted(item["id"] for item in items) == sorted([ids["photo.png"], ids["notes.txt"]])
        assert all(item["status"] == "skipped" and item["error"] == UNSUPPORTED for item in items)

        # No failed run (so the alert sensor had nothing to announce).
        monkeypatch.setenv("DAGSTER_POSTGRES_URL", deployment["DAGSTER_POSTGRES_URL"])
        instance = dg.DagsterInstance.from_config(deployment["DAGSTER_HOME"])
        try:
            failed = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
            runs = instance.get_runs()
        finally:
            instance.dispose()
        assert failed == []
        assert runs and {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
        # Runs only for the files that were extracted: none for the photo, the notes or the copy.
        extracted = {str(ids["testPDF.pdf"]), str(ids["plan.bin"])}
        assert {run.tags.get("dagster/partition") for run in runs} == extracted
        assert dagster_daemon.poll() is None
    finally:
        repository.dispose()
