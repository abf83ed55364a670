"""IFC metadata with ifcopenshell: STEP physical files, ifcZIP and ifcXML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from extraction_pipeline.extraction.context import ExtractionContext, FormatResult
from extraction_pipeline.extraction.envelope import FormatMetadata

NAME = "ifc"
VERSION = "1.0.0"


class IfcMetadata(FormatMetadata):
    schema_: str | None = Field(alias="schema")  # "schema" would shadow a BaseModel method
    schema_identifier: str | None
    originating_system: str | None
    preprocessor_version: str | None
    author: str | None
    organization: str | None
    timestamp: str | None
    project_name: str | None
    sites: list[Any]
    buildings: list[Any]
    storeys: list[Any]
    element_counts: dict[str, int]
    property_set_count: int
    length_unit: str | None
    georeference: dict[str, Any] | None


def extract(path: Path, context: ExtractionContext) -> FormatResult:
    raise NotImplementedError
