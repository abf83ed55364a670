"""The whole real-world corpus through the real thing, nothing clicked.

PostgreSQL for the app and for the Dagster instance, `dagster-daemon run -w workspace.yaml`, every
file of ../shared/corpus uploaded through the CLI: each must reach the state expected.json gives,
permanent failures after one attempt, no file extracted twice, the metadata as expected.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline_tests.corpus import CORPUS_DIR, corpus_entries, mismatches
from extraction_pipeline_tests.e2e.conftest import cli, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_every_corpus_file_reaches_its_expected_state(
    deployment: dict[str, str], daemon: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    entries = corpus_entries()
    if not entries:
        pytest.skip(f"no corpus at {CORPUS_DIR}")
    by_name = {Path(entry["file"]).name: entry for entry in entries}
    assert len(by_name) == len(entries)  # file names are unique across the corpus folders
    assert cli(deployment, "db", "upgrade").returncode == 0
    folders = sorted({str(CORPUS_DIR / Path(entry["file"]).parent) for entry in entries})
    upload = cli(deployment, "upload", *folders, "--json")
    assert upload.returncode == 0, upload.stderr
    uploaded = {item["filename"]: item["id"] for item in json.loads(upload.stdout)}
    assert set(uploaded) == set(by_name)

    repository = CloudFileRepository.from_url(deployment["EXTRACTION_DATABASE_URL"])

    def finished() -> dict[int, dict[str, Any]] | None:
        states = {row.id: row.extraction_status or {} for row in repository.list_files()}
        done = all(s.get("status") in ("succeeded", "failed") for s in states.values())
        return states if done else None

    try:
        states = wait_for(finished, "every corpus file to finish", daemon, tmp_path / "daemon.log", 360)
        for name, file_id in uploaded.items():
            entry, state = by_name[name], states[file_id]
            jobs = [(job.attempt, job.status) for job in repository.jobs_for(file_id)]
            if entry["status"] != "either":
                assert state["status"] == entry["status"], (name, state)
            assert state["format"] == entry["format"], (name, state)
            if state["status"] == "failed":
                assert state["error"]["kind"] == "permanent", (name, state)
                assert jobs == [(1, "failed")], (name, jobs)  # a permanent failure: one attempt
                if "error_code" in entry:
                    assert state["error"]["code"] == entry["error_code"], (name, state)
            else:
                assert jobs == [(1, "succeeded")], (name, jobs)  # extracted exactly once
                stored = repository.metadata_for(file_id)
                assert stored is not None and stored.format == entry["format"]
                assert stored.variant == entry["variant"]
                assert mismatches(stored.metadata_, entry.get("expect", {})) == {}, name
        assert daemon.poll() is None
    finally:
        repository.dispose()
