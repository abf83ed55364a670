"""DXF metadata with ezdxf (ASCII and binary, recovering damaged files).

Reading strategy: ``ezdxf.readfile`` first (it reads ASCII and binary DXF and is the fast path); only
when it fails is the file handed to ``ezdxf.recover``, which repairs broken structure but reads ASCII
DXF only. A recovered file succeeds with ``recovered: true``, a warning and the auditor's fix count.

ezdxf fabricates or rewrites some facts while loading (a default header for files without one, a
fresh ``$TDCREATE``, layers "0" and "Defpoints", R13/R14 arrow blocks). A light pre-scan of the raw
tags before the ENTITIES section (header variables, LAYER and BLOCK names) tells which facts the file
really carries. Everything stays linear in the size of the file.

Where: ``dxf_loading`` (readfile, recover), ``dxf_scan`` (the raw pre-scan), ``dxf_facts`` (version,
units, layers, blocks), ``dxf_title_block``, ``dxf_extents``; this module puts them together.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from extraction_pipeline.extraction.context import ExtractionContext, FormatResult
from extraction_pipeline.extraction.envelope import FormatMetadata
from extraction_pipeline.extraction.formats.autocad import julian_to_iso
from extraction_pipeline.extraction.formats.dxf_extents import compute_extents
from extraction_pipeline.extraction.formats.dxf_facts import (
    UNITS,
    clean_text,
    dxf_version_of,
    read_block_names,
    read_layer_names,
    release_of,
    to_int,
)
from extraction_pipeline.extraction.formats.dxf_loading import BINARY_SENTINEL, load_document
from extraction_pipeline.extraction.formats.dxf_scan import RawScan, scan_raw
from extraction_pipeline.extraction.formats.dxf_text import collect_text
from extraction_pipeline.extraction.formats.dxf_title_block import title_block_attributes
from extraction_pipeline.extraction.versions import EXTRACTOR_VERSIONS

__all__ = [
    "BINARY_SENTINEL",
    "NAME",
    "TEXT_TYPES",
    "UNITS",
    "VERSION",
    "DxfMetadata",
    "RawScan",
    "clean_text",
    "compute_extents",
    "extract",
    "release_of",
    "scan_raw",
    "title_block_attributes",
]

NAME = "dxf"
VERSION = EXTRACTOR_VERSIONS[NAME]

TEXT_TYPES = ("TEXT", "MTEXT")


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


def extract(path: Path, context: ExtractionContext) -> FormatResult:
    with path.open("rb") as handle:
        binary = handle.read(len(BINARY_SENTINEL)) == BINARY_SENTINEL
    doc, auditor, warnings = load_document(path, binary)
    raw = scan_raw(path, binary)

    version = dxf_version_of(raw, doc)
    units_code = to_int(raw.value("$INSUNITS", 70))
    if units_code is None and auditor is not None and not raw.header_found:
        # recover rescues header variables that stand outside any section.
        units_code = to_int(doc.header.get("$INSUNITS"))
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

    block_names, anonymous = read_block_names(doc, raw, version)
    metadata = DxfMetadata(
        dxf_version=version,
        release=release_of(version),
        binary=binary,
        units=UNITS.get(units_code) if units_code is not None else None,
        layer_names=read_layer_names(doc, raw),
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
    text = context.text_collector()
    if text is not None:
        collect_text(doc, text)
    return FormatResult(
        metadata=metadata, warnings=warnings, variant="binary" if binary else "ascii", text=text
    )
