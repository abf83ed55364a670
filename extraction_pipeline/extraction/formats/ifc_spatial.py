"""Element counts and the storeys, ordered by height (Elevation, else the placement's world z)."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from extraction_pipeline.extraction.formats import ifc_values as val

# Longest PlacementRelTo chain followed when computing a storey's height.
_MAX_PLACEMENT_DEPTH = 256


def element_counts(model: Any) -> dict[str, int]:
    counts = Counter(product.is_a() for product in val.by_type(model, "IfcProduct"))
    return dict(sorted(counts.items()))


def storeys(model: Any) -> tuple[list[str | None], list[float | None]]:
    """Storey names ordered by Elevation, or by the placement's height where Elevation is unset."""
    keyed = []
    for storey in val.by_type(model, "IfcBuildingStorey"):
        height = val.number(val.attr(storey, "Elevation"))
        if height is None:
            height = _placement_z(val.attr(storey, "ObjectPlacement"))
        keyed.append((height is None, height or 0.0, storey.id(), val.name(storey), height))
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
        matrix = _axis_matrix(val.attr(placement, "RelativePlacement"))
        if matrix is None:
            return None
        chain.append(matrix)
        placement = val.attr(placement, "PlacementRelTo")
    # The origin in the innermost system, carried outwards through each parent.
    point: tuple[float, ...] = (0.0, 0.0, 0.0)
    for matrix in chain:
        point = tuple(row[0] * point[0] + row[1] * point[1] + row[2] * point[2] + row[3] for row in matrix)
    return point[2] if math.isfinite(point[2]) else None


def _axis_matrix(axis: Any) -> Matrix | None:
    if axis is None or not hasattr(axis, "is_a"):
        return None
    coordinates = val.attr(val.attr(axis, "Location"), "Coordinates")
    if not isinstance(coordinates, (list, tuple)) or not coordinates:
        return None
    numbers = [val.number(c) for c in coordinates][:3]
    if any(c is None for c in numbers):
        return None
    origin = [*(c for c in numbers if c is not None), 0.0, 0.0][:3]
    z_axis: tuple[float, ...] | None
    if axis.is_a("IfcAxis2Placement3D"):
        z_axis = _direction(val.attr(axis, "Axis"), (0.0, 0.0, 1.0))
    elif axis.is_a("IfcAxis2Placement2D"):
        z_axis = (0.0, 0.0, 1.0)
    else:
        return None
    x_axis = _direction(val.attr(axis, "RefDirection"), (1.0, 0.0, 0.0))
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
    ratios = val.attr(entity, "DirectionRatios")
    if not isinstance(ratios, (list, tuple)) or not ratios:
        return None
    values = [val.number(r) for r in ratios][:3]
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
