"""A toy sixth format for the tests of the table of formats: ``TOYFORMAT 1`` then ``key: value`` lines.

It is an extractor module like those under ``extraction/formats/`` (``NAME``, ``VERSION``, a
metadata model, ``extract``) plus its ``SPEC``; the tests add the spec to the table for a while
(``format_table.registered_format``), and a worker learns it by importing ``toy_format_plugin``.
"""

from __future__ import annotations

from pathlib import Path

from extraction_pipeline.extraction.context import ExtractionContext, FormatResult
from extraction_pipeline.extraction.envelope import FormatMetadata
from extraction_pipeline.extraction.errors import CorruptFile
from extraction_pipeline.extraction.format_table import Fact, FormatSpec

MAGIC = b"TOYFORMAT 1\n"

SPEC = FormatSpec(
    name="toy",
    label="TOY",
    extensions=(".toy",),
    mime_type="text/x-toy",
    module=__name__,
    version="0.1.0",
    metadata_model=f"{__name__}:ToyMetadata",
    facts=(Fact("title", "title", "text"), Fact("entries", "entries", "count")),
    figures=(Fact("entries", "entries", "len"),),
    summary=(Fact("title", "title"), Fact("entries", "entries")),
    distributions=("toy-library",),
    sample_file="sample.toy",
    sample_writer=f"{__name__}:write_sample",
    magic=(MAGIC,),
)
NAME = SPEC.name
VERSION = SPEC.version


class ToyMetadata(FormatMetadata):
    title: str | None
    entries: dict[str, str]


def extract(path: Path, context: ExtractionContext) -> FormatResult:
    lines = path.read_text("utf-8").splitlines()[1:]
    entries: dict[str, str] = {}
    for number, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise CorruptFile(f"line {number} is not `key: value`")
        entries[key.strip()] = value.strip()
    return FormatResult(metadata=ToyMetadata(title=entries.get("title"), entries=entries))


def write_sample(path: Path) -> Path:
    path.write_bytes(MAGIC + b"title: A toy\nauthor: the tests\n")
    return path
