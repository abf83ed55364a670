"""The use cases below the CLI and the HTTP API, called in process (the front doors' own tests run
them through a subprocess and over HTTP): which Dagster instance, retry rules, cancel, pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline.persistence.state import FileStatus
from extraction_pipeline.service.documents import list_page
from extraction_pipeline.service.errors import NoDagsterInstance
from extraction_pipeline.service.instance import find_dagster_home, open_instance
from extraction_pipeline.service.operations import cancel_files, retry_files
from extraction_pipeline.settings import Settings
from extraction_pipeline_tests.conftest import add_file_row


def failed(repository: CloudFileRepository, name: str, code: str) -> int:
    file_id = add_file_row(repository, name)
    error = {"kind": "permanent", "code": code, "message": f"{code} for the test"}
    assert repository.set_status(file_id, FileStatus.FAILED, error=error, format="pdf")
    return file_id


def test_the_dagster_instance_is_dagster_home_else_the_quick_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.from_env({"EXTRACTION_HOME": str(tmp_path / "home")})
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert find_dagster_home(settings) is None
    assert open_instance(settings, required=False) is None
    with pytest.raises(NoDagsterInstance, match="set DAGSTER_HOME"):
        open_instance(settings, required=True)

    quickstart = tmp_path / "home" / "dagster"
    quickstart.mkdir(parents=True)
    (quickstart / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    assert find_dagster_home(settings) == quickstart.resolve()

    own = tmp_path / "own"
    own.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(own))
    assert find_dagster_home(settings) == own.resolve()  # DAGSTER_HOME wins

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "missing"))
    with pytest.raises(NoDagsterInstance, match="is not a folder"):
        find_dagster_home(settings)
    assert open_instance(settings, required=False) is None  # cancel and delete go on without one
    with pytest.raises(NoDagsterInstance, match="is not a folder"):
        open_instance(settings, required=True)


def test_retry_takes_what_may_pass_now_and_says_why_it_leaves_the_rest(
    repository: CloudFileRepository,
) -> None:
    corrupt = failed(repository, "broken.pdf", "corrupt")
    install = failed(repository, "plan.pdf", "extractor_error")
    pending = add_file_row(repository, "new.pdf")

    outcome = retry_files(repository, [pending, 999_999], all_failed=True)
    assert outcome.requeued == [install]
    assert outcome.not_found == [999_999]
    assert outcome.file_faults == {"corrupt": [corrupt]}
    assert "the file itself is at fault" in outcome.reasons[corrupt]
    assert outcome.reasons[pending].startswith("pending")
    assert repository.get_file(install).state is None  # pending again: the sensor queues it

    forced = retry_files(repository, all_failed=True, force=True)
    assert forced.requeued == [corrupt]
    row = repository.get_file(corrupt)
    assert row is not None and row.state is None and row.extraction_force is True


def test_cancel_without_an_instance_cancels_what_is_not_finished(repository: CloudFileRepository) -> None:
    pending = add_file_row(repository, "a.pdf")
    done = failed(repository, "b.pdf", "corrupt")
    outcome = cancel_files(repository, None, [pending, done, 424_242], by="a test")
    assert outcome.cancelled == [pending]
    assert outcome.finished == {done: FileStatus.FAILED}
    assert outcome.not_found == [424_242]
    assert outcome.not_cancelled == [done, 424_242] and outcome.terminated_runs == []
    row = repository.get_file(pending)
    assert row is not None and row.state is not None and row.state.status == FileStatus.CANCELLED


def test_pages_follow_the_file_id_and_end_with_no_cursor(repository: CloudFileRepository) -> None:
    ids = [add_file_row(repository, f"f{n}.pdf") for n in range(5)]
    seen: list[int] = []
    cursor = None
    for _ in range(4):
        items, cursor = list_page(repository, limit=2, after_id=cursor)
        seen.extend(item["id"] for item in items)
        if cursor is None:
            break
    assert seen == ids and cursor is None
