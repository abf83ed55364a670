"""The whole real-world corpus through the real thing, deployed exactly as the README says.

The README's Production section: PostgreSQL for the app and for the Dagster instance given as plain
``postgresql://`` URLs, the committed dagster.yaml in DAGSTER_HOME, plain ``dagster-daemon run -w
workspace.yaml`` (INTERFACE.md's production start). Every file of ../shared/corpus uploaded through
the CLI must reach the state expected.json gives, permanent failures after one attempt, no file
extracted twice, the metadata as expected, every string of expected-text.json must find its
file with ``search``, and ``thumbnail`` gives a preview of each format.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline_tests.corpus import CORPUS_DIR, corpus_entries, mismatches
from extraction_pipeline_tests.e2e.conftest import (
    cli,
    fresh_deployment,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def expected_texts() -> list[dict[str, Any]]:
    manifest = CORPUS_DIR / "expected-text.json"
    return json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else []


def plain(url: str) -> str:
    """The URL as the README writes it: ``postgresql://``, no driver named."""
    assert url.startswith("postgresql+psycopg2://"), url
    return "postgresql://" + url[len("postgresql+psycopg2://") :]


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, str]]:
    with fresh_deployment(tmp_path, "ep_readme") as env:
        env["EXTRACTION_DATABASE_URL"] = plain(env["EXTRACTION_DATABASE_URL"])
        env["DAGSTER_POSTGRES_URL"] = plain(env["DAGSTER_POSTGRES_URL"])
        yield env


def test_every_corpus_file_reaches_its_expected_state(
    deployment: dict[str, str],
    dagster_daemon: subprocess.Popen[bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    daemon = dagster_daemon
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
        # A preview of each format: stored with the metadata (an upload's run), or made on this first
        # request (the corpus arrives at once: a burst, extracted by a backfill's runs).
        for fmt in ("pdf", "dxf", "dwg", "ifc", "step"):
            candidates = [
                file_id
                for name, file_id in sorted(uploaded.items())
                if by_name[name]["format"] == fmt
                and (stored := repository.metadata_for(file_id)) is not None
                and not any(w.startswith("no preview: ") for w in stored.warnings)
                and not (fmt == "dwg" and (CORPUS_DIR / by_name[name]["file"]).read_bytes()[:6] == b"AC1009")
                and not (fmt == "ifc" and not stored.metadata_.get("element_counts"))
                and not (fmt == "dxf" and not any((stored.metadata_.get("entity_counts") or {}).values()))
            ]
            picture = tmp_path / f"preview-{fmt}.png"
            written = cli(deployment, "thumbnail", str(candidates[0]), "-o", str(picture))
            assert written.returncode == 0, (fmt, written.stderr)
            assert picture.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
            assert repository.metadata_for(candidates[0]).preview_uri is not None  # type: ignore[union-attr]
        # What is written on the files is searchable: each string of expected-text.json finds its
        # file (a phrase search); one through the CLI as a user types it.
        texts = expected_texts()
        for text_entry in texts:
            file_id = uploaded[Path(text_entry["file"]).name]
            for phrase in text_entry["contains"]:
                quoted = '"' + phrase.replace('"', " ") + '"'
                found = [hit.id for hit in repository.search(quoted, limit=1000)]
                assert file_id in found, (text_entry["file"], phrase, found)
        if texts:
            first = texts[0]
            searched = cli(deployment, "search", f'"{first["contains"][0]}"', "--json")
            assert searched.returncode == 0, searched.stderr
            hits = json.loads(searched.stdout)
            assert uploaded[Path(first["file"]).name] in [hit["id"] for hit in hits]
            assert set(hits[0]) == {"id", "filename", "format", "rank", "snippet"}
        assert daemon.poll() is None
        # Every run the sensor created was launched: with dagster-postgres on psycopg 3 (what a plain
        # URL means to SQLAlchemy 2.1) they stayed NOT_STARTED and the files `queued` for ever.
        monkeypatch.setenv("DAGSTER_POSTGRES_URL", deployment["DAGSTER_POSTGRES_URL"])
        instance = dg.DagsterInstance.from_config(deployment["DAGSTER_HOME"])
        try:
            statuses = [run.status for run in instance.get_runs()]
        finally:
            instance.dispose()
        assert statuses and dg.DagsterRunStatus.NOT_STARTED not in statuses, statuses
    finally:
        repository.dispose()
