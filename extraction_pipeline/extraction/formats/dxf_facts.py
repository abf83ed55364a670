"""What the loaded DXF document says, checked against the raw pre-scan: version and release,
units, layers and blocks as the file has them; ``clean_text`` for every name shown."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from extraction_pipeline.extraction.formats.dxf_scan import RawScan
from extraction_pipeline.extraction.text import valid_unicode

# Releases before R9 that ezdxf's table of releases (``ezdxf.lldxf.const.acad_release``) lacks.
_OLDER_RELEASES = {"AC1002": "R2.5", "AC1003": "R2.6"}

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

_ACADVER = re.compile(r"^AC\d{4}$")


def release_of(version: str | None) -> str | None:
    """The AutoCAD release of a ``$ACADVER`` value ("R2018" for "AC1032"), by ezdxf's table."""
    if not version:
        return None
    from ezdxf.lldxf.const import acad_release  # lazy: importing ezdxf is heavy

    return acad_release.get(version) or _OLDER_RELEASES.get(version)


def dxf_version_of(raw: RawScan, doc: Any) -> str | None:
    written = (raw.value("$ACADVER", 1) or "").upper()
    if _ACADVER.match(written):
        return written
    # No header (or no $ACADVER): ezdxf reads it as R12, the convention for such files. Its
    # loaded_dxfversion is the version before the R13/R14 -> R2000 upgrade it applies on load.
    loaded = getattr(doc, "loaded_dxfversion", None) or doc.dxfversion
    return loaded if loaded and _ACADVER.match(loaded) else None


def to_int(value: Any) -> int | None:
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


def read_layer_names(doc: Any, raw: RawScan) -> list[str]:
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


def read_block_names(doc: Any, raw: RawScan, version: str | None) -> tuple[list[str], int]:
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
