"""DXF metadata with ezdxf (ASCII and binary, recovering damaged files).

Reading strategy: ``ezdxf.readfile`` first (it reads ASCII and binary DXF and is the fast path); only
when it fails is the file handed to ``ezdxf.recover``, which repairs broken structure but reads ASCII
DXF only. A recovered file succeeds with ``recovered: true``, a warning and the auditor's fix count.

ezdxf fabricates or rewrites some facts while loading (a default header for files without one, a
fresh ``$TDCREATE``, layers "0" and "Defpoints", R13/R14 arrow blocks). A light pre-scan of the raw
tags before the ENTITIES section (header variables, LAYER and BLOCK names) tells which facts the file
really carries. Everything stays linear in the size of the file.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extraction_pipeline.extraction.context import ExtractionContext, FormatResult
from extraction_pipeline.extraction.envelope import FormatMetadata
from extraction_pipeline.extraction.errors import CorruptFile
from extraction_pipeline.extraction.formats.autocad import julian_to_iso
from extraction_pipeline.extraction.text import valid_unicode
from extraction_pipeline.extraction.versions import EXTRACTOR_VERSIONS

NAME = "dxf"
VERSION = EXTRACTOR_VERSIONS[NAME]

BINARY_SENTINEL = b"AutoCAD Binary DXF\r\n\x1a\x00"

RELEASES = {
    "AC1002": "R2.5",
    "AC1003": "R2.6",
    "AC1004": "R9",
    "AC1006": "R10",
    "AC1009": "R12",
    "AC1012": "R13",
    "AC1014": "R14",
    "AC1015": "R2000",
    "AC1018": "R2004",
    "AC1021": "R2007",
    "AC1024": "R2010",
    "AC1027": "R2013",
    "AC1032": "R2018",
}

# $INSUNITS codes (0 = unitless).
UNITS = {
    1: "in",
    2: "ft",
    3: "mi",
    4: "mm",
    5: "cm",
    6: "m",
    7: "km",
    8: "microinches",
    9: "mils",
    10: "yd",
    11: "angstroms",
    12: "nanometers",
    13: "microns",
    14: "dm",
    15: "decameters",
    16: "hectometers",
    17: "gigameters",
    18: "astronomical units",
    19: "light years",
    20: "parsecs",
    21: "US survey feet",
    22: "US survey inches",
    23: "US survey yards",
    24: "US survey miles",
}

TEXT_TYPES = ("TEXT", "MTEXT")
# Sections after which the pre-scan has nothing more to learn.
_STOP_SECTIONS = {"ENTITIES", "OBJECTS", "ACDSDATA", "THUMBNAILIMAGE"}
_ACADVER = re.compile(r"^AC\d{4}$")
# Julian day number of 2000-01-01; AutoCAD counts the fraction of the day from midnight.
_MAX_FIX_MESSAGES = 3


class DxfMetadata(FormatMetadata):
    dxf_version: str | None
    release: str | None
    binary: bool
    units: str | None
    layer_names: list[str]
    block_names: list[str]
    layout_names: list[str]
    entity_counts: dict[str, int]
    extents: dict[str, list[float]] | None
    text_count: int
    title_block_attributes: dict[str, Any]
    recovered: bool
    audit_fixes: int
    # Additions beyond the contract.
    created_at: str | None = None
    modified_at: str | None = None
    units_code: int | None = None
    anonymous_block_count: int = 0
    attribute_count: int = 0


@dataclass
class RawScan:
    """Facts read from the raw tags in front of the ENTITIES section."""

    header_found: bool = False
    header: dict[str, dict[int, str]] = field(default_factory=dict)
    layer_names: set[str] = field(default_factory=set)  # lower-cased
    block_names: set[str] = field(default_factory=set)  # lower-cased

    def value(self, name: str, code: int) -> str | None:
        return self.header.get(name, {}).get(code)


def extract(path: Path, context: ExtractionContext) -> FormatResult:
    with path.open("rb") as handle:
        binary = handle.read(len(BINARY_SENTINEL)) == BINARY_SENTINEL
    doc, auditor, warnings = _load(path, binary)
    raw = scan_raw(path, binary)

    version = _version(raw, doc)
    units_code = _int(raw.value("$INSUNITS", 70))
    if units_code is None and auditor is not None and not raw.header_found:
        # recover rescues header variables that stand outside any section.
        units_code = _int(doc.header.get("$INSUNITS"))
    msp = doc.modelspace()
    counts: Counter[str] = Counter()
    text_count = 0
    attribute_count = 0
    geometry: list[Any] = []
    for entity in msp:
        dxftype = entity.dxftype()
        counts[dxftype] += 1
        if dxftype in TEXT_TYPES:
            text_count += 1
        elif dxftype == "INSERT":
            attribute_count += len(entity.attribs)
        geometry.append(entity)
    extents, extent_warnings = compute_extents(geometry)
    warnings.extend(extent_warnings)

    block_names, anonymous = _block_names(doc, raw, version)
    metadata = DxfMetadata(
        dxf_version=version,
        release=RELEASES.get(version) if version else None,
        binary=binary,
        units=UNITS.get(units_code) if units_code is not None else None,
        layer_names=_layer_names(doc, raw),
        block_names=block_names,
        layout_names=[clean_text(name) for name in doc.layouts.names_in_taborder()],
        entity_counts=dict(sorted(counts.items())),
        extents=extents,
        text_count=text_count + attribute_count,
        title_block_attributes=title_block_attributes(doc),
        recovered=auditor is not None,
        audit_fixes=len(auditor.fixes) if auditor is not None else 0,
        created_at=julian_to_iso(raw.value("$TDCREATE", 40)),
        modified_at=julian_to_iso(raw.value("$TDUPDATE", 40)),
        units_code=units_code,
        anonymous_block_count=anonymous,
        attribute_count=attribute_count,
    )
    return FormatResult(metadata=metadata, warnings=warnings, variant="binary" if binary else "ascii")


# -- loading ---------------------------------------------------------------------------------------


def _load(path: Path, binary: bool) -> tuple[Any, Any, list[str]]:
    """The document, the recover auditor (None when the standard reader succeeded) and warnings."""
    import ezdxf
    from ezdxf import recover

    try:
        return ezdxf.readfile(path), None, []
    except MemoryError:
        raise
    except Exception as exc:  # DXFStructureError, ValueError, OSError, StopIteration, ...
        first_error = _describe(exc)
    if binary:
        raise CorruptFile(f"damaged binary DXF, ezdxf cannot read it: {first_error}")
    try:
        doc, auditor = recover.readfile(path)
    except MemoryError:
        raise
    except Exception as exc:
        raise CorruptFile(
            f"not a readable DXF file: the reader failed ({first_error}) and recovery failed "
            f"({_describe(exc)})"
        ) from exc
    fixes = len(auditor.fixes)
    warning = f"damaged DXF recovered by ezdxf.recover with {fixes} fix(es); the standard reader failed: "
    warning += first_error
    shown = [fix.message for fix in auditor.fixes[:_MAX_FIX_MESSAGES]]
    if shown:
        warning += "; first fixes: " + " | ".join(shown)
    warnings = [warning]
    if auditor.errors:
        warnings.append(
            f"{len(auditor.errors)} error(s) in the DXF could not be fixed; the content may be incomplete"
        )
    return doc, auditor, warnings


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc).strip()
    if text.startswith(name + ":"):
        text = text[len(name) + 1 :].strip()
    return f"{name}: {text}"[:500] if text else name


# -- raw pre-scan ----------------------------------------------------------------------------------


def scan_raw(path: Path, binary: bool) -> RawScan:
    """Header variables and LAYER/BLOCK names as written, up to the ENTITIES section.

    Tolerant: a broken tag ends the scan with what was read so far.
    """
    raw = RawScan()
    tags = _binary_tags(path) if binary else _ascii_tags(path)
    section: str | None = None
    expect_section_name = False
    entity: str | None = None
    named = False
    variable: str | None = None
    try:
        for code, value in tags:
            if code == 0:
                entity, named, variable = value.strip(), False, None
                if entity == "SECTION":
                    expect_section_name = True
                elif entity == "ENDSEC":
                    section = None
                elif entity == "EOF":
                    break
                continue
            if expect_section_name:
                expect_section_name = False
                if code == 2:
                    section = value.strip().upper()
                    if section in _STOP_SECTIONS:
                        break
                    if section == "HEADER":
                        raw.header_found = True
                    continue
            if code == 9 and (section == "HEADER" or section is None) and value.strip().startswith("$"):
                variable = value.strip().upper()
                raw.header.setdefault(variable, {})
                continue
            if variable is not None:
                raw.header[variable].setdefault(code, value.strip())
            elif code == 2 and not named:
                named = True
                if section == "TABLES" and entity == "LAYER":
                    raw.layer_names.add(value.strip().lower())
                elif section == "BLOCKS" and entity == "BLOCK":
                    raw.block_names.add(value.strip().lower())
    except (ValueError, UnicodeDecodeError, IndexError, EOFError, OSError):
        pass
    except Exception:  # ezdxf's binary tag loader on a damaged file
        pass
    return raw


def _ascii_tags(path: Path) -> Iterator[tuple[int, str]]:
    # latin-1 maps every byte; universal newlines accept \n, \r\n and \r.
    with path.open(encoding="latin-1", newline=None) as handle:
        while True:
            code_line = handle.readline()
            value_line = handle.readline()
            if not code_line or not value_line:
                return
            code = code_line.strip()
            if not code and not value_line.strip():
                continue  # blank lines between tags
            yield int(code), value_line.rstrip("\n")


def _binary_tags(path: Path) -> Iterator[tuple[int, str]]:
    from ezdxf.lldxf.tagger import binary_tags_loader

    data = path.read_bytes()
    for tag in binary_tags_loader(data, errors="surrogateescape"):
        value = tag.value
        yield tag.code, value if isinstance(value, str) else str(value)


# -- facts -----------------------------------------------------------------------------------------


def _version(raw: RawScan, doc: Any) -> str | None:
    written = (raw.value("$ACADVER", 1) or "").upper()
    if _ACADVER.match(written):
        return written
    # No header (or no $ACADVER): ezdxf reads it as R12, the convention for such files. Its
    # loaded_dxfversion is the version before the R13/R14 -> R2000 upgrade it applies on load.
    loaded = getattr(doc, "loaded_dxfversion", None) or doc.dxfversion
    return loaded if loaded and _ACADVER.match(loaded) else None


def _int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def clean_text(value: Any) -> str:
    """Decode ``\\U+XXXX`` / ``\\M+cXXXX`` escapes and drop undecodable bytes (lone surrogates)."""
    from ezdxf.lldxf.encoding import (
        decode_dxf_unicode,
        decode_mif_to_unicode,
        has_dxf_unicode,
        has_mif_encoding,
    )

    text = str(value)
    if "\\" in text:
        if has_dxf_unicode(text):
            text = decode_dxf_unicode(text)
        if has_mif_encoding(text):
            text = decode_mif_to_unicode(text)
    return valid_unicode(text)


def _layer_names(doc: Any, raw: RawScan) -> list[str]:
    """The LAYER table as written, plus layers that entities use without a table entry (R12)."""
    used: dict[str, str] = {}
    for layout in _all_entity_spaces(doc):
        for entity in layout:
            name = entity.dxf.get("layer")
            if name is not None and name.lower() not in used:
                used[name.lower()] = name
    names: list[str] = []
    seen: set[str] = set()
    for layer in doc.layers:
        name = layer.dxf.name
        key = name.lower()
        # ezdxf creates "0" and "Defpoints" when the file has none: not the file's layers.
        if key in ("0", "defpoints") and key not in raw.layer_names and key not in used:
            continue
        if key not in seen:
            seen.add(key)
            names.append(clean_text(name))
    for key, name in used.items():
        if key not in seen:
            seen.add(key)
            names.append(clean_text(name))
    return names


def _all_entity_spaces(doc: Any) -> Iterable[Any]:
    """Every block definition, layouts included (their entities live in *Model_Space/*Paper_Space)."""
    return doc.blocks


def _block_names(doc: Any, raw: RawScan, version: str | None) -> tuple[list[str], int]:
    """Named block definitions (no layout or anonymous blocks) and the number of anonymous ones."""
    arrows: set[str] = set()
    if (getattr(doc, "loaded_dxfversion", None) or version) in ("AC1012", "AC1014"):
        # ezdxf adds the standard arrow blocks when it upgrades R13/R14 files to R2000.
        from ezdxf.render.arrows import ARROWS

        arrows = {ARROWS.block_name(name).lower() for name in ARROWS.__acad__}
    names: list[str] = []
    anonymous = 0
    for block in doc.blocks:
        name = block.name
        if block.is_any_layout:
            continue
        if name.startswith("*"):
            anonymous += 1
            continue
        if name.lower() in arrows and name.lower() not in raw.block_names:
            continue
        names.append(clean_text(name))
    return names, anonymous


def title_block_attributes(doc: Any) -> dict[str, str]:
    """Tag -> value of the ATTRIBs of block references; paper space first, where title blocks live.

    When several references carry the same tag, the first one wins.
    """
    layouts = [doc.layouts.get(name) for name in doc.layouts.names_in_taborder()]
    layouts.sort(key=lambda layout: layout.is_modelspace)  # paper space layouts first
    attributes: dict[str, str] = {}
    for layout in layouts:
        for insert in layout.query("INSERT"):
            for attrib in insert.attribs:
                tag = clean_text(attrib.dxf.get("tag", "")).strip()
                if not tag or tag in attributes:
                    continue
                attributes[tag] = clean_text(_attrib_text(attrib))
    return attributes


def _attrib_text(attrib: Any) -> str:
    try:
        if attrib.has_embedded_mtext_entity:
            return attrib.virtual_mtext_entity().plain_text()
    except Exception:  # a broken embedded MTEXT: fall back to the single-line value
        pass
    return attrib.dxf.get("text", "")


# -- extents ---------------------------------------------------------------------------------------


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
