"""DWG metadata: header and drawing properties read from the file, content with ezdwg."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from extraction_pipeline.extraction.context import ExtractionContext, FormatResult
from extraction_pipeline.extraction.envelope import FormatMetadata

NAME = "dwg"
VERSION = "1.0.0"


class DwgMetadata(FormatMetadata):
    dwg_version: str
    release: str | None
    codepage: str | int | None
    title: str | None
    subject: str | None
    author: str | None
    keywords: str | None
    comments: str | None
    last_saved_by: str | None
    hyperlink_base: str | None
    custom_properties: dict[str, Any]
    layer_names: list[str] | None
    entity_counts: dict[str, int] | None
    content_readable: bool


def extract(path: Path, context: ExtractionContext) -> FormatResult:
    raise NotImplementedError
