"""What the Dagster UI shows for a file: key facts per format, the full metadata, or why it failed.

How each value is written follows how the Dagster UI (1.13) renders it:

- text metadata (``MetadataValue.text``), event descriptions in the partition view and log lines
  are plain text (React escapes them): values go in verbatim, never Markdown-escaped, and a name
  with HTML in it stays harmless text;
- Markdown metadata (``summary``) is rendered as Markdown: every value from the file is escaped
  there (``escape_markdown``);
- JSON metadata (``metadata``, the whole extracted metadata) is shown in a JSON viewer;
- free text that names files (a failure description, a log line) quotes each name as a code span
  (``code_span``): it reads as a quoted name in plain text and stays inert if rendered as Markdown.

A succeeded file's materialization carries the key facts of its format (title/author/version for
PDF; version/units/layer names for DXF and DWG; schema/project/storeys for IFC; parts/volume/box
for STEP), a few counts, the full metadata as JSON and a Markdown summary (a deduplicated file: the
copied ones, and ``deduplicated_from``). A failed or skipped file gets an ``AssetObservation`` on
its partition (``failure_metadata``): file name, status, error code and message.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import dagster as dg

from extraction_pipeline.extraction import format_table
from extraction_pipeline.extraction.format_table import Fact as FactSpec
from extraction_pipeline.orchestration.notify import failure_hint

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")
# Shown for a fact the file does not have (a PDF without title, a drawing without units).
NONE = "(none)"
# A list fact (layer names, storeys, parts) is cut after about this many characters ...
LIST_CHARS = 300
# ... and each item after this many.
ITEM_CHARS = 80
# The full metadata is attached as JSON up to this size; beyond it long lists are shortened (the
# database row ``cloud_file_metadata`` and ``extraction-pipeline status ID --json`` keep it all).
MAX_METADATA_JSON_CHARS = 256 * 1024
# The preview shown on a materialization: at most this many pixels a side and bytes (the event log
# keeps it for every materialization; `extraction-pipeline thumbnail ID` gives the 512 px one).
UI_PREVIEW_PX = 256
MAX_UI_PREVIEW_BYTES = 48 * 1024
# An error message longer than this is cut in the UI (the database keeps it whole).
MAX_MESSAGE_CHARS = 4000

Fact = str | int | float


def escape_markdown(text: str) -> str:
    """Text safe to put in Markdown: HTML escaped, Markdown punctuation backslashed, one line."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(" ".join(str(text).split()), quote=False))


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def code_span(text: object) -> str:
    """``text`` on one line between backticks: a quoted name in plain text, inert in Markdown.

    The fence is one backtick longer than any run of backticks in the text (CommonMark), so no
    name can close it early; a code span shows its content literally (no HTML, links, emphasis).
    """
    value = one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if not value or value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def key_figures(fmt: str, metadata: dict[str, Any]) -> dict[str, int | float]:
    """The format's ``figures`` (table of formats): "value" a number, "len" a list's or a map's
    size, "sum" the total of a map of counts."""
    spec = format_table.find(fmt)
    figures: dict[str, int | float] = {}
    for fact in spec.figures if spec is not None else ():
        label, key, how = fact.label, fact.keys[0], fact.show
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


# ----------------------------------------------------------------------------------------------
# Key facts per format
# ----------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None or value == "" or value == []:
        return NONE
    if isinstance(value, list):
        return _join(value)
    return one_line(value)


def _join(items: Iterable[Any], limit: int = LIST_CHARS) -> str:
    """``a, b, c, … (12 more)``: names on one line, cut to about ``limit`` characters."""
    names = [NONE if item is None else one_line(item) for item in items]
    if not names:
        return NONE
    shown: list[str] = []
    length = 0
    for name in names:
        if len(name) > ITEM_CHARS:
            name = name[: ITEM_CHARS - 1] + "…"
        if shown and length + len(name) > limit:
            break
        shown.append(name)
        length += len(name) + 2
    text = ", ".join(shown)
    if len(shown) < len(names):
        text += f", … ({len(names) - len(shown)} more)"
    return text


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _rounded(value: Any, digits: int = 1) -> float | None:
    number = _number(value)
    return None if number is None else round(float(number), digits)


def _count(value: Any) -> int | None:
    if isinstance(value, list | dict):
        return len(value)
    return None


def _total(value: Any) -> int | None:
    if isinstance(value, dict):
        return int(sum(v for v in value.values() if isinstance(v, int | float) and not isinstance(v, bool)))
    return None


def _version(code: Any, release: Any) -> str:
    if not code:
        return _text(release)
    return f"{one_line(code)} ({one_line(release)})" if release else one_line(code)


def _bbox(box: Any) -> str:
    """``40 x 30 x 22 mm (min 0, 0, 0; max 40, 30, 22)``."""
    try:
        low, high = [float(v) for v in box["min"]], [float(v) for v in box["max"]]
        size = " x ".join(f"{b - a:g}" for a, b in zip(low, high, strict=True))
        return f"{size} mm (min {', '.join(f'{v:g}' for v in low)}; max {', '.join(f'{v:g}' for v in high)})"
    except (KeyError, TypeError, ValueError):
        return NONE


