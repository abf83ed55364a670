"""STEP metadata: header fields from the text, geometry and assembly tree with OCP (XCAF)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from extraction_pipeline.extraction.context import ExtractionContext, FormatResult
from extraction_pipeline.extraction.envelope import FormatMetadata

NAME = "step"
VERSION = "1.0.0"


class StepMetadata(FormatMetadata):
    file_schema: str | list[str] | None
    application_protocol: str | None
    originating_system: str | None
    preprocessor_version: str | None
    author: str | list[str] | None
    organization: str | list[str] | None
    timestamp: str | None
    file_name: str | None
    length_unit: str | None
    parts: list[Any]
    solid_count: int
    face_count: int
    edge_count: int
    volume_mm3: float | None
    surface_area_mm2: float | None
    bbox_mm: dict[str, list[float]] | None


def extract(path: Path, context: ExtractionContext) -> FormatResult:
    raise NotImplementedError
