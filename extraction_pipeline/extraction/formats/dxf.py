"""DXF metadata with ezdxf (ASCII and binary, recovering damaged files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from extraction_pipeline.extraction.context import ExtractionContext, FormatResult
from extraction_pipeline.extraction.envelope import FormatMetadata

NAME = "dxf"
VERSION = "1.0.0"


class DxfMetadata(FormatMetadata):
    dxf_version: str | None
    release: str | None
    binary: bool
    units: str | None
    layer_names: list[str]
    block_names: list[str]
    layout_names: list[str]
    entity_counts: dict[str, int]
    extents: dict[str, list[float]] | None
    text_count: int
    title_block_attributes: dict[str, Any]
    recovered: bool
    audit_fixes: int


def extract(path: Path, context: ExtractionContext) -> FormatResult:
    raise NotImplementedError
