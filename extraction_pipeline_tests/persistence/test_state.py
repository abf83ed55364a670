"""The typed view of ``extraction_status``: every key the code writes, unknown keys kept as stored."""

from __future__ import annotations

from extraction_pipeline.persistence.repository import new_status
from extraction_pipeline.persistence.state import (
    STATUSES,
    ExtractionState,
    FileStatus,
    JobStatus,
    parse_state,
    status_of_document,
)


def test_the_enum_values_are_the_stored_strings() -> None:
    assert STATUSES == ("pending", "queued", "running", "succeeded", "failed", "cancelled", "skipped")
    assert {s.value for s in JobStatus} == {
        "running",
        "retrying",
        "extracted",
        "succeeded",
        "failed",
        "skipped",
        "cancelled",
        "abandoned",
    }
    assert FileStatus.FAILED == "failed" and f"{FileStatus.QUEUED}" == "queued"


def test_a_document_round_trips_unchanged_with_the_keys_the_pipeline_adds() -> None:
    document = {
        **new_status(FileStatus.QUEUED, run_key="cloud-file-7-0", generation=0, backfill=True),
        "error": {"kind": "transient", "code": "crashed", "message": "the run failed"},
        "previous_run_id": "abc",
        "from_the_host_app": {"any": ["thing"]},
    }
    state = parse_state(document)
    assert state is not None
    assert state.status == FileStatus.QUEUED and state.run_key == "cloud-file-7-0" and state.backfill is True
    assert state.error_code == "crashed" and state.error_document() == document["error"]
    assert state.document() == document and list(state.document()) == list(document)


def test_a_pending_file_has_no_state() -> None:
    assert parse_state(None) is None and parse_state({}) is None
    assert status_of_document(None) == "pending"
    assert ExtractionState().status == FileStatus.PENDING
