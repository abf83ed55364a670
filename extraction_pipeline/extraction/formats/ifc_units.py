"""The project's length unit: its name and metres per unit (SI prefixes, conversion-based units)."""

from __future__ import annotations

from typing import Any

from extraction_pipeline.extraction.formats import ifc_values as val

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


def length_unit(model: Any, project: Any) -> tuple[str | None, float | None]:
    assignments = [val.attr(project, "UnitsInContext")] if project is not None else []
    assignments += list(val.by_type(model, "IfcUnitAssignment"))
    for assignment in assignments:
        units = val.attr(assignment, "Units")
        for unit in units if isinstance(units, (list, tuple)) else ():
            if val.attr(unit, "UnitType") == "LENGTHUNIT":
                return unit_name(unit), _unit_scale(unit, depth=0)
    return None, None


def unit_name(unit: Any) -> str | None:
    if unit.is_a("IfcSIUnit"):
        name = val.text(val.attr(unit, "Name"))
        prefix = val.text(val.attr(unit, "Prefix")) or ""
        return f"{prefix}{name}".upper() if name else None
    return val.text(val.attr(unit, "Name"))


def _unit_scale(unit: Any, depth: int) -> float | None:
    """Metres per unit for SI and conversion-based length units."""
    if unit is None or depth > 8:
        return None
    if unit.is_a("IfcSIUnit"):
        if val.attr(unit, "Name") != "METRE":
            return None
        prefix = val.attr(unit, "Prefix")
        return _SI_PREFIXES.get(prefix) if prefix else 1.0
    if unit.is_a("IfcConversionBasedUnit"):
        factor = val.attr(unit, "ConversionFactor")
        value = val.number(val.attr(factor, "ValueComponent"))
        base = _unit_scale(val.attr(factor, "UnitComponent"), depth + 1)
        return value * base if value is not None and base is not None else None
    return None
