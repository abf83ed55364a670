"""The header of an ISO 10303-21 (STEP physical) file: one tokenizer for detection and the STEP extractor.

``FILE_DESCRIPTION``, ``FILE_NAME`` and ``FILE_SCHEMA`` are parsed by a small tokenizer over the
HEADER section only, so comments, any layout, any order of the header entities and ``''`` quotes are
handled; strings are decoded from the ISO 10303-21 escapes (``\\X2\\...\\X0\\``, ``\\X4\\``,
``\\X\\hh``, ``\\S\\c``, ``\\\\``). Blank header strings are reported as null.

Standard library only: format detection imports this module in the parent process, which must
never load OpenCascade or ifcopenshell.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The HEADER section is tiny in practice; long vendor comments stay far below this.
HEADER_LIMIT = 1024 * 1024

_TOKEN = re.compile(
    rb"""
    (?P<ws>\s+)
  | (?P<comment>/\*.*?(?:\*/|\Z))
  | (?P<string>'(?:[^']++|'')*+')
  | (?P<keyword>!?[A-Za-z_][A-Za-z0-9_\-]*)
  | (?P<other>\#\d+|\.[A-Za-z0-9_]+\.|"[0-9A-Fa-f]*"|[-+]?[0-9.][0-9.Ee+\-]*|[$*=])
  | (?P<punct>[(),;])
    """,
    re.S | re.X,
)


def _tokens(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(kind, text) pairs; comments, whitespace and stray bytes skipped."""
    position, end = 0, len(data)
    while position < end:
        match = _TOKEN.match(data, position)
        if match is None:
            position += 1
            continue
        position = match.end()
        kind = match.lastgroup or ""
        if kind in ("ws", "comment"):
            continue
        yield kind, match.group()


def parse_header_entities(data: bytes) -> dict[str, list[Any]]:
    """Entities of the HEADER section: name -> parameter list (strings decoded, $ -> None)."""
    entities: dict[str, list[Any]] = {}
    tokens = _tokens(data)
    # Find "HEADER ;".
    previous = b""
    for kind, text in tokens:
        if kind == "punct" and text == b";" and previous.upper() == b"HEADER":
            break
        previous = text
    else:
        return entities
    name: str | None = None
    stack: list[list[Any]] = []
    for kind, text in tokens:
        if not stack:
            if kind == "keyword":
                if text.upper() in (b"ENDSEC", b"DATA"):
                    break
                name = text.decode("ascii").upper()
            elif text == b"(" and name is not None:
                stack.append([])
            elif text == b";":
                name = None
            continue
        if text == b"(":
            if len(stack) >= 100:  # no real header nests like this: stop reading
                break
            stack.append([])
        elif text == b")":
            done = stack.pop()
            if stack:
                stack[-1].append(done)
            elif name is not None:
                entities.setdefault(name, done)
                name = None
        elif kind == "string":
            stack[-1].append(decode_step_string(text[1:-1]))
        elif text == b"$":
            stack[-1].append(None)
        elif text == b";":  # unbalanced parentheses: drop this entity, resynchronise
            stack.clear()
            name = None
        elif text != b",":
            stack[-1].append(text.decode("latin-1"))
    return entities


def file_schemas(entities: dict[str, list[Any]]) -> list[str]:
    """The schema names of FILE_SCHEMA as written (one or several; none when it is missing)."""
    schema = entities.get("FILE_SCHEMA") or [None]
    names = schema[0]
    return [s for s in (names if isinstance(names, list) else [names]) if isinstance(s, str)]


def read_header(path: Path, warnings: list[str]) -> dict[str, Any]:
    """The FILE_DESCRIPTION / FILE_NAME / FILE_SCHEMA fields, read from the HEADER section only."""
    with path.open("rb") as handle:
        data = handle.read(HEADER_LIMIT)
    entities = parse_header_entities(data)
    if not entities:
        warnings.append("the STEP HEADER section could not be read")
    file_name = entities.get("FILE_NAME", [])
    description = entities.get("FILE_DESCRIPTION", [])
    schema = entities.get("FILE_SCHEMA", [])
    for wanted, found in (("FILE_NAME", file_name), ("FILE_SCHEMA", schema)):
        if entities and not found:
            warnings.append(f"the STEP header has no readable {wanted}")

    def field(params: list[Any], index: int) -> Any:
        return params[index] if index < len(params) else None

    return {
        "file_name": _text(field(file_name, 0)),
        "timestamp": _text(field(file_name, 1)),
        "author": _text_list(field(file_name, 2)),
        "organization": _text_list(field(file_name, 3)),
        "preprocessor_version": _text(field(file_name, 4)),
        "originating_system": _text(field(file_name, 5)),
        "authorisation": _text(field(file_name, 6)),
        "description": _text_list(field(description, 0)),
        "implementation_level": _text(field(description, 1)),
        "schemas": file_schemas(entities),
    }


def _text(value: Any) -> str | None:
    """A header string, stripped; blank or missing is None."""
    if isinstance(value, list):  # a list where a string belongs: keep its non-blank strings
        items = _text_list(value)
        return "; ".join(items) if items else None
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _text_list(value: Any) -> list[str] | None:
    """A header list of strings without the blank entries; None when nothing is left."""
    values = value if isinstance(value, list) else [value]
    items = [v.strip() for v in values if isinstance(v, str) and v.strip()]
    return items or None


_ESCAPE = re.compile(
    rb"\\X2\\((?:[0-9A-Fa-f]{4})*)\\X0\\|\\X4\\((?:[0-9A-Fa-f]{8})*)\\X0\\|\\X\\([0-9A-Fa-f]{2})"
    rb"|\\S\\(.)|\\P([A-I])\\|\\\\",
    re.S,
)
_PAGES = {letter: f"iso8859-{index}" for index, letter in enumerate("ABCDEFGHI", start=1)}


def decode_step_string(raw: bytes) -> str:
    """Decode the body of a STEP string literal (without its quotes) to text."""
    raw = raw.replace(b"''", b"'")
    parts: list[str] = []
    page = "iso8859-1"
    position = 0
    for match in _ESCAPE.finditer(raw):
        parts.append(_plain(raw[position : match.start()]))
        position = match.end()
        x2, x4, x1, s_char, page_letter = match.groups()
        if x2 is not None:
            parts.append(bytes.fromhex(x2.decode("ascii")).decode("utf-16-be", "replace"))
        elif x4 is not None:
            parts.append(bytes.fromhex(x4.decode("ascii")).decode("utf-32-be", "replace"))
        elif x1 is not None:
            parts.append(chr(int(x1, 16)))
        elif s_char is not None:
            parts.append(bytes([s_char[0] | 0x80]).decode(page, "replace"))
        elif page_letter is not None:
            page = _PAGES[page_letter.decode("ascii")]
        else:
            parts.append("\\")
    parts.append(_plain(raw[position:]))
    return "".join(parts)


def _plain(raw: bytes) -> str:
    """Unescaped bytes: ASCII by the standard, UTF-8 by many writers, Latin-1 by some."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
