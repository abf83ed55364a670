"""The plain text of an IFC model: what its authors wrote into it, for search.

In this order: the project, the spatial tree (sites, buildings, storeys, spaces, zones: every
spatial element), every other product (walls, doors, furniture, ...), each with its Name, LongName,
ObjectType and Description; then the text values of single-value properties (IfcLabel, IfcText,
IfcIdentifier, ...; numbers and booleans say little to a reader). A string repeated by many
instances (a type name on every wall) is kept once. Malformed instances lose their own text only.
"""

from __future__ import annotations

from typing import Any

from extraction_pipeline.extraction.formats import ifc_values as val
from extraction_pipeline.extraction.text import TextCollector

_ATTRIBUTES = ("Name", "LongName", "ObjectType", "Description")
# The spatial tree from the top down, then any other spatial element (IFC4's IfcSpatialElement:
# zones, IFC4.3's facilities; IFC2X3 has only IfcSpatialStructureElement).
_SPATIAL = (
    "IfcSite",
    "IfcBuilding",
    "IfcBuildingStorey",
    "IfcSpace",
    "IfcSpatialElement",
    "IfcSpatialStructureElement",
)


def collect_text(model: Any, collector: TextCollector) -> None:
    seen: set[int] = set()
    groups = [val.by_type(model, "IfcProject")]
    groups += [val.by_type(model, spatial) for spatial in _SPATIAL]
    groups.append(val.by_type(model, "IfcProduct"))
    for group in groups:
        for entity in group:
            if collector.full:
                return
            key = _id(entity)
            if key in seen:
                continue
            seen.add(key)
            for attribute in _ATTRIBUTES:
                collector.add(val.text(val.attr(entity, attribute)), unique=True)
    for prop in val.by_type(model, "IfcPropertySingleValue"):
        if collector.full:
            return
        value = val.attr(prop, "NominalValue")
        wrapped = val.attr(value, "wrappedValue") if value is not None else None
        collector.add(val.text(wrapped), unique=True)


def _id(entity: Any) -> int:
    try:
        return int(entity.id())
    except Exception:  # noqa: BLE001 - an instance without a usable id: its Python identity
        return id(entity)
