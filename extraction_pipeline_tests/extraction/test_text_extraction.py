"""The text of a file (`extract --text`): what is written on it, per format, capped.

The corpus check runs the way a user does (`extraction-pipeline extract --json --text`, one call,
through the isolated worker): every string of ../shared/corpus/expected-text.json must be in the
text of its file, whitespace and case folded. The rest builds files with the real libraries.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from extraction_pipeline.extraction.extract import extract_file
from extraction_pipeline.extraction.text import TextCollector
from extraction_pipeline.samples import write_ifc, write_pdf, write_step
from extraction_pipeline_tests.corpus import CORPUS_DIR


def fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def text_entries() -> list[dict[str, Any]]:
    manifest = CORPUS_DIR / "expected-text.json"
    return json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else []


def run_extract(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "extraction_pipeline", "extract", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_every_expected_string_of_the_corpus_is_in_the_text_of_its_file() -> None:
    entries = text_entries()
    if not entries:
        pytest.skip(f"no expected-text.json at {CORPUS_DIR}")
    paths = [CORPUS_DIR / entry["file"] for entry in entries]
    for entry, path in zip(entries, paths, strict=True):  # the very files the references describe
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], entry["file"]
    done = run_extract("--json", "--text", *map(str, paths))
    envelopes = json.loads(done.stdout)
    missing = {}
    for entry, envelope in zip(entries, envelopes, strict=True):
        assert envelope["status"] == "succeeded", (entry["file"], envelope["error"])
        assert envelope["text_truncated"] is False
        found = fold(envelope["text"] or "")
        lost = [s for s in entry["contains"] if fold(s) not in found]
        if lost:
            missing[entry["file"]] = lost
    assert not missing, missing
    assert done.returncode == 0, done.stderr


def test_without_the_flag_the_envelope_has_no_text_and_the_schema_does_not_require_it(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "a.pdf", pages=1, text="hello")
    plain = json.loads(run_extract("--json", str(pdf)).stdout)
    assert "text" not in plain and "text_truncated" not in plain
    schema = json.loads(
        subprocess.run(
            [sys.executable, "-m", "extraction_pipeline", "schema"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert {"text", "text_truncated"} <= set(schema["properties"])
    assert "text" not in schema["required"] and "metadata" in schema["required"]


def test_the_human_summary_shows_the_text(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "a.pdf", pages=2, text="Sheet {page} of the north wing")
    done = run_extract("--text", str(pdf))
    assert done.returncode == 0, done.stderr
    assert "  text: " in done.stdout
    assert "    Sheet 1 of the north wing" in done.stdout and "    Sheet 2 of the north wing" in done.stdout


def test_the_text_is_cut_at_the_limit_with_a_flag_and_a_warning(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "long.pdf", pages=30, text="page {page} " + "lorem ipsum " * 8)
    whole = extract_file(pdf, max_text_chars=1_000_000)
    assert whole.text is not None and not whole.text_truncated and "page 30" in whole.text
    cut = extract_file(pdf, max_text_chars=200)
    assert cut.status == "succeeded" and cut.text_truncated
    assert cut.text is not None and len(cut.text) == 200 and whole.text.startswith(cut.text)
    assert any("EXTRACTION_MAX_TEXT_CHARS" in warning for warning in cut.warnings)
    # The same through the CLI and the setting.
    env = {**os.environ, "EXTRACTION_MAX_TEXT_CHARS": "50"}
    envelope = json.loads(run_extract("--json", "--text", str(pdf), env=env).stdout)
    assert len(envelope["text"]) == 50 and envelope["text_truncated"] is True


def test_a_file_without_text_has_null_text(tmp_path: Path) -> None:
    import ezdxf

    doc = ezdxf.new("R2010")
    doc.modelspace().add_line((0, 0), (10, 0))
    doc.saveas(tmp_path / "lines.dxf")
    envelope = extract_file(tmp_path / "lines.dxf", max_text_chars=1000)
    assert envelope.status == "succeeded" and envelope.text is None and not envelope.text_truncated
    assert extract_file(tmp_path / "lines.dxf").text is None  # not asked for: not read


def test_dxf_text_from_every_layout_block_attribute_and_dimension_without_formatting_codes(
    tmp_path: Path,
) -> None:
    import ezdxf

    doc = ezdxf.new("R2018", setup=True)
    msp = doc.modelspace()
    msp.add_text("GROUND FLOOR PLAN")
    msp.add_mtext("Concrete \\fArial|b1;C30/37\\P{\\H2x;exposure} XC4")
    block = doc.blocks.new("TITLE")
    block.add_text("Drawn by")
    block.add_attdef("PART", insert=(0, -5), text="no part number")
    insert = msp.add_blockref("TITLE", (100, 0))
    insert.add_attrib("PART", "P-4711-B", insert=(100, -5))
    dim = msp.add_linear_dim(base=(0, 10), p1=(0, 0), p2=(30, 0), text="approx. <> mm")
    dim.render()
    doc.layouts.new("Sheet A1").add_text("Issued for tender")
    doc.saveas(tmp_path / "plan.dxf")

    text = extract_file(tmp_path / "plan.dxf", max_text_chars=10_000).text
    assert text is not None
    lines = text.splitlines()
    for expected in ("GROUND FLOOR PLAN", "P-4711-B", "Issued for tender", "Drawn by", "no part number"):
        assert expected in lines, (expected, lines)
    assert "Concrete C30/37" in text and "exposure XC4" in text  # MTEXT codes gone, \P a line break
    assert "\\f" not in text and "\\H" not in text
    assert any(line.startswith("approx.") and line.endswith("mm") for line in lines)  # the override
    assert "<>" not in text
    # Modelspace first, then the paperspace layout, then the block definition.
    assert lines.index("GROUND FLOOR PLAN") < lines.index("Issued for tender") < lines.index("Drawn by")


def test_ifc_text_has_the_spatial_tree_first_and_product_names_once(tmp_path: Path) -> None:
    envelope = extract_file(write_ifc(tmp_path / "model.ifc"), max_text_chars=10_000)
    assert envelope.status == "succeeded" and envelope.text is not None
    lines = envelope.text.splitlines()
    metadata = envelope.metadata
    tree = [metadata["project_name"], *metadata["sites"], *metadata["buildings"], *metadata["storeys"]]
    tree = [name for name in tree if name]
    assert lines[: len(tree)] == tree
    assert len(lines) == len(set(lines))


def test_step_text_is_the_product_names(tmp_path: Path) -> None:
    envelope = extract_file(write_step(tmp_path / "part.step"), max_text_chars=10_000)
    assert envelope.status == "succeeded" and envelope.text is not None
    names = [part["name"] for part in envelope.metadata["parts"] if part.get("name")]
    assert names and all(name in envelope.text.splitlines() for name in names)


def test_step_strings_are_decoded_and_other_entities_are_not_products(tmp_path: Path) -> None:
    data = (
        "ISO-10303-21;\nHEADER;\nFILE_DESCRIPTION((''),'2;1');\nFILE_NAME('x','',(''),(''),'','','');\n"
        "FILE_SCHEMA(('AUTOMOTIVE_DESIGN'));\nENDSEC;\nDATA;\n"
        "#1=PRODUCT('W-12','Wei\\X2\\00DF\\X0\\blech','bracket ''left''',(#2));\n"
        "#3=PRODUCT_DEFINITION('design','not a product name',#4,#5);\n"
        "#6 = PRODUCT ( 'W-12' , 'Second' , '' , ( #2 ) ) ;\n"
        "ENDSEC;\nEND-ISO-10303-21;\n"
    )
    path = tmp_path / "names.stp"
    path.write_text(data, encoding="ascii")
    collector = TextCollector(1000)
    from extraction_pipeline.extraction.formats.step_text import collect_text

    collect_text(path, collector)
    assert collector.text() == "Weißblech\nW-12\nbracket 'left'\nSecond"


def test_the_collector_tidies_pieces_and_never_exceeds_its_limit() -> None:
    collector = TextCollector(30)
    collector.add("  first line   \r\n\r\n\r\n\r\nsecond\x00line\t ")
    collector.add("")
    collector.add(None)
    collector.add("dup", unique=True)
    collector.add("dup", unique=True)
    assert collector.text() == "first line\n\nsecond line\ndup" and not collector.truncated
    collector.add("x" * 100)
    assert collector.truncated and collector.full
    text = collector.text()
    assert text is not None and len(text) == 30
    collector.add("more")  # nothing after the cut
    assert collector.text() == text
    with pytest.raises(ValueError):
        TextCollector(-1)
    empty = TextCollector(0)
    empty.add("anything")
    assert empty.text() is None and empty.truncated