def _walk_parts(nodes: Any) -> Iterable[dict[str, Any]]:
    stack = list(nodes) if isinstance(nodes, list) else []
    while stack:
        node = stack.pop(0)
        if isinstance(node, dict):
            yield node
            children = node.get("children")
            if isinstance(children, list):
                stack[:0] = children


def _part_names(parts: Any) -> list[str]:
    """Names of the parts in the assembly tree (``BOLT x6``), or of the top-level shapes."""
    nodes = list(_walk_parts(parts))
    chosen = [n for n in nodes if n.get("kind") == "part"] or [
        n for n in (parts if isinstance(parts, list) else []) if isinstance(n, dict)
    ]
    names = []
    for node in chosen:
        name = one_line(node.get("name") or "(unnamed)")
        instances = node.get("instances")
        names.append(f"{name} x{instances}" if isinstance(instances, int) and instances > 1 else name)
    return names


# How the table of formats' ``facts`` are shown: ``show`` name -> the fact from the value(s) of its
# metadata key(s).
_SHOW: dict[str, Callable[[list[Any]], Fact | None]] = {
    "text": lambda values: _text(_first(values)),
    "number": lambda values: _number(_first(values)),
    "rounded": lambda values: _rounded(_first(values)),
    "count": lambda values: _count(_first(values)),
    "total": lambda values: _total(_first(values)),
    # A drawing's version code and its release: ``AC1032 (R2018)``.
    "version": lambda values: _version(values[0], values[1] if len(values) > 1 else None),
    "bbox": lambda values: _bbox(_first(values)),
    # The names of the parts of a STEP assembly tree (``BOLT x6``), and how many there are.
    "part_names": lambda values: _join(_part_names(_first(values))),
    "part_count": lambda values: len(_part_names(_first(values))),
}


def _first(values: list[Any]) -> Any:
    """The first value set (``a or b``), else the last one."""
    found = values[0]
    for value in values[1:]:
        found = found or value
    return found


def _fact(fact: FactSpec, m: dict[str, Any]) -> Fact | None:
    """The value of ``fact`` in the metadata ``m``; None when it is not shown."""
    first = fact.keys[0]
    if (fact.when == "present" and first not in m) or (fact.when == "set" and not m.get(first)):
        return None
    return _SHOW[fact.show]([m.get(key) for key in fact.keys])


def key_facts(fmt: str, metadata: dict[str, Any]) -> dict[str, Fact]:
    """The facts of a file worth a glance, in display order: text, or a number (the format's
    ``facts`` in the table of formats)."""
    spec = format_table.find(fmt)
    facts: dict[str, Fact] = {}
    for fact in spec.facts if spec is not None else ():
        value = _fact(fact, metadata)
        if value is not None:
            facts[fact.label] = value
    return facts


