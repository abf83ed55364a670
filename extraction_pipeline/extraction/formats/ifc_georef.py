"""Georeferencing: IfcMapConversion / IfcRigidOperation (IFC4+), the ePSet_ convention of IFC2X3, IfcSite's location."""

from __future__ import annotations

import math
from typing import Any

from extraction_pipeline.extraction.formats import ifc_values as val
from extraction_pipeline.extraction.formats.ifc_units import unit_name


def georeference(model: Any, property_sets: tuple[Any, ...]) -> dict[str, Any] | None:
    operations = [
        op for op in val.by_type(model, "IfcCoordinateOperation") if val.attr(op, "TargetCRS") is not None
    ]
    if operations:
        # Prefer the operation that georeferences the 3D model context.
        operations.sort(key=lambda op: (not _is_model_context(val.attr(op, "SourceCRS")), op.id()))
        return _from_operation(operations[0])
    return _from_property_sets(property_sets)


def _is_model_context(context: Any) -> bool:
    return (
        context is not None
        and context.is_a("IfcGeometricRepresentationContext")
        and not context.is_a("IfcGeometricRepresentationSubContext")
        and val.attr(context, "ContextType") == "Model"
    )


def _from_operation(operation: Any) -> dict[str, Any]:
    crs = val.attr(operation, "TargetCRS")
    if operation.is_a("IfcMapConversion"):
        eastings, northings = (
            val.number(val.attr(operation, "Eastings")),
            val.number(val.attr(operation, "Northings")),
        )
        height = val.number(val.attr(operation, "OrthogonalHeight"))
    else:  # IfcRigidOperation (IFC4X3): coordinates are measure values
        eastings = val.number(val.attr(operation, "FirstCoordinate"))
        northings = val.number(val.attr(operation, "SecondCoordinate"))
        height = val.number(val.attr(operation, "Height"))
    abscissa = val.number(val.attr(operation, "XAxisAbscissa"))
    ordinate = val.number(val.attr(operation, "XAxisOrdinate"))
    result: dict[str, Any] = {
        "crs": val.text(val.attr(crs, "Name")),
        "eastings": eastings,
        "northings": northings,
        "orthogonal_height": height,
        "x_axis_abscissa": abscissa,
        "x_axis_ordinate": ordinate,
        "rotation_deg": _rotation(abscissa, ordinate),
        "scale": val.number(val.attr(operation, "Scale")),
        "operation": operation.is_a(),
    }
    for key in ("FactorX", "FactorY", "FactorZ"):  # IfcMapConversionScaled
        if (value := val.number(val.attr(operation, key))) is not None:
            result[key.lower().replace("factor", "factor_")] = value
    result.update(_crs_details(crs))
    return result


def _crs_details(crs: Any) -> dict[str, Any]:
    unit = val.attr(crs, "MapUnit")
    return {
        "crs_description": val.text(val.attr(crs, "Description")),
        "geodetic_datum": val.text(val.attr(crs, "GeodeticDatum")),
        "vertical_datum": val.text(val.attr(crs, "VerticalDatum")),
        "map_projection": val.text(val.attr(crs, "MapProjection")),
        "map_zone": val.text(val.attr(crs, "MapZone")),
        "map_unit": unit_name(unit) if unit is not None and hasattr(unit, "is_a") else None,
    }


def _rotation(abscissa: float | None, ordinate: float | None) -> float | None:
    """Angle of the local x axis from the easting axis, counter-clockwise, in degrees."""
    if abscissa is None or ordinate is None or (abscissa == 0 and ordinate == 0):
        return None
    return math.degrees(math.atan2(ordinate, abscissa))


def _from_property_sets(property_sets: tuple[Any, ...]) -> dict[str, Any] | None:
    """IFC2X3 georeferencing convention: ePSet_MapConversion + ePSet_ProjectedCRS."""
    conversion = crs = None
    for pset in property_sets:
        name = val.text(val.attr(pset, "Name"))
        if name == "ePSet_MapConversion" and conversion is None:
            conversion = _pset_values(pset)
        elif name == "ePSet_ProjectedCRS" and crs is None:
            crs = _pset_values(pset)
    if not conversion or not crs:
        return None
    abscissa, ordinate = (
        val.number(conversion.get("XAxisAbscissa")),
        val.number(conversion.get("XAxisOrdinate")),
    )
    return {
        "crs": val.text(crs.get("Name")),
        "eastings": val.number(conversion.get("Eastings")),
        "northings": val.number(conversion.get("Northings")),
        "orthogonal_height": val.number(conversion.get("OrthogonalHeight")),
        "x_axis_abscissa": abscissa,
        "x_axis_ordinate": ordinate,
        "rotation_deg": _rotation(abscissa, ordinate),
        "scale": val.number(conversion.get("Scale")),
        "operation": "ePSet_MapConversion",
        "crs_description": val.text(crs.get("Description")),
        "geodetic_datum": val.text(crs.get("GeodeticDatum")),
        "vertical_datum": val.text(crs.get("VerticalDatum")),
        "map_projection": val.text(crs.get("MapProjection")),
        "map_zone": val.text(crs.get("MapZone")),
        "map_unit": val.text(crs.get("MapUnit")),
    }


def _pset_values(pset: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    properties = val.attr(pset, "HasProperties")
    for prop in properties if isinstance(properties, (list, tuple)) else ():
        if prop is None or not prop.is_a("IfcPropertySingleValue"):
            continue
        name = val.text(val.attr(prop, "Name"))
        nominal = val.attr(prop, "NominalValue")
        if name:
            values[name] = val.attr(nominal, "wrappedValue") if nominal is not None else None
    return values


def site_location(sites: tuple[Any, ...]) -> dict[str, float | None] | None:
    for site in sites:
        latitude = _compound_angle(val.attr(site, "RefLatitude"))
        longitude = _compound_angle(val.attr(site, "RefLongitude"))
        if latitude is not None and longitude is not None:
            return {
                "latitude": latitude,
                "longitude": longitude,
                "elevation": val.number(val.attr(site, "RefElevation")),
            }
    return None


def _compound_angle(value: Any) -> float | None:
    """IfcCompoundPlaneAngleMeasure (degrees, minutes, seconds, millionths) -> decimal degrees."""
    if not isinstance(value, (list, tuple)) or not 3 <= len(value) <= 4:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return None
    degrees = 0.0
    for part, divisor in zip(value, (1, 60, 3600, 3_600_000_000), strict=False):
        degrees += part / divisor
    return degrees if -360 <= degrees <= 360 else None
