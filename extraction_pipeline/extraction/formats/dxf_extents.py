"""The extents of a DXF's model space: the world-coordinate bounding box of its geometry."""

from __future__ import annotations

import math
from typing import Any


class _Box:
    def __init__(self) -> None:
        self.lo = [math.inf, math.inf, math.inf]
        self.hi = [-math.inf, -math.inf, -math.inf]

    def add(self, x: float, y: float, z: float) -> None:
        if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(z)):
            return
        lo, hi = self.lo, self.hi
        if x < lo[0]:
            lo[0] = x
        if x > hi[0]:
            hi[0] = x
        if y < lo[1]:
            lo[1] = y
        if y > hi[1]:
            hi[1] = y
        if z < lo[2]:
            lo[2] = z
        if z > hi[2]:
            hi[2] = z

    @property
    def empty(self) -> bool:
        return self.lo[0] > self.hi[0]


def compute_extents(entities: list[Any]) -> tuple[dict[str, list[float]] | None, list[str]]:
    """World-coordinate bounding box of the entities' geometry, or None when there is none.

    Lines, points, circles, arcs and straight 2D polylines in the world plane are measured directly
    (exactly, and far faster); everything else (text, block references, curves, ...) goes through
    ``ezdxf.bbox``. The header's $EXTMIN/$EXTMAX are never used: they are often stale.
    """
    box = _Box()
    rest: list[Any] = []
    for entity in entities:
        try:
            if not _add_simple(box, entity):
                rest.append(entity)
        except Exception:
            rest.append(entity)
    # Measuring text is by far the most expensive (font metrics): texts whose generous bound already
    # lies inside the box of everything else cannot change the result and are not measured.
    texts = [entity for entity in rest if entity.dxftype() == "TEXT"]
    others = [entity for entity in rest if entity.dxftype() != "TEXT"]
    skipped = _add_with_ezdxf(box, others) if others else 0
    pending = [text for text in texts if not _text_inside(box, text)]
    if pending:
        skipped += _add_with_ezdxf(box, pending)
    warnings: list[str] = []
    if skipped:
        warnings.append(f"extents: the geometry of {skipped} entit(ies) could not be measured")
    if box.empty:
        return None, warnings
    return {"min": [float(v) for v in box.lo], "max": [float(v) for v in box.hi]}, warnings


def _in_world_plane(entity: Any) -> bool:
    extrusion = entity.dxf.get("extrusion")
    if extrusion is None:
        return True
    x, y, z = extrusion
    return abs(x) < 1e-12 and abs(y) < 1e-12 and z > 0


def _add_simple(box: _Box, entity: Any) -> bool:
    dxftype = entity.dxftype()
    dxf = entity.dxf
    if dxftype == "LINE":
        box.add(*dxf.start)
        box.add(*dxf.end)
        return True
    if dxftype == "POINT":
        box.add(*dxf.location)
        return True
    if dxftype in ("CIRCLE", "ARC") and _in_world_plane(entity):
        cx, cy, cz = dxf.center
        radius = abs(dxf.radius)
        if dxftype == "CIRCLE":
            box.add(cx - radius, cy - radius, cz)
            box.add(cx + radius, cy + radius, cz)
            return True
        start = dxf.start_angle % 360.0
        sweep = (dxf.end_angle % 360.0 - start) % 360.0
        if sweep == 0.0:
            sweep = 360.0
        for angle in (start, start + sweep):
            rad = math.radians(angle)
            box.add(cx + radius * math.cos(rad), cy + radius * math.sin(rad), cz)
        quadrant = 0.0
        while quadrant < 720.0:
            if start < quadrant < start + sweep:
                rad = math.radians(quadrant)
                box.add(cx + radius * math.cos(rad), cy + radius * math.sin(rad), cz)
            quadrant += 90.0
        return True
    if dxftype == "LWPOLYLINE" and _in_world_plane(entity):
        points = entity.get_points("xyb")
        if any(bulge for _, _, bulge in points):
            return False
        elevation = float(dxf.get("elevation", 0.0) or 0.0)
        for x, y, _ in points:
            box.add(x, y, elevation)
        return True
    return False


def _text_inside(box: _Box, text: Any) -> bool:
    """True when a TEXT surely lies inside ``box``: a square around its insertion and alignment points,
    far larger than any font can draw the string, is already covered."""
    if box.empty:
        return False
    try:
        dxf = text.dxf
        height = float(dxf.get("height", 0.0) or 0.0)
        width_factor = abs(float(dxf.get("width", 1.0) or 1.0))
        oblique = abs(float(dxf.get("oblique", 0.0) or 0.0)) % 180.0
        if not _in_world_plane(text) or height <= 0.0 or dxf.get("halign", 0) in (3, 5):
            return False  # other planes, no height, ALIGNED/FIT (they rescale the text): measure
        if 45.0 < oblique < 135.0:
            return False
        reach = height * (2.5 * max(width_factor, 1.0) * (len(dxf.get("text", "")) + 1) + 2.0)
        points = [dxf.insert]
        if dxf.hasattr("align_point"):
            points.append(dxf.align_point)
        for x, y, z in points:
            if not (
                box.lo[0] <= x - reach
                and x + reach <= box.hi[0]
                and box.lo[1] <= y - reach
                and y + reach <= box.hi[1]
                and box.lo[2] <= z <= box.hi[2]
            ):
                return False
        return True
    except Exception:
        return False


def _add_with_ezdxf(box: _Box, entities: list[Any]) -> int:
    """Measure entities with ezdxf.bbox; returns how many could not be measured."""
    from ezdxf import bbox

    try:
        _merge(box, bbox.extents(entities))
        return 0
    except MemoryError:
        raise
    except Exception:
        pass
    skipped = 0
    for entity in entities:  # one broken entity must not cost the whole result
        try:
            _merge(box, bbox.extents([entity]))
        except MemoryError:
            raise
        except Exception:
            skipped += 1
    return skipped


def _merge(box: _Box, found: Any) -> None:
    if found.has_data:
        box.add(*found.extmin)
        box.add(*found.extmax)
