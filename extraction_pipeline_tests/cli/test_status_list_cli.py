"""``status`` and ``list`` as a person reads them, after real runs of the pipeline (SQLite and PostgreSQL).

Files go through the real asset in process (no worker processes, no mocks): a PDF that succeeds, one
that is corrupt (a permanent failure: one attempt) and one whose bytes are gone from the blob store
(a transient failure, retried once, then failed). What the user sees is asserted line by line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import dagster as dg
import pytest
from click.testing import CliRunner

from extraction_pipeline.cli import cli
from extraction_pipeline.cli.extraction import format_summary
from extraction_pipeline.cli.listing import file_table
from extraction_pipeline.persistence.repository import NewFile
from extraction_pipeline_tests.orchestration.conftest import App, make_pdf, run

WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def pdf_with_title_only() -> bytes:
    import pymupdf

    document = pymupdf.open()
    for number in range(3):
        document.new_page().insert_text((72, 72), f"page {number + 1}")
    document.set_metadata({"title": "Ground floor plan", "author": "", "subject": ""})
    data = document.tobytes()
    document.close()
    return data


def test_status_shows_metadata_values_errors_with_messages_and_final_attempts(
    cli_app: App, instance: dg.DagsterInstance
) -> None:
    good = cli_app.upload("plan.pdf", pdf_with_title_only())
    corrupt = cli_app.upload("broken.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 50)
    lost = cli_app.upload("lost.pdf", make_pdf(pages=1))
    blob = Path(unquote(urlparse(cli_app.repository.get_file(lost).storage_uri).path))
    blob.unlink()  # the blob store lost the bytes: storage_unavailable, a transient failure
    run(cli_app, instance, [good])
    run(cli_app, instance, [corrupt])
    run(cli_app, instance, [lost], settings=cli_app.settings(max_retries=1, retry_delay_s=0.01))

    # A succeeded file: its key values, nothing empty (the PDF has no author and no subject).
    code, out, err = invoke("status", str(good))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{good}  plan.pdf  succeeded (pdf)"
    assert re.fullmatch(rf"  attempt 1: succeeded, started {WHEN}, took \d+\.\d\d s", lines[1]), lines[1]
    assert re.fullmatch(r"  pdf metadata \(extractor [\w.]+, extracted .+ UTC\):", lines[2]), lines[2]
    values = [line.strip() for line in lines[3:] if line.startswith("    ")]
    assert "title: Ground floor plan" in values
    assert "pages: 3" in values
    assert any(re.fullmatch(r"PDF version: 1\.\d", v) for v in values), values
    assert not any(v.startswith(("author:", "subject:")) for v in values), values
    assert all(not v.endswith(":") for v in values), values
    assert "keys" not in out  # no "20 keys"

    # A permanent failure: code and message, one attempt, called final.
    code, out, err = invoke("status", str(corrupt))
    assert code == 1  # the file's extraction failed
    document = json.loads(invoke("status", str(corrupt), "--json")[1])
    error = document["extraction_status"]["error"]
    assert error["code"] == "corrupt" and error["message"]
    lines = out.splitlines()
    assert lines[0] == f"{corrupt}  broken.pdf  failed (pdf)"
    assert lines[1] == f"  error (permanent): corrupt: {' '.join(error['message'].split())}"
    assert len(lines) == 3
    # The message is on the error line already: the attempt names the code only.
    assert re.fullmatch(rf"  attempt 1 \(final\): failed, started {WHEN}, took \S+ s, corrupt", lines[2]), (
        lines[2]
    )
    assert not lines[2].startswith("  attempt 1/")  # no "attempt 1/4": no retry is coming

    # A transient failure retried once: attempt 1/2 failed and retried, attempt 2 final.
    code, out, err = invoke("status", str(lost))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"{lost}  lost.pdf  failed"
    assert lines[1].startswith("  error (transient): storage_unavailable: ") and len(lines[1]) > 45
    assert re.fullmatch(rf"  attempt 1/2: failed, retried, started {WHEN}, storage_unavailable", lines[2])
    assert re.fullmatch(
        rf"  attempt 2 \(final\): failed, started {WHEN}, took \S+ s, storage_unavailable", lines[3]
    )

    # `list`: a header, aligned columns, the errors; --json as before.
    code, out, err = invoke("list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "FORMAT", "ATTEMPTS", "FILE", "ERROR"]
    assert [line.split()[:5] for line in lines[1:]] == [
        [str(good), "succeeded", "pdf", "1", "plan.pdf"],
        [str(corrupt), "failed", "pdf", "1", "broken.pdf"],
        [str(lost), "failed", "-", "2", "lost.pdf"],
    ]
    file_column = lines[0].index("FILE")
    assert all(line[file_column:].startswith(("plan.pdf", "broken.pdf", "lost.pdf")) for line in lines[1:])
    error_column = lines[0].index("ERROR")
    assert lines[2][error_column:].startswith("corrupt: ")
    assert lines[3][error_column:].startswith("storage_unavailable: ")
    listed = json.loads(invoke("list", "--json")[1])
    assert [sorted(item) for item in listed] == [
        ["attempts", "error", "filename", "format", "id", "status"]
    ] * 3


def test_list_shortens_long_names_and_messages_to_the_terminal(
    cli_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "a-very-long-drawing-name-that-goes-on-and-on-revision-12-final.dwg"
    short = cli_app.upload("a.pdf", b"%PDF-1.4 x")
    long = cli_app.repository.add_file(
        NewFile(filename=name, size_bytes=1, sha256="0" * 64, storage_uri="file:///nowhere")
    ).id
    cli_app.repository.queue_files([long])
    job = cli_app.repository.start_attempt(long, run_id="r1", attempt=1, max_attempts=4, format="dwg")
    assert job is not None
    message = "the section map points past the end of the file " * 10
    cli_app.repository.finish_attempt(
        job,
        "failed",
        error={"kind": "permanent", "code": "corrupt", "message": message},
        file_status="failed",
    )
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = invoke("list")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3 and all(len(line) <= 100 for line in lines), lines
    row = lines[2]
    assert row.split()[:4] == [str(long), "failed", "dwg", "1"]
    shown_name = row[lines[0].index("FILE") :].split()[0]
    assert "\u2026" in shown_name and shown_name.endswith("final.dwg") and 16 <= len(shown_name) <= 40
    assert shown_name.startswith("a-very-long-")
    assert row.rstrip().endswith("\u2026") and "corrupt: the section map points" in row
    assert len(row) == 100  # the message fills the line
    assert lines[1].split() == [str(short), "pending", "-", "0", "a.pdf"]
    # --json keeps everything whole.
    listed = json.loads(invoke("list", "--json")[1])
    assert listed[1]["filename"] == name and listed[1]["error"]["message"] == message


def test_file_table_names_with_control_characters_stay_on_one_line() -> None:
    rows = [
        {
            "id": 7,
            "filename": "evil\nname\t.pdf",
            "format": None,
            "status": None,
            "attempts": 0,
            "error": None,
        }
    ]
    lines = file_table(rows, 80)
    assert len(lines) == 2 and lines[1].split() == ["7", "pending", "-", "0", "evil", "name", ".pdf"]


def test_format_summary_leaves_out_empty_values() -> None:
    envelope = {
        "file": {"name": "a.pdf", "size_bytes": 10, "sha256": "x"},
        "format": "pdf",
        "variant": None,
        "extension_matches": True,
        "status": "succeeded",
        "warnings": [],
        "error": None,
        "metadata": {
            "pdf_version": "1.7",
            "page_count": 0,
            "title": "",
            "author": "   ",
            "encrypted": False,
            "text_chars": None,
            "image_count": [],
        },
        "duration_ms": 3,
    }
    lines = format_summary(envelope).splitlines()
    assert lines == [
        "a.pdf: pdf, succeeded (10 bytes, 3 ms)",
        "  version: 1.7",
        "  pages: 0",
        "  encrypted: no",
    ]


def test_format_summary_shows_names_counts_and_boxes() -> None:
    envelope = {
        "file": {"name": "a.dxf", "size_bytes": 10, "sha256": "x"},
        "format": "dxf",
        "variant": "ascii",
        "status": "succeeded",
        "warnings": ["recovered 2 damaged entities", ""],
        "error": None,
        "metadata": {
            "dxf_version": "AC1032",
            "units": "mm",
            "layer_names": ["0", "WALLS", ""],
            "entity_counts": {"LINE": 4, "CIRCLE": 1},
            "block_names": {},
        },
        "duration_ms": 3,
    }
    assert format_summary(envelope).splitlines()[1:] == [
        "  version: AC1032",
        "  units: mm",
        "  layers: 0, WALLS",
        "  entities: 5 (LINE 4, CIRCLE 1)",
        "  warning: recovered 2 damaged entities",
    ]


def test_attempts_in_progress_say_how_long_they_run_and_when_the_next_one_starts(cli_app: App) -> None:
    from datetime import UTC, datetime, timedelta

    code, out, err = invoke("list")
    assert code == 0 and out == "" and err.strip() == "no files"

    running = cli_app.upload("running.pdf", b"%PDF-1.4 x")
    cli_app.repository.queue_files([running])
    assert cli_app.repository.start_attempt(running, run_id="r1", attempt=1, max_attempts=4, format="pdf")
    waiting = cli_app.upload("waiting.pdf", b"%PDF-1.4 y")
    cli_app.repository.queue_files([waiting])
    job = cli_app.repository.start_attempt(waiting, run_id="r2", attempt=1, max_attempts=4, format="pdf")
    assert job is not None
    later = datetime.now(UTC) + timedelta(minutes=5)
    error = {
        "kind": "transient",
        "code": "database_unavailable",
        "message": "the server closed the connection",
    }
    cli_app.repository.finish_attempt(job, "retrying", error=error, next_retry_at=later)

    code, out, _ = invoke("status", str(running))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"{running}  running.pdf  running (pdf)"
    assert re.fullmatch(rf"  attempt 1/4: running, started {WHEN}, running for \S+ s", lines[1]), lines[1]

    code, out, _ = invoke("status", str(waiting))
    assert code == 0
    line = out.splitlines()[1]
    assert re.fullmatch(
        rf"  attempt 1/4: retrying, started {WHEN}, next attempt at {WHEN}, "
        r"database_unavailable: the server closed the connection",
        line,
    ), line
    assert later.strftime("%Y-%m-%d %H:%M:%S UTC") in line
