"""The table of formats: every per-format surface derives from it, and a sixth format plugs in."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from extraction_pipeline.extraction import format_table
from extraction_pipeline.extraction.detect import Format, detect_format
from extraction_pipeline.extraction.extract import extract_file
from extraction_pipeline.persistence.state import ExtractionState
from extraction_pipeline_tests.extraction import toy_format

BUILTIN = ("pdf", "dxf", "dwg", "ifc", "step")


def test_the_built_in_formats_and_what_derives_from_them() -> None:
    from extraction_pipeline.cli.choices import FormatChoice
    from extraction_pipeline.cli.doctor import format_checks
    from extraction_pipeline.extraction.registry import extractor_modules, extractor_versions, metadata_models
    from extraction_pipeline.extraction.versions import EXTRACTOR_VERSIONS

    assert format_table.format_names() == BUILTIN
    assert {member.value for member in Format} == {*BUILTIN, "unknown"}
    assert EXTRACTOR_VERSIONS == extractor_versions() == {s.name: s.version for s in format_table.formats()}
    assert extractor_modules()["step"] == "extraction_pipeline.extraction.formats.step"
    assert {fmt: model.__name__ for fmt, model in metadata_models().items()} == {
        "pdf": "PdfMetadata",
        "dxf": "DxfMetadata",
        "dwg": "DwgMetadata",
        "ifc": "IfcMetadata",
        "step": "StepMetadata",
    }
    assert format_table.supported_formats_text() == "PDF, DXF, DWG, IFC or STEP"
    assert tuple(FormatChoice(unknown=True).choices) == (*BUILTIN, "unknown")
    assert format_checks()["step"] == ("bracket.step", ("cadquery-ocp-novtk", "cadquery-ocp"))
    assert [format_table.format_for_extension(e) for e in (".PDF", ".ifcZIP", ".p21", ".txt")] == [
        "pdf",
        "ifc",
        "step",
        None,
    ]


def test_the_table_and_the_versions_import_no_format_module_nor_pydantic() -> None:
    code = (
        "import json, sys; import extraction_pipeline.extraction.versions; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'click')"
        " or m.startswith('extraction_pipeline.extraction.formats'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_a_name_is_registered_once_and_builtins_stay() -> None:
    with pytest.raises(ValueError, match="already registered"):
        format_table.register_format(format_table.find("pdf"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot name a format"):
        format_table.register_format(dataclasses.replace(toy_format.SPEC, name="unknown"))
    with pytest.raises(ValueError, match="built-in"):
        format_table.unregister_format("pdf")


@pytest.fixture
def toy() -> Iterator[format_table.FormatSpec]:
    with format_table.registered_format(toy_format.SPEC) as spec:
        yield spec
    assert "toy" not in format_table.format_names()


def toy_file(tmp_path: Path, name: str = "notes.toy") -> Path:
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + toy_format.MAGIC + b"title: Pump  room\nsheet: A-101\n")
    return path


def test_a_registered_format_is_detected_extracted_and_summarized(
    toy: format_table.FormatSpec, tmp_path: Path
) -> None:
    from extraction_pipeline.cli.extraction import envelope_json_schema, format_summary
    from extraction_pipeline.orchestration.summary import job_summary, key_facts

    detection = detect_format(toy_file(tmp_path))
    assert (detection.format, detection.extension_matches) == ("toy", True)
    misnamed = detect_format(toy_file(tmp_path, "notes.pdf"))
    assert misnamed.format == "toy" and not misnamed.extension_matches

    envelope = extract_file(toy_file(tmp_path))
    assert envelope.status == "succeeded", envelope.error
    assert (envelope.format, envelope.extractor.name, envelope.extractor.version) == ("toy", "toy", "0.1.0")
    data = envelope.model_dump(mode="json")
    assert data["metadata"] == {"title": "Pump  room", "entries": {"title": "Pump  room", "sheet": "A-101"}}

    summary = format_summary(data).splitlines()
    assert summary[0].startswith("notes.toy: toy, succeeded")
    assert summary[1:] == ["  title: Pump room", "  entries: title: Pump room, sheet: A-101"]
    assert key_facts("toy", data["metadata"]) == {"title": "Pump room", "entries": 2}
    assert job_summary(data)["figures"] == {"entries": 2}
    assert "toy" in envelope_json_schema()["properties"]["format"]["enum"]

    # ``status`` shows a stored file's ``status_facts``: none given, none shown; given, shown.
    from extraction_pipeline.cli.status import metadata_lines, status_lines

    assert metadata_lines("toy", data["metadata"]) == []
    with_status = dataclasses.replace(
        toy,
        name="toy2",
        status_facts=(format_table.Fact("sheet title", "title"), format_table.Fact("keys", "entries")),
    )
    with format_table.registered_format(with_status):
        row = SimpleNamespace(
            id=7,
            filename="notes.toy",
            extraction_status={"status": "succeeded", "format": "toy2"},
            state=ExtractionState(status="succeeded", format="toy2"),
        )
        stored = SimpleNamespace(
            format="toy2",
            extractor_version="0.1.0",
            extracted_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            metadata_=data["metadata"],
            warnings=[],
        )
        assert status_lines(row, [], stored) == [
            "7  notes.toy  succeeded (toy2)",
            "  toy2 metadata (extractor 0.1.0, extracted 2026-01-02 03:04:05 UTC):",
            "    sheet title: Pump room",
            "    keys: title: Pump room, sheet: A-101",
        ]
    assert metadata_lines("toy2", data["metadata"]) == []  # unregistered again

    unknown = tmp_path / "notes.txt"
    unknown.write_text("TOYFORMAT 2\n")
    failed = extract_file(unknown)
    assert failed.error is not None and failed.error.code == "unsupported_format"
    assert failed.error.message == "the content is not PDF, DXF, DWG, IFC, STEP or TOY"


def test_a_registered_format_is_extracted_in_the_isolated_worker(
    toy: format_table.FormatSpec, tmp_path: Path
) -> None:
    from extraction_pipeline.extraction.workers import WorkerPool

    with WorkerPool(
        timeout_s=60, preload=("extraction_pipeline_tests.extraction.toy_format_plugin",)
    ) as pool:
        envelope = pool.extract(toy_file(tmp_path))
    assert envelope.status == "succeeded", envelope.error
    assert envelope.format == "toy"
    assert envelope.metadata["entries"]["sheet"] == "A-101"


def test_a_registered_format_is_a_cli_choice_sample_and_doctor_check(toy: format_table.FormatSpec) -> None:
    from extraction_pipeline.cli import cli
    from extraction_pipeline.cli.doctor import format_checks
    from extraction_pipeline.samples import sample_writers

    shown = CliRunner().invoke(cli, ["list", "--help"])
    assert shown.exit_code == 0, shown.output
    assert "pdf|dxf|dwg|ifc|step|toy|unknown" in shown.output
    assert format_checks()["toy"] == ("sample.toy", ("toy-library",))
    assert sample_writers()["sample.toy"] is toy_format.write_sample
