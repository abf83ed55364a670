"""``retry`` and ``cancel`` as an operator runs them, on SQLite and PostgreSQL (no mocks).

File states are written through the repository the pipeline itself uses (attempt rows with error
codes), or by real in-process runs of the asset where the test needs an extraction to happen.
"""

from __future__ import annotations

import json

import dagster as dg
from click.testing import CliRunner

from extraction_pipeline.cli import cli
from extraction_pipeline.persistence.repository import NewFile
from extraction_pipeline_tests.orchestration.conftest import App, make_pdf, run

FILE_FAULTS = ("corrupt", "encrypted", "too_large", "unsupported_format")
WORTH_RETRYING = (
    "extractor_error",
    "timeout",
    "out_of_memory",
    "crashed",
    "storage_unavailable",
    "database_unavailable",
)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def add_row(app: App, name: str) -> int:
    row = app.repository.add_file(
        NewFile(filename=name, size_bytes=1, sha256="0" * 64, storage_uri="file:///nowhere")
    )
    return row.id


def failed_with(app: App, code: str) -> int:
    """A file whose one attempt failed with ``code``, recorded as the pipeline records it."""
    file_id = add_row(app, f"{code}.pdf")
    app.repository.queue_files([file_id])
    job = app.repository.start_attempt(
        file_id, run_id=f"run-{file_id}", attempt=1, max_attempts=4, format="pdf"
    )
    assert job is not None
    kind = "permanent" if code in FILE_FAULTS or code == "extractor_error" else "transient"
    error = {"kind": kind, "code": code, "message": f"it failed: {code}"}
    app.repository.finish_attempt(job, "failed", error=error, file_status="failed")
    return file_id


def state(app: App, file_id: int) -> str | None:
    row = app.repository.get_file(file_id)
    assert row is not None
    return (row.extraction_status or {}).get("status")


def test_retry_failed_skips_files_at_fault_and_force_requeues_them(cli_app: App) -> None:
    faulty = {code: failed_with(cli_app, code) for code in FILE_FAULTS}
    retryable = {code: failed_with(cli_app, code) for code in WORTH_RETRYING}

    code, out, err = invoke("retry", "--failed")
    assert code == 0, err
    expected = sorted(retryable.values())
    assert out.strip() == f"requeued {len(expected)} files: {', '.join(map(str, expected))}"
    ids = ", ".join(str(faulty[c]) for c in sorted(faulty, key=faulty.__getitem__))
    assert err.strip() == (
        "skipped 4 failed files that can only fail again, the file itself is at fault "
        f"(1 corrupt, 1 encrypted, 1 too_large, 1 unsupported_format): {ids}; --force queues them too"
    )
    assert all(state(cli_app, file_id) is None for file_id in retryable.values())  # pending again
    assert all(state(cli_app, file_id) == "failed" for file_id in faulty.values())

    code, out, err = invoke("retry", "--failed", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert {"requeued", "skipped", "not_found"} <= set(document)  # today's keys stay
    assert document["requeued"] == [] and document["not_found"] == []
    assert document["skipped"] == sorted(faulty.values())
    assert document["skipped_file_errors"] == {c: [faulty[c]] for c in sorted(FILE_FAULTS)}
    assert "the file itself is at fault" in document["skipped_reasons"][str(faulty["corrupt"])]

    code, out, err = invoke("retry", "--failed", "--force", "--json")
    assert code == 0, err
    assert json.loads(out)["requeued"] == sorted(faulty.values())
    assert all(state(cli_app, file_id) is None for file_id in faulty.values())


def test_retry_of_a_file_given_by_id_requeues_it_whatever_its_error(cli_app: App) -> None:
    corrupt = failed_with(cli_app, "corrupt")
    code, out, _ = invoke("retry", str(corrupt), "--json")
    assert code == 0 and json.loads(out)["requeued"] == [corrupt]


def test_retry_force_re_extracts_a_succeeded_file(cli_app: App, instance: dg.DagsterInstance) -> None:
    file_id = cli_app.upload("plan.pdf", make_pdf(pages=2))
    assert run(cli_app, instance, [file_id]).success
    assert state(cli_app, file_id) == "succeeded"

    code, out, err = invoke("retry", str(file_id))
    assert code == 0
    assert out.strip() == "requeued 0 files"
    assert err.strip() == f"skipped file {file_id}: succeeded: --force re-extracts it"
    assert state(cli_app, file_id) == "succeeded"

    code, out, err = invoke("retry", str(file_id), "--force", "--json")
    assert code == 0, err
    assert json.loads(out)["requeued"] == [file_id]
    assert state(cli_app, file_id) is None  # pending: the sensor queues it again
    assert run(cli_app, instance, [file_id]).success
    assert [job.status for job in cli_app.repository.jobs_for(file_id)] == ["succeeded", "succeeded"]
    assert state(cli_app, file_id) == "succeeded"

    queued = add_row(cli_app, "busy.pdf")
    cli_app.repository.queue_files([queued])
    code, out, err = invoke("retry", str(queued), "--force")
    assert code == 0 and f"skipped file {queued}: queued: already on its way" in err
    assert state(cli_app, queued) == "queued"  # never queued twice


def test_cancel_says_when_there_is_nothing_to_cancel(cli_app: App) -> None:
    done = add_row(cli_app, "done.pdf")
    cli_app.repository.queue_files([done])
    cli_app.repository.set_status(done, "succeeded")
    pending = add_row(cli_app, "pending.pdf")

    code, out, err = invoke("cancel", str(done))
    assert code == 1
    assert out == ""
    assert err.strip() == f"file {done} is succeeded: nothing to cancel"

    code, out, err = invoke("cancel", "424242")
    assert code == 2
    assert err.strip() == "file 424242 does not exist: nothing to cancel"

    code, out, err = invoke("cancel", str(done), "424242", "--json")
    assert code == 1
    document = json.loads(out)
    assert document == {
        "cancelled": [],
        "terminated_runs": [],
        "not_cancelled": [done, 424242],
        "not_found": [424242],
        "finished": {str(done): "succeeded"},
    }

    code, out, err = invoke("cancel", str(pending), str(done))
    assert code == 0  # one was cancelled
    assert out.strip() == f"cancelled 1 file: {pending}"
    assert f"file {done} is succeeded: nothing to cancel" in err
    assert "runs were not terminated" in err  # no Dagster instance here, and it says so
    assert state(cli_app, pending) == "cancelled"

    code, out, err = invoke("cancel", str(pending))
    assert code == 1 and err.strip() == f"file {pending} is cancelled: nothing to cancel"
