"""``extract`` and ``schema`` as a user runs them: exit codes, stdout shapes, stderr messages."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from extraction_pipeline.cli import cli

ENVELOPE_KEYS = {
    "file",
    "format",
    "variant",
    "extension_matches",
    "status",
    "extractor",
    "warnings",
    "error",
    "metadata",
    "duration_ms",
}


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def make_pdf(path: Path, pages: int = 2) -> Path:
    import pymupdf
    document = pymupdf.open()
    for index in range(pages):
        document.new_page().insert_text((72, 72), f"page {index + 1}")
    document.set_metadata({"title": "CLI test"})
    document.save(path)
    document.close()
    return path


@pytest.fixture
def unknown_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"nothing a CAD or PDF library could read\n")
    return path


# -- extract --------------------------------------------------------------------------------


def test_one_succeeding_file_prints_one_envelope_and_exits_0(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "report.pdf")
    code, out, _err = run("extract", "--json", str(path))
    envelope = json.loads(out)
    assert code == 0
    assert isinstance(envelope, dict)
    assert set(envelope) >= ENVELOPE_KEYS
    assert envelope["status"] == "succeeded"
    assert envelope["format"] == "pdf"
    assert envelope["metadata"]["page_count"] == 2
    assert envelope["file"] == {
        "name": "report.pdf",
        "size_bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def test_one_failing_file_exits_1_with_the_error(unknown_file: Path) -> None:
    code, out, _err = run("extract", "--json", str(unknown_file))
    envelope = json.loads(out)
    assert code == 1
    assert set(envelope) >= ENVELOPE_KEYS
    assert envelope["status"] == "failed"
    assert envelope["format"] == "unknown"
    assert envelope["error"]["code"] == "unsupported_format"
    assert envelope["error"]["kind"] == "permanent"


@pytest.fixture(scope="module")
def inbox_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Any]:
    """``extract --json`` on a folder: a.txt, b-sub/inner.pdf (3 pages), c.pdf (1 page)."""
    folder = tmp_path_factory.mktemp("inbox")
    (folder / "b-sub").mkdir()
    make_pdf(folder / "c.pdf", pages=1)
    (folder / "a.txt").write_bytes(b"plain text\n")
    make_pdf(folder / "b-sub" / "inner.pdf", pages=3)
    code, out, _err = run("extract", "--json", str(folder))
    return code, json.loads(out)


def test_directory_gives_a_sorted_recursive_list(inbox_run: tuple[int, Any]) -> None:
    code, envelopes = inbox_run
    assert isinstance(envelopes, list)
    assert [e["file"]["name"] for e in envelopes] == ["a.txt", "inner.pdf", "c.pdf"]
    assert [e["status"] for e in envelopes] == ["failed", "succeeded", "succeeded"]
    assert envelopes[1]["metadata"]["page_count"] == 3
    assert code == 1  # one of them failed


def test_several_succeeding_files_exit_0_with_a_list(tmp_path: Path) -> None:
    first = make_pdf(tmp_path / "one.pdf", pages=1)
    second = make_pdf(tmp_path / "two.pdf", pages=2)
    code, out, _err = run("extract", "--json", "--workers", "2", str(second), str(first))
    envelopes = json.loads(out)
    assert code == 0
    assert [(e["file"]["name"], e["metadata"]["page_count"]) for e in envelopes] == [
        ("two.pdf", 2),
        ("one.pdf", 1),
    ]


def test_human_readable_summary(tmp_path: Path, unknown_file: Path) -> None:
    pdf = make_pdf(tmp_path / "scan.dxf", pages=2)  # a PDF under a wrong name
    code, out, _err = run("extract", str(pdf), str(unknown_file))
    assert code == 1
    assert "scan.dxf: pdf, succeeded" in out
    assert "pages: 2" in out
    assert "warning:" in out and "extension" in out
    assert "notes.txt: unknown, failed" in out
    assert "error: unsupported_format (permanent)" in out
    assert "2 files: 1 succeeded, 1 failed" in out


def test_timeout_option_stops_a_hanging_file(tmp_path: Path) -> None:
    path = tmp_path / "stuck.pdf"
    path.write_bytes(b"EXTRACTION-FAULT:hang\n%PDF-1.4\n")
    code, out, _err = run(
        "extract", "--json", "--timeout", "1", str(path), env={"EXTRACTION_FAULT_INJECTION": "1"}
    )
    envelope = json.loads(out)
    assert code == 1
    assert envelope["error"]["code"] == "timeout"
    assert envelope["format"] == "pdf"
    assert 1000 <= envelope["duration_ms"] < 6000


def test_memory_option_limits_the_worker(tmp_path: Path) -> None:
    path = tmp_path / "hungry.bin"
    path.write_bytes(b"EXTRACTION-FAULT:oom\n")
    code, out, _err = run(
        "extract", "--json", "--memory-mb", "256", str(path), env={"EXTRACTION_FAULT_INJECTION": "1"}
    )
    assert code == 1
    assert json.loads(out)["error"]["code"] == "out_of_memory"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["missing.pdf"], id="missing-path"),
        pytest.param(["EMPTY_DIR"], id="empty-directory"),
        pytest.param(["--memory-mb", "1", "FILE"], id="memory-too-small"),
        pytest.param(["--timeout", "0", "FILE"], id="timeout-zero"),
        pytest.param([], id="no-path"),
    ],
)
def test_usage_and_input_errors_exit_2(tmp_path: Path, unknown_file: Path, args: list[str]) -> None:
    (tmp_path / "empty").mkdir()
    replaced = {"missing.pdf": str(tmp_path / "missing.pdf"), "EMPTY_DIR": str(tmp_path / "empty")}
    replaced["FILE"] = str(unknown_file)
    code, out, err = run("extract", "--json", *[replaced.get(a, a) for a in args])
    assert code == 2
    assert out == ""
    assert "Error:" in err


def test_bad_setting_exits_2(unknown_file: Path) -> None:
    code, out, err = run("extract", str(unknown_file), env={"EXTRACTION_TIMEOUT_S": "soon"})
    assert (code, out) == (2, "")
    assert "EXTRACTION_TIMEOUT_S" in err


def test_missing_path_message_names_it(tmp_path: Path) -> None:
    code, _out, err = run("extract", str(tmp_path / "nowhere.dwg"))
    assert code == 2
    assert "nowhere.dwg" in err and "no such file" in err


def test_special_file_exits_2(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.pdf"
    os.mkfifo(fifo)
    code, out, err = run("extract", "--json", str(fifo))
    assert (code, out) == (2, "")
    assert "not a regular file" in err


def test_stdout_is_exactly_one_json_document_in_a_real_process(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "real.pdf")
    completed = subprocess.run(
        [sys.executable, "-m", "extraction_pipeline", "extract", "--json", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "EXTRACTION_LOG_LEVEL": "DEBUG"},
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["status"] == "succeeded"


# -- schema ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    code, out, _err = run("schema")
    assert code == 0
    return json.loads(out)


def test_schema_describes_the_envelope(schema: dict[str, Any]) -> None:
    assert schema["type"] == "object"
    # The text's keys are there only with `extract --text`: described, not required.
    assert set(schema["properties"]) == ENVELOPE_KEYS | {"text", "text_truncated"}
    assert set(schema["required"]) == ENVELOPE_KEYS
    assert set(schema["properties"]["format"]["enum"]) == {"pdf", "dxf", "dwg", "ifc", "step", "unknown"}


def test_schema_includes_every_format_metadata_model(schema: dict[str, Any]) -> None:
    from extraction_pipeline.extraction.registry import metadata_models

    models = metadata_models()
    assert set(models) == {"pdf", "dxf", "dwg", "ifc", "step"}
    refs = {option.get("$ref") for option in schema["properties"]["metadata"]["anyOf"]}
    for model in models.values():
        assert f"#/$defs/{model.__name__}" in refs
        definition = schema["$defs"][model.__name__]
        assert set(definition["required"]) <= set(definition["properties"])
    assert "schema" in schema["$defs"][models["ifc"].__name__]["properties"]  # the alias, not schema_
    assert "page_count" in schema["$defs"][models["pdf"].__name__]["required"]


def test_schema_is_valid_and_validates_real_envelopes(
    schema: dict[str, Any], inbox_run: tuple[int, Any]
) -> None:
    import jsonschema
    validator_class = jsonschema.Draft202012Validator
    validator_class.check_schema(schema)
    validator = validator_class(schema)

    _code, envelopes = inbox_run
    for envelope in envelopes:
        validator.validate(envelope)
    succeeded = envelopes[1]
    assert (succeeded["format"], succeeded["status"]) == ("pdf", "succeeded")

    # A succeeded PDF envelope without a required PDF key is rejected; a failed one may be empty.
    broken = json.loads(json.dumps(succeeded))
    del broken["metadata"]["page_count"]
    assert not validator.is_valid(broken)
    error = {"kind": "permanent", "code": "corrupt", "message": "unreadable"}
    assert validator.is_valid({**succeeded, "status": "failed", "metadata": {}, "error": error})
    assert not validator.is_valid({k: v for k, v in succeeded.items() if k != "warnings"})


def test_a_file_name_that_is_not_utf8_still_gives_valid_utf8_json(tmp_path: Path) -> None:
    raw_name = os.fsencode(tmp_path) + b"/plan\xff.pdf"
    with open(raw_name, "wb") as handle:
        handle.write(b"not a pdf at all")
    completed = subprocess.run(
        [sys.executable, "-m", "extraction_pipeline", "extract", "--json", os.fsdecode(raw_name)],
        capture_output=True,
        timeout=120,
    )
    assert completed.returncode == 1
    envelope = json.loads(completed.stdout.decode("utf-8"))  # strict decoding: no lone surrogates
    assert envelope["file"]["name"] == "plan\ufffd.pdf"
