"""IFC metadata with ifcopenshell: STEP physical files, ifcZIP and ifcXML."""

from __future__ import annotations

import math
import tempfile
import zipfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import Field

from extraction_pipeline.extraction.archives import unpack_member
from extraction_pipeline.extraction.context import ExtractionContext, FormatResult
from extraction_pipeline.extraction.envelope import FormatMetadata
from extraction_pipeline.extraction.errors import (
    CorruptFile,
    UnsupportedFormat,
)
from extraction_pipeline.extraction.text import valid_unicode
from extraction_pipeline.extraction.versions import EXTRACTOR_VERSIONS

NAME = "ifc"
VERSION = EXTRACTOR_VERSIONS[NAME]

_CHUNK = 1024 * 1024
# How many native parser messages become warnings before they are summarised.
_MAX_LOG_WARNINGS = 10
# Longest PlacementRelTo chain followed when computing a storey's height.
_MAX_PLACEMENT_DEPTH = 256
_SI_PREFIXES = {
    "EXA": 1e18,
    "PETA": 1e15,
    "TERA": 1e12,
    "GIGA": 1e9,
    "MEGA": 1e6,
    "KILO": 1e3,
    "HECTO": 1e2,
    "DECA": 1e1,
    "DECI": 1e-1,
    "CENTI": 1e-2,
    "MILLI": 1e-3,
    "MICRO": 1e-6,
    "NANO": 1e-9,
    "PICO": 1e-12,
    "FEMTO": 1e-15,
    "ATTO": 1e-18,
}


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
    variant = context.detection.variant or _sniff_variant(path)
    warnings: list[str] = []
    if variant == "ifczip":
        with tempfile.TemporaryDirectory(prefix="ifczip-") as tmp:
            member, inner_path = _inflate_member(path, Path(tmp), context.max_bytes, warnings)
            if _sniff_variant(inner_path) == "ifcxml":
                model, logger = _open_ifcxml(inner_path, inside_zip=True)
            else:
                model, logger = _open_spf(inner_path, warnings)
            metadata = _metadata(model, logger, warnings)
            metadata.member = member
        return FormatResult(metadata=metadata, warnings=warnings, variant="ifczip")
    if variant == "ifcxml":
        model, logger = _open_ifcxml(path, inside_zip=False)
    else:
        model, logger = _open_spf(path, warnings)
    metadata = _metadata(model, logger, warnings)
    return FormatResult(metadata=metadata, warnings=warnings, variant=variant)


# --- reading ---------------------------------------------------------------------------------


