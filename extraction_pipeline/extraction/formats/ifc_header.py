"""The IFC header (FILE_NAME, FILE_SCHEMA, FILE_DESCRIPTION's view definition) as ifcopenshell parsed it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from extraction_pipeline.extraction.formats import ifc_values as val


def header(model: Any) -> dict[str, str | None]:
    header = getattr(model, "header", None)
    file_name = val.safe_attr(header, "file_name")
    file_schema = val.safe_attr(header, "file_schema")
    description = val.safe_attr(header, "file_description")
    identifiers = val.safe_attr(file_schema, "schema_identifiers")
    identifier = None
    if isinstance(identifiers, (list, tuple)) and identifiers:
        identifier = val.text(identifiers[0])
    view = None
    lines = val.safe_attr(description, "description")
    for line in lines if isinstance(lines, (list, tuple)) else ():
        if isinstance(line, str) and line.strip().lower().startswith("viewdefinition"):
            inside = line[line.find("[") + 1 : line.find("]")] if "[" in line and "]" in line else ""
            view = inside.strip() or None
            break
    return {
        "schema_identifier": identifier,
        "originating_system": val.text(val.safe_attr(file_name, "originating_system")),
        "preprocessor_version": val.text(val.safe_attr(file_name, "preprocessor_version")),
        "author": val.joined(val.safe_attr(file_name, "author")),
        "organization": val.joined(val.safe_attr(file_name, "organization")),
        "timestamp": timestamp(val.safe_attr(file_name, "time_stamp")),
        "view_definition": view,
    }


def timestamp(value: Any) -> str | None:
    text = val.text(value)
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    except ValueError:
        return text  # kept as written when it is not ISO 8601
