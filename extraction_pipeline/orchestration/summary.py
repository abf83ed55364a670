"""What the Dagster UI shows for a file: key figures, warnings and a short Markdown summary."""

from __future__ import annotations

import html
import re
from typing import Any

import dagster as dg

# Per format: (label, metadata key, how to reduce it) for the figures worth a glance.
_FIGURES: dict[str, list[tuple[str, str, str]]] = {
    "pdf": [
        ("pages", "page_count", "value"),
        ("images", "image_count", "value"),
        ("text chars", "text_chars", "value"),
    ],
    "dxf": [
        ("layers", "layer_names", "len"),
        ("entities", "entity_counts", "sum"),
        ("texts", "text_count", "value"),
    ],
    "dwg": [("layers", "layer_names", "len"), ("entities", "entity_counts", "sum")],
    "ifc": [
        ("elements", "element_counts", "sum"),
        ("storeys", "storeys", "len"),
        ("property sets", "property_set_count", "value"),
    ],
    "step": [
        ("solids", "solid_count", "value"),
        ("faces", "face_count", "value"),
        ("volume mm3", "volume_mm3", "value"),
    ],
}

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def escape_markdown(text: str) -> str:
    """Text safe to put in Markdown: HTML escaped, Markdown punctuation backslashed, one line."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(" ".join(str(text).split()), quote=False))


def key_figures(fmt: str, metadata: dict[str, Any]) -> dict[str, int | float]:
    figures: dict[str, int | float] = {}
    for label, key, how in _FIGURES.get(fmt, []):
        value = metadata.get(key)
        if value is None:
            continue
        if how == "len" and isinstance(value, list | dict):
            figures[label] = len(value)
        elif how == "sum" and isinstance(value, dict):
            figures[label] = sum(v for v in value.values() if isinstance(v, int | float))
        elif how == "value" and isinstance(value, int | float) and not isinstance(value, bool):
            figures[label] = value
    return figures


def job_summary(envelope: dict[str, Any]) -> dict[str, Any]:
    """The small JSON kept on the job row once the metadata is materialized."""
    return {
        "format": envelope.get("format"),
        "variant": envelope.get("variant"),
        "extractor": envelope.get("extractor"),
        "warnings": len(envelope.get("warnings") or []),
        "duration_ms": envelope.get("duration_ms"),
        "figures": key_figures(str(envelope.get("format")), envelope.get("metadata") or {}),
    }


def markdown_summary(filename: str, envelope: dict[str, Any]) -> str:
    fmt = str(envelope.get("format"))
    variant = envelope.get("variant")
    lines = [
        f"**{escape_markdown(filename)}**: {escape_markdown(fmt.upper())}"
        + (f" ({escape_markdown(variant)})" if variant else ""),
        "",
        "| figure | value |",
        "|---|---|",
    ]
    for label, value in key_figures(fmt, envelope.get("metadata") or {}).items():
        shown = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
        lines.append(f"| {escape_markdown(label)} | {shown} |")
    lines.append(f"| duration | {envelope.get('duration_ms', 0)} ms |")
    warnings = envelope.get("warnings") or []
    if warnings:
        lines += ["", f"{len(warnings)} warning(s):"] + [
            f"- {escape_markdown(w)[:300]}" for w in warnings[:5]
        ]
    return "\n".join(lines)


def materialization_metadata(filename: str, envelope: dict[str, Any]) -> dict[str, dg.MetadataValue]:
    fmt = str(envelope.get("format"))
    metadata: dict[str, dg.MetadataValue] = {
        "file": dg.MetadataValue.text(filename),
        "format": dg.MetadataValue.text(fmt),
        "variant": dg.MetadataValue.text(str(envelope.get("variant") or "-")),
        "extractor_version": dg.MetadataValue.text(str((envelope.get("extractor") or {}).get("version"))),
        "size_bytes": dg.MetadataValue.int(int((envelope.get("file") or {}).get("size_bytes") or 0)),
        "sha256": dg.MetadataValue.text(str((envelope.get("file") or {}).get("sha256"))),
        "duration_ms": dg.MetadataValue.int(int(envelope.get("duration_ms") or 0)),
        "warnings": dg.MetadataValue.int(len(envelope.get("warnings") or [])),
        "summary": dg.MetadataValue.md(markdown_summary(filename, envelope)),
    }
    for label, value in key_figures(fmt, envelope.get("metadata") or {}).items():
        name = label.replace(" ", "_")
        metadata[name] = (
            dg.MetadataValue.float(float(value))
            if isinstance(value, float)
            else dg.MetadataValue.int(int(value))
        )
    if envelope.get("warnings"):
        metadata["warning_list"] = dg.MetadataValue.json(list(envelope["warnings"])[:50])
    return metadata
