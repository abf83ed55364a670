"""IFC metadata with ifcopenshell: STEP physical files, ifcZIP and ifcXML.

One module per concern: ``ifc_reading`` (opening the model, ifcZIP, ifcXML, the parser's log),
``ifc_header``, ``ifc_spatial`` (element counts, storeys and their heights), ``ifc_units`` (length
unit), ``ifc_georef`` (georeference, site location) and ``ifc_values`` (safe entity accessors).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from pydantic import Field

from extraction_pipeline.extraction.context import ExtractionContext, FormatResult
from extraction_pipeline.extraction.envelope import FormatMetadata
from extraction_pipeline.extraction.formats import ifc_values as val
from extraction_pipeline.extraction.formats.ifc_georef import georeference, site_location
from extraction_pipeline.extraction.formats.ifc_header import header as read_header
from extraction_pipeline.extraction.formats.ifc_reading import (
    inflate_member,
    log_messages,
    open_ifcxml,
    open_spf,
    sniff_variant,
)
from extraction_pipeline.extraction.formats.ifc_spatial import element_counts
from extraction_pipeline.extraction.formats.ifc_spatial import storeys as read_storeys
from extraction_pipeline.extraction.formats.ifc_text import collect_text
from extraction_pipeline.extraction.formats.ifc_units import length_unit
from extraction_pipeline.extraction.text import TextCollector
from extraction_pipeline.extraction.versions import EXTRACTOR_VERSIONS

NAME = "ifc"
VERSION = EXTRACTOR_VERSIONS[NAME]

# How many native parser messages become warnings before they are summarised.
_MAX_LOG_WARNINGS = 10


class IfcMetadata(FormatMetadata):
    schema_: str | None = Field(alias="schema")  # "schema" would shadow a BaseModel method
    schema_identifier: str | None
    originating_system: str | None
    preprocessor_version: str | None
    author: str | None
    organization: str | None
    timestamp: str | None
    project_name: str | None
    sites: list[str | None]
    buildings: list[str | None]
    storeys: list[str | None]
    element_counts: dict[str, int]
    property_set_count: int
    length_unit: str | None
    georeference: dict[str, Any] | None
    # Additions beyond the contract.
    storey_elevations: list[float | None] = Field(
        default_factory=list, description="the height each storey was ordered by, in project length units"
    )
    length_unit_scale: float | None = Field(default=None, description="metres per project length unit")
    quantity_set_count: int = 0
    site_location: dict[str, float | None] | None = Field(
        default=None, description="IfcSite RefLatitude/RefLongitude in decimal degrees and RefElevation"
    )
    view_definition: str | None = None
    member: str | None = Field(default=None, description="the zip member that was read (ifcZIP)")


def extract(path: Path, context: ExtractionContext) -> FormatResult:
    variant = context.detection.variant or sniff_variant(path)
    warnings: list[str] = []
    if variant == "ifczip":
        with tempfile.TemporaryDirectory(prefix="ifczip-") as tmp:
            member, inner_path = inflate_member(path, Path(tmp), context.max_bytes, warnings)
            if sniff_variant(inner_path) == "ifcxml":
                model, logger = open_ifcxml(inner_path, inside_zip=True)
            else:
                model, logger = open_spf(inner_path, warnings)
            metadata = _metadata(model, logger, warnings)
            metadata.member = member
            text = _text(model, context)
        return FormatResult(metadata=metadata, warnings=warnings, variant="ifczip", text=text)
    if variant == "ifcxml":
        model, logger = open_ifcxml(path, inside_zip=False)
    else:
        model, logger = open_spf(path, warnings)
    metadata = _metadata(model, logger, warnings)
    return FormatResult(metadata=metadata, warnings=warnings, variant=variant, text=_text(model, context))


def _text(model: Any, context: ExtractionContext) -> TextCollector | None:
    collector = context.text_collector()
    if collector is not None:
        collect_text(model, collector)
    return collector


def _metadata(model: Any, logger: Any, warnings: list[str]) -> IfcMetadata:
    header = read_header(model)
    projects = val.by_type(model, "IfcProject")
    if len(projects) > 1:
        warnings.append(f"the file holds {len(projects)} IfcProject instances; the first was used")
    project = projects[0] if projects else None
    storeys, elevations = read_storeys(model)
    unit, scale = length_unit(model, project)
    sites = val.by_type(model, "IfcSite")
    property_sets = val.by_type(model, "IfcPropertySet")
    metadata = IfcMetadata(
        schema=val.text(getattr(model, "schema", None)),
        schema_identifier=header["schema_identifier"] or val.text(getattr(model, "schema_identifier", None)),
        originating_system=header["originating_system"],
        preprocessor_version=header["preprocessor_version"],
        author=header["author"],
        organization=header["organization"],
        timestamp=header["timestamp"],
        project_name=val.name(project) if project is not None else None,
        sites=[val.name(site) for site in sites],
        buildings=[val.name(building) for building in val.by_type(model, "IfcBuilding")],
        storeys=storeys,
        element_counts=element_counts(model),
        property_set_count=len(property_sets),
        length_unit=unit,
        georeference=georeference(model, property_sets),
        storey_elevations=elevations,
        length_unit_scale=scale,
        quantity_set_count=len(val.by_type(model, "IfcElementQuantity")),
        site_location=site_location(sites),
        view_definition=header["view_definition"],
    )
    messages = log_messages(logger, ("WARNING", "ERROR"))
    warnings.extend(f"ifcopenshell: {m}" for m in messages[:_MAX_LOG_WARNINGS])
    if len(messages) > _MAX_LOG_WARNINGS:
        warnings.append(f"ifcopenshell reported {len(messages) - _MAX_LOG_WARNINGS} more problems")
    return metadata
