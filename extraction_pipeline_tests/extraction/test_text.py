"""Text from file names and damaged files ends as valid Unicode, never as an exception."""

from __future__ import annotations

import json
import os
from pathlib import Path

from extraction_pipeline.extraction.extract import extract_file
from extraction_pipeline.extraction.formats.dxf import clean_text
from extraction_pipeline.extraction.text import valid_unicode


def test_valid_text_is_returned_unchanged() -> None:
    assert valid_unicode("Grundriss EG – Ø 12 mm") == "Grundriss EG – Ø 12 mm"


def test_non_utf8_file_name_bytes_become_replacement_characters() -> None:
    name = os.fsdecode(b"caf\xe9.pdf")  # how Linux hands over a Latin-1 file name
    assert valid_unicode(name) == "caf\ufffd.pdf"


def test_lone_surrogates_outside_the_escape_range_become_replacement_characters() -> None:
    cleaned = valid_unicode("x\ud800y")
    cleaned.encode("utf-8")  # would raise with the surrogate left in
    assert cleaned.startswith("x") and cleaned.endswith("y") and "\ufffd" in cleaned


def test_a_dxf_unicode_escape_of_a_surrogate_is_cleaned() -> None:
    cleaned = clean_text("A\\U+D800B")
    assert json.dumps(cleaned, ensure_ascii=False).encode("utf-8")
    assert cleaned[0] == "A" and cleaned[-1] == "B" and "\ufffd" in cleaned


def test_a_file_name_with_a_lone_surrogate_gives_an_envelope(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"plain text\n")
    envelope = extract_file(path, "plan\ud800.pdf")
    assert envelope.status == "failed" and envelope.error.code == "unsupported_format"
    assert "\ufffd" in envelope.file.name
    envelope.model_dump_json()  # serialisable