def bounded_metadata(metadata: dict[str, Any], limit: int = MAX_METADATA_JSON_CHARS) -> dict[str, Any]:
    """``metadata`` itself, or, when its JSON is longer than ``limit``, with long lists shortened."""

    def size(value: Any) -> int:
        return len(json.dumps(value, default=str))

    if size(metadata) <= limit:
        return metadata

    def trim(value: Any, keep: int, cut: set[str], path: str) -> Any:
        if isinstance(value, dict):
            return {k: trim(v, keep, cut, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            if len(value) > keep:
                cut.add(path or "(root)")
            return [trim(v, keep, cut, f"{path}[]") for v in value[:keep]]
        return value

    for keep in (1000, 200, 50, 10, 3):
        cut: set[str] = set()
        trimmed = trim(metadata, keep, cut, "")
        trimmed["_truncated"] = (
            f"lists longer than {keep} items are shortened here ({', '.join(sorted(cut)[:20])}); "
            "the database row cloud_file_metadata holds them whole"
        )
        if size(trimmed) <= limit:
            return trimmed
    return {
        "_truncated": "the metadata is too large to show here; the database row cloud_file_metadata holds it",
        "keys": sorted(map(str, metadata)),
    }


# ----------------------------------------------------------------------------------------------
# What the job row and the materialization carry
# ----------------------------------------------------------------------------------------------


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


def _shown(value: Fact) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


def markdown_summary(filename: str, envelope: dict[str, Any]) -> str:
    fmt = str(envelope.get("format"))
    variant = envelope.get("variant")
    lines = [
        f"**{escape_markdown(filename)}**: {escape_markdown(fmt.upper())}"
        + (f" ({escape_markdown(variant)})" if variant else ""),
        "",
        "| fact | value |",
        "|---|---|",
    ]
    for label, value in key_facts(fmt, envelope.get("metadata") or {}).items():
        lines.append(f"| {escape_markdown(label.replace('_', ' '))} | {escape_markdown(_shown(value))} |")
    lines.append(f"| duration | {int(envelope.get('duration_ms') or 0)} ms |")
    warnings = envelope.get("warnings") or []
    if warnings:
        lines += ["", f"{len(warnings)} warning(s):"] + [
            f"- {escape_markdown(w)[:300]}" for w in warnings[:5]
        ]
    return "\n".join(lines)


def materialization_metadata(filename: str, envelope: dict[str, Any]) -> dict[str, dg.MetadataValue]:
    """File, format, the key facts of the format, the whole metadata as JSON, a Markdown summary."""
    fmt = str(envelope.get("format"))
    extracted = envelope.get("metadata") or {}
    metadata: dict[str, dg.MetadataValue] = {
        "file": dg.MetadataValue.text(filename),
        "format": dg.MetadataValue.text(fmt),
        "variant": dg.MetadataValue.text(str(envelope.get("variant") or "-")),
    }
    for label, value in key_facts(fmt, extracted).items():
        if isinstance(value, str):
            metadata[label] = dg.MetadataValue.text(value)
        elif isinstance(value, float):
            metadata[label] = dg.MetadataValue.float(value)
        else:
            metadata[label] = dg.MetadataValue.int(int(value))
    metadata.update(
        {
            "summary": dg.MetadataValue.md(markdown_summary(filename, envelope)),
            "extractor_version": dg.MetadataValue.text(str((envelope.get("extractor") or {}).get("version"))),
            "size_bytes": dg.MetadataValue.int(int((envelope.get("file") or {}).get("size_bytes") or 0)),
            "sha256": dg.MetadataValue.text(str((envelope.get("file") or {}).get("sha256"))),
            "duration_ms": dg.MetadataValue.int(int(envelope.get("duration_ms") or 0)),
            "warnings": dg.MetadataValue.int(len(envelope.get("warnings") or [])),
        }
    )
    if envelope.get("warnings"):
        metadata["warning_list"] = dg.MetadataValue.json(list(envelope["warnings"])[:50])
    # Last: the UI prints a small JSON inline, and it is the longest row.
    metadata["metadata"] = dg.MetadataValue.json(bounded_metadata(extracted))
    return metadata


def preview_metadata(png: bytes) -> dg.MetadataValue | None:
    """The preview as the UI shows it: Markdown with the picture inline (a data URI, which the UI's
    Markdown viewer renders, in the table or behind "[Show Markdown]" when the Markdown is long; see
    scripts/ui_check.py), cut down to ``UI_PREVIEW_PX`` and a palette so
    that the event log stays small (the full 512 px PNG is in the blob store). None when it cannot
    be made that small."""
    import base64
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(png)) as image:
            image.thumbnail((UI_PREVIEW_PX, UI_PREVIEW_PX))
            small = image.convert("RGB").quantize(colors=64)
            out = io.BytesIO()
            small.save(out, format="PNG", optimize=True)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    data = out.getvalue()
    if len(data) > MAX_UI_PREVIEW_BYTES:
        return None
    return dg.MetadataValue.md(f"![preview]({'data:image/png;base64,' + base64.b64encode(data).decode()})")


# ----------------------------------------------------------------------------------------------
# A failed file
# ----------------------------------------------------------------------------------------------


def _safe_code(code: Any) -> str:
    text = str(code or "unknown")
    return text if re.fullmatch(r"[a-z][a-z0-9_]{0,63}", text) else "unknown"


def failure_description(code: Any) -> str:
    """The observation's description: no value from the file (the events view renders Markdown)."""
    return f"Extraction failed: {_safe_code(code)}. File name, error code and message are in the metadata."


def skipped_description() -> str:
    """The observation's description of a skipped file (none of the supported formats)."""
    return "Not extracted: the content is none of the supported formats (unsupported_format)."


def short_message(message: Any, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = str(message or "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure_metadata(
    filename: str,
    error: dict[str, Any],
    *,
    fmt: str | None = None,
    attempts: int | None = None,
    status: str = "failed",
) -> dict[str, dg.MetadataValue]:
    """What a failed (or skipped) partition shows: the file, the error code and message, plain text."""
    code = str(error.get("code") or "unknown")
    metadata: dict[str, dg.MetadataValue] = {
        "file": dg.MetadataValue.text(filename),
        "status": dg.MetadataValue.text(status),
        "error_code": dg.MetadataValue.text(code),
        "error_message": dg.MetadataValue.text(short_message(error.get("message"))),
        "error_kind": dg.MetadataValue.text(str(error.get("kind") or "permanent")),
    }
    hint = failure_hint(code, error.get("message"))
    if hint:
        metadata["hint"] = dg.MetadataValue.text(hint)
    if fmt:
        metadata["format"] = dg.MetadataValue.text(fmt)
    if attempts:
        metadata["attempts"] = dg.MetadataValue.int(int(attempts))
    return metadata


def failure_line(file_id: int, filename: str, error: dict[str, Any]) -> str:
    """One line of a run's failure description: ``file 7 `plan.pdf`: corrupt: the reason``."""
    code = str(error.get("code") or "unknown")
    line = (
        f"file {file_id} {code_span(filename)}: {code}: {one_line(short_message(error.get('message'), 1000))}"
    )
    hint = failure_hint(code, error.get("message"))
    return f"{line} ({hint})" if hint else line