def _sniff_variant(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head.startswith(b"PK\x03\x04"):
        return "ifczip"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return "ifcxml"
    return "spf"


def _inflate_member(path: Path, folder: Path, max_bytes: int, warnings: list[str]) -> tuple[str, Path]:
    """Inflate the IFC model of an ifcZIP into ``folder``, never more than ``max_bytes``."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CorruptFile(f"the ifcZIP archive cannot be read: {exc}") from exc
    with archive:
        members = [
            info
            for info in archive.infolist()
            if not info.is_dir() and not _basename(info.filename).startswith("._")
        ]
        models = [i for i in members if i.filename.lower().endswith(".ifc")]
        models += [i for i in members if i.filename.lower().endswith((".ifcxml", ".xml"))]
        if not models:
            raise UnsupportedFormat("the zip archive holds no .ifc or .ifcXML model")
        info = models[0]
        if len(models) > 1:
            warnings.append(f"the ifcZIP holds {len(models)} models; only {info.filename!r} was read")
        suffix = ".ifcxml" if info.filename.lower().endswith((".ifcxml", ".xml")) else ".ifc"
        target = folder / f"model{suffix}"
        unpack_member(archive, info, target, max_bytes, f"the ifcZIP member {info.filename!r}")
    return info.filename, target


def _basename(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def _new_logger() -> Any:
    from ifcopenshell import ifcopenshell_wrapper

    factory = getattr(ifcopenshell_wrapper, "logger", None)
    if factory is None:
        return None
    logger = factory()
    logger.output_format(factory.FMT_INMEMORY)  # keep messages for log_messages(), print nothing
    return logger


def _open_spf(path: Path, warnings: list[str]) -> tuple[Any, Any]:
    import ifcopenshell

    # The logger collects the parser's messages; the file keeps a pointer to it, so it must
    # outlive the file (a temporary logger makes later reads crash). Hence it is returned too.
    logger = _new_logger()
    kwargs = {"logger": logger} if logger is not None else {}
    try:
        # The format is given explicitly: uploads have arbitrary names (".bin", no extension).
        model = ifcopenshell.open(path, format=".ifc", **kwargs)
    except ifcopenshell.SchemaError as exc:
        raise UnsupportedFormat(
            valid_unicode(f"{exc} (ifcopenshell reads {', '.join(_supported_schemas())})")
        ) from exc
    except ifcopenshell.Error as exc:
        raise CorruptFile(
            valid_unicode(f"ifcopenshell cannot read the file: {exc}{_log_summary(logger)}")
        ) from exc
    except OSError as exc:
        raise CorruptFile(valid_unicode(f"ifcopenshell cannot read the file: {exc}")) from exc
    truncated = _looks_truncated(path)
    if not model.types():
        if truncated:
            raise CorruptFile(
                f"no entity instance could be read and the file ends without END-ISO-10303-21"
                f"{_log_summary(logger)}"
            )
        warnings.append("the DATA section holds no entity instances")
    elif truncated:
        warnings.append("the file ends without END-ISO-10303-21; it may be truncated")
    return model, logger


def _supported_schemas() -> list[str]:
    from ifcopenshell import ifcopenshell_wrapper

    return [name for name in ifcopenshell_wrapper.schema_names() if name.upper().startswith("IFC")]


def _looks_truncated(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - 4096))
        tail = handle.read()
    return b"END-ISO-10303-21" not in tail.upper()


def _log_summary(logger: Any) -> str:
    messages = _log_messages(logger, ("ERROR",))
    return f" ({'; '.join(messages[:3])})" if messages else ""


def _log_messages(logger: Any, severities: tuple[str, ...]) -> list[str]:
    if logger is None:
        return []
    found: list[str] = []
    try:
        for entry in logger.log_messages():
            info = entry.to_dict()
            if str(info.get("severity", "")).upper() not in severities:
                continue
            text = valid_unicode(str(info.get("message", ""))).strip()
            instance = valid_unicode(str(info.get("instance") or "")).strip()
            if instance:
                text = f"{text} ({instance[:200]})"
            if text and text not in found:
                found.append(text[:500])
    except Exception:  # the log is a nicety; never fail the extraction over it
        return found
    return found


def _open_ifcxml(path: Path, *, inside_zip: bool) -> tuple[Any, Any]:
    """ifcXML: refuse DTDs and entities, then let ifcopenshell try (0.9.0 has no ifcXML reader)."""
    import ifcopenshell

    where = "the ifcXML model inside the ifcZIP" if inside_zip else "the ifcXML file"
    _refuse_xml_declarations(path, where)
    logger = _new_logger()
    kwargs = {"logger": logger} if logger is not None else {}
    try:
        model = ifcopenshell.open(path, format=".ifcXML", **kwargs)
    except NotImplementedError as exc:
        raise UnsupportedFormat(
            f"{where} cannot be read: ifcopenshell {ifcopenshell.version} has no ifcXML reader ({exc}); "
            "export the model as IFC-SPF (.ifc) instead"
        ) from exc
    except ifcopenshell.Error as exc:
        raise CorruptFile(valid_unicode(f"ifcopenshell cannot read {where}: {exc}")) from exc
    return model, logger


def _refuse_xml_declarations(path: Path, where: str) -> None:
    """ifcXML never needs a DTD; one with entities could expand without bound (billion laughs)."""
    overlap = b""
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            window = (overlap + chunk).upper()
            if b"<!DOCTYPE" in window or b"<!ENTITY" in window:
                raise UnsupportedFormat(f"{where} declares a DTD or entities, which are refused for safety")
            overlap = chunk[-16:]


# --- metadata --------------------------------------------------------------------------------


def _metadata(model: Any, logger: Any, warnings: list[str]) -> IfcMetadata:
    header = _header(model)
    projects = _by_type(model, "IfcProject")
    if len(projects) > 1:
        warnings.append(f"the file holds {len(projects)} IfcProject instances; the first was used")
    project = projects[0] if projects else None
    storeys, elevations = _storeys(model)
    unit, scale = _length_unit(model, project)
    sites = _by_type(model, "IfcSite")
    property_sets = _by_type(model, "IfcPropertySet")
    metadata = IfcMetadata(
        schema=_text(getattr(model, "schema", None)),
        schema_identifier=header["schema_identifier"] or _text(getattr(model, "schema_identifier", None)),
        originating_system=header["originating_system"],
        preprocessor_version=header["preprocessor_version"],
        author=header["author"],
        organization=header["organization"],
        timestamp=header["timestamp"],
        project_name=_name(project) if project is not None else None,
        sites=[_name(site) for site in sites],
        buildings=[_name(building) for building in _by_type(model, "IfcBuilding")],
        storeys=storeys,
        element_counts=_element_counts(model),
        property_set_count=len(property_sets),
        length_unit=unit,
        georeference=_georeference(model, property_sets),
        storey_elevations=elevations,
        length_unit_scale=scale,
        quantity_set_count=len(_by_type(model, "IfcElementQuantity")),
        site_location=_site_location(sites),
        view_definition=header["view_definition"],
    )
    messages = _log_messages(logger, ("WARNING", "ERROR"))
    warnings.extend(f"ifcopenshell: {m}" for m in messages[:_MAX_LOG_WARNINGS])
    if len(messages) > _MAX_LOG_WARNINGS:
        warnings.append(f"ifcopenshell reported {len(messages) - _MAX_LOG_WARNINGS} more problems")
    return metadata


def _header(model: Any) -> dict[str, str | None]:
    header = getattr(model, "header", None)
    file_name = _safe_attr(header, "file_name")
    file_schema = _safe_attr(header, "file_schema")
    description = _safe_attr(header, "file_description")
    identifiers = _safe_attr(file_schema, "schema_identifiers")
    identifier = None
    if isinstance(identifiers, (list, tuple)) and identifiers:
        identifier = _text(identifiers[0])
    view = None
    lines = _safe_attr(description, "description")
    for line in lines if isinstance(lines, (list, tuple)) else ():
        if isinstance(line, str) and line.strip().lower().startswith("viewdefinition"):
            inside = line[line.find("[") + 1 : line.find("]")] if "[" in line and "]" in line else ""
            view = inside.strip() or None
            break
    return {
        "schema_identifier": identifier,
        "originating_system": _text(_safe_attr(file_name, "originating_system")),
        "preprocessor_version": _text(_safe_attr(file_name, "preprocessor_version")),
        "author": _joined(_safe_attr(file_name, "author")),
        "organization": _joined(_safe_attr(file_name, "organization")),
        "timestamp": _timestamp(_safe_attr(file_name, "time_stamp")),
        "view_definition": view,
    }


def _safe_attr(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    try:
        return getattr(obj, name)
    except Exception:  # a header entity with too few attributes
        return None


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = valid_unicode(value).strip()
    return value or None


def _joined(value: Any) -> str | None:
    """FILE_NAME author/organization are lists of strings; empty entries mean unknown."""
    items = value if isinstance(value, (list, tuple)) else [value]
    parts = [text for text in (_text(item) for item in items) if text]
    return "; ".join(parts) or None


def _timestamp(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    except ValueError:
        return text  # kept as written when it is not ISO 8601


def _by_type(model: Any, ifc_class: str) -> tuple[Any, ...]:
    try:
        return tuple(model.by_type(ifc_class))
    except RuntimeError:  # the class does not exist in this schema
        return ()


def _attr(entity: Any, name: str) -> Any:
    try:
        return getattr(entity, name, None)
    except Exception:  # malformed instances may fail on access
        return None


def _name(entity: Any) -> str | None:
    return _text(_attr(entity, "Name")) or _text(_attr(entity, "LongName"))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        wrapped = _attr(value, "wrappedValue") if value is not None and hasattr(value, "is_a") else None
        if isinstance(wrapped, (int, float)) and not isinstance(wrapped, bool):
            value = wrapped
        else:
            return None
    number = float(value)
    return number if math.isfinite(number) else None


def _element_counts(model: Any) -> dict[str, int]:
    counts = Counter(product.is_a() for product in _by_type(model, "IfcProduct"))
    return dict(sorted(counts.items()))


# --- storeys ---------------------------------------------------------------------------------


def _storeys(model: Any) -> tuple[list[str | None], list[float | None]]:
    """Storey names ordered by Elevation, or by the placement's height where Elevation is unset."""
    keyed = []
    for storey in _by_type(model, "IfcBuildingStorey"):
        height = _number(_attr(storey, "Elevation"))
        if height is None:
            height = _placement_z(_attr(storey, "ObjectPlacement"))
        keyed.append((height is None, height or 0.0, storey.id(), _name(storey), height))
    keyed.sort(key=lambda item: item[:3])
    return [item[3] for item in keyed], [item[4] for item in keyed]


Matrix = tuple[tuple[float, float, float, float], ...]  # 3 rows of a 4x4 affine transform


def _placement_z(placement: Any) -> float | None:
    """World z of a local placement's origin, following PlacementRelTo (cycles are cut)."""
    chain: list[Matrix] = []
    seen: set[int] = set()
    while placement is not None:
        if not placement.is_a("IfcLocalPlacement"):
            return None  # grid or linear placements: no simple height
        if placement.id() in seen or len(seen) >= _MAX_PLACEMENT_DEPTH:
            return None
        seen.add(placement.id())
        matrix = _axis_matrix(_attr(placement, "RelativePlacement"))
        if matrix is None:
            return None
        chain.append(matrix)
        placement = _attr(placement, "PlacementRelTo")
    # The origin in the innermost system, carried outwards through each parent.
    point: tuple[float, ...] = (0.0, 0.0, 0.0)
    for matrix in chain:
        point = tuple(row[0] * point[0] + row[1] * point[1] + row[2] * point[2] + row[3] for row in matrix)
    return point[2] if math.isfinite(point[2]) else None


def _axis_matrix(axis: Any) -> Matrix | None:
    if axis is None or not hasattr(axis, "is_a"):
        return None
    coordinates = _attr(_attr(axis, "Location"), "Coordinates")
    if not isinstance(coordinates, (list, tuple)) or not coordinates:
        return None
    numbers = [_number(c) for c in coordinates][:3]
    if any(c is None for c in numbers):
        return None
    origin = [*(c for c in numbers if c is not None), 0.0, 0.0][:3]
    z_axis: tuple[float, ...] | None
    if axis.is_a("IfcAxis2Placement3D"):
        z_axis = _direction(_attr(axis, "Axis"), (0.0, 0.0, 1.0))
    elif axis.is_a("IfcAxis2Placement2D"):
        z_axis = (0.0, 0.0, 1.0)
    else:
        return None
    x_axis = _direction(_attr(axis, "RefDirection"), (1.0, 0.0, 0.0))
    if z_axis is None or x_axis is None:
        return None
    z_axis = _unit(z_axis)
    if z_axis is None:
        return None
    dot = sum(a * b for a, b in zip(x_axis, z_axis, strict=True))
    x_axis = _unit(tuple(a - dot * b for a, b in zip(x_axis, z_axis, strict=True)))
    if z_axis is None or x_axis is None:
        return None
    y_axis = (
        z_axis[1] * x_axis[2] - z_axis[2] * x_axis[1],
        z_axis[2] * x_axis[0] - z_axis[0] * x_axis[2],
        z_axis[0] * x_axis[1] - z_axis[1] * x_axis[0],
    )
    return tuple((x_axis[i], y_axis[i], z_axis[i], origin[i]) for i in range(3))


def _direction(entity: Any, default: tuple[float, float, float]) -> tuple[float, ...] | None:
    if entity is None:
        return default
    ratios = _attr(entity, "DirectionRatios")
    if not isinstance(ratios, (list, tuple)) or not ratios:
        return None
    values = [_number(r) for r in ratios][:3]
    if any(v is None for v in values):
        return None
    return tuple([*(v for v in values if v is not None), 0.0, 0.0][:3])


def _unit(vector: tuple[float, ...] | None) -> tuple[float, ...] | None:
    if vector is None:
        return None
    length = math.sqrt(sum(v * v for v in vector))
    if not math.isfinite(length) or length < 1e-12:
        return None
    return tuple(v / length for v in vector)


# --- units and georeferencing ----------------------------------------------------------------


def _length_unit(model: Any, project: Any) -> tuple[str | None, float | None]:
    assignments = [_attr(project, "UnitsInContext")] if project is not None else []
    assignments += list(_by_type(model, "IfcUnitAssignment"))
    for assignment in assignments:
        units = _attr(assignment, "Units")
        for unit in units if isinstance(units, (list, tuple)) else ():
            if _attr(unit, "UnitType") == "LENGTHUNIT":
                return _unit_name(unit), _unit_scale(unit, depth=0)
    return None, None


def _unit_name(unit: Any) -> str | None:
    if unit.is_a("IfcSIUnit"):
        name = _text(_attr(unit, "Name"))
        prefix = _text(_attr(unit, "Prefix")) or ""
        return f"{prefix}{name}".upper() if name else None
    return _text(_attr(unit, "Name"))


def _unit_scale(unit: Any, depth: int) -> float | None:
    """Metres per unit for SI and conversion-based length units."""
    if unit is None or depth > 8:
        return None
    if unit.is_a("IfcSIUnit"):
        if _attr(unit, "Name") != "METRE":
            return None
        prefix = _attr(unit, "Prefix")
        return _SI_PREFIXES.get(prefix) if prefix else 1.0
    if unit.is_a("IfcConversionBasedUnit"):
        factor = _attr(unit, "ConversionFactor")
        value = _number(_attr(factor, "ValueComponent"))
        base = _unit_scale(_attr(factor, "UnitComponent"), depth + 1)
        return value * base if value is not None and base is not None else None
    return None


def _georeference(model: Any, property_sets: tuple[Any, ...]) -> dict[str, Any] | None:
    operations = [
        op for op in _by_type(model, "IfcCoordinateOperation") if _attr(op, "TargetCRS") is not None
    ]
    if operations:
        # Prefer the operation that georeferences the 3D model context.
        operations.sort(key=lambda op: (not _is_model_context(_attr(op, "SourceCRS")), op.id()))
        return _from_operation(operations[0])
    return _from_property_sets(property_sets)


def _is_model_context(context: Any) -> bool:
    return (
        context is not None
        and context.is_a("IfcGeometricRepresentationContext")
        and not context.is_a("IfcGeometricRepresentationSubContext")
        and _attr(context, "ContextType") == "Model"
    )


def _from_operation(operation: Any) -> dict[str, Any]:
    crs = _attr(operation, "TargetCRS")
    if operation.is_a("IfcMapConversion"):
        eastings, northings = _number(_attr(operation, "Eastings")), _number(_attr(operation, "Northings"))
        height = _number(_attr(operation, "OrthogonalHeight"))
    else:  # IfcRigidOperation (IFC4X3): coordinates are measure values
        eastings = _number(_attr(operation, "FirstCoordinate"))
        northings = _number(_attr(operation, "SecondCoordinate"))
        height = _number(_attr(operation, "Height"))
    abscissa = _number(_attr(operation, "XAxisAbscissa"))
    ordinate = _number(_attr(operation, "XAxisOrdinate"))
    result: dict[str, Any] = {
        "crs": _text(_attr(crs, "Name")),
        "eastings": eastings,
        "northings": northings,
        "orthogonal_height": height,
        "x_axis_abscissa": abscissa,
        "x_axis_ordinate": ordinate,
        "rotation_deg": _rotation(abscissa, ordinate),
        "scale": _number(_attr(operation, "Scale")),
        "operation": operation.is_a(),
    }
    for key in ("FactorX", "FactorY", "FactorZ"):  # IfcMapConversionScaled
        if (value := _number(_attr(operation, key))) is not None:
            result[key.lower().replace("factor", "factor_")] = value
    result.update(_crs_details(crs))
    return result


def _crs_details(crs: Any) -> dict[str, Any]:
    unit = _attr(crs, "MapUnit")
    return {
        "crs_description": _text(_attr(crs, "Description")),
        "geodetic_datum": _text(_attr(crs, "GeodeticDatum")),
        "vertical_datum": _text(_attr(crs, "VerticalDatum")),
        "map_projection": _text(_attr(crs, "MapProjection")),
        "map_zone": _text(_attr(crs, "MapZone")),
        "map_unit": _unit_name(unit) if unit is not None and hasattr(unit, "is_a") else None,
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
        name = _text(_attr(pset, "Name"))
        if name == "ePSet_MapConversion" and conversion is None:
            conversion = _pset_values(pset)
        elif name == "ePSet_ProjectedCRS" and crs is None:
            crs = _pset_values(pset)
    if not conversion or not crs:
        return None
    abscissa, ordinate = _number(conversion.get("XAxisAbscissa")), _number(conversion.get("XAxisOrdinate"))
    return {
        "crs": _text(crs.get("Name")),
        "eastings": _number(conversion.get("Eastings")),
        "northings": _number(conversion.get("Northings")),
        "orthogonal_height": _number(conversion.get("OrthogonalHeight")),
        "x_axis_abscissa": abscissa,
        "x_axis_ordinate": ordinate,
        "rotation_deg": _rotation(abscissa, ordinate),
        "scale": _number(conversion.get("Scale")),
        "operation": "ePSet_MapConversion",
        "crs_description": _text(crs.get("Description")),
        "geodetic_datum": _text(crs.get("GeodeticDatum")),
        "vertical_datum": _text(crs.get("VerticalDatum")),
        "map_projection": _text(crs.get("MapProjection")),
        "map_zone": _text(crs.get("MapZone")),
        "map_unit": _text(crs.get("MapUnit")),
    }


def _pset_values(pset: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    properties = _attr(pset, "HasProperties")
    for prop in properties if isinstance(properties, (list, tuple)) else ():
        if prop is None or not prop.is_a("IfcPropertySingleValue"):
            continue
        name = _text(_attr(prop, "Name"))
        nominal = _attr(prop, "NominalValue")
        if name:
            values[name] = _attr(nominal, "wrappedValue") if nominal is not None else None
    return values


def _site_location(sites: tuple[Any, ...]) -> dict[str, float | None] | None:
    for site in sites:
        latitude = _compound_angle(_attr(site, "RefLatitude"))
        longitude = _compound_angle(_attr(site, "RefLongitude"))
        if latitude is not None and longitude is not None:
            return {
                "latitude": latitude,
                "longitude": longitude,
                "elevation": _number(_attr(site, "RefElevation")),
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
