"""Content-based format detection: sniff the bytes first, use the extension only to break ties."""

from __future__ import annotations

import enum
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from extraction_pipeline.extraction import format_table
from extraction_pipeline.extraction.formats import step_header

# How much of the head of a file detection reads. STEP/IFC headers may carry long
# comments before FILE_SCHEMA; 256 KiB covers every real header seen so far.
HEAD_BYTES = 256 * 1024


# The formats detection's own sniffers tell apart, named as in the table of formats
# (``Format.PDF == "pdf"``); a format added to the table is recognised by its ``magic`` instead.
class Format(enum.StrEnum):
    PDF = "pdf"
    DXF = "dxf"
    DWG = "dwg"
    IFC = "ifc"
    STEP = "step"
    UNKNOWN = "unknown"


# The names of a STEP model, also inside a zip archive (the STEP extensions of the table of formats,
# which also gives every other format's extensions).
STEP_SUFFIXES: tuple[str, ...] = next(
    spec.extensions for spec in format_table.BUILTIN_FORMATS if spec.name == "step"
)


@dataclass(frozen=True)
class Detection:
    """What the bytes say a file is."""

    # A ``Format`` member, or the name of a registered format (``format_table.register_format``).
    format: str
    variant: str | None = None
    extension_matches: bool = True
    warnings: tuple[str, ...] = ()
    # Facts found on the way that extractors may reuse (e.g. the STEP schema).
    details: dict[str, str | None] = field(default_factory=dict)


_BINARY_DXF_SENTINEL = b"AutoCAD Binary DXF\r\n\x1a\x00"
_DWG_VERSION = re.compile(rb"^(?:AC\d\.\d{1,2}|AC10\d\d|MC0\.0)")
_STEP_MAGIC = b"ISO-10303-21;"
_XML_ROOT = re.compile(rb"<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)[\s>/]")


def application_protocol(schema: str | None) -> str | None:
    """Map a STEP FILE_SCHEMA name to AP203/AP214/AP242 (None when it is none of them)."""
    if not schema:
        return None
    name = schema.upper().strip()
    if name.startswith(("AP242", "AP242_")) or "MANAGED_MODEL_BASED_3D_ENGINEERING" in name:
        return "AP242"
    if name.startswith(("AUTOMOTIVE_DESIGN", "AP214")):
        return "AP214"
    if name.startswith(("CONFIG_CONTROL_DESIGN", "AP203", "CONFIGURATION_CONTROLLED_3D_DESIGN")):
        return "AP203"
    return None


def detect_format(path: str | Path, filename: str | None = None) -> Detection:
    """Tell what the file at ``path`` is from its content; ``filename`` is the name the user gave it."""
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    name = filename if filename is not None else path.name
    extension = Path(name).suffix.lower()
    by_extension = format_table.format_for_extension(extension)

    detection = _sniff(path, head, by_extension)
    if detection.format == Format.UNKNOWN and (registered := format_table.format_for_magic(head)):
        detection = Detection(registered)
    matches = by_extension is not None and by_extension == detection.format
    warnings = list(detection.warnings)
    if not matches and detection.format != Format.UNKNOWN:
        shown = extension or "no extension"
        warnings.append(
            f"file name extension ({shown}) does not match the content, which is {detection.format}"
        )
    return Detection(
        format=detection.format,
        variant=detection.variant,
        extension_matches=matches,
        warnings=tuple(warnings),
        details=detection.details,
    )


def _sniff(path: Path, head: bytes, by_extension: str | None) -> Detection:
    if b"%PDF-" in head[:1024]:
        return Detection(Format.PDF)
    if head.startswith(_BINARY_DXF_SENTINEL):
        return Detection(Format.DXF, "binary")
    if version := _DWG_VERSION.match(head):
        return Detection(Format.DWG, details={"version": version.group().decode("ascii")})
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(_STEP_MAGIC):
        return _sniff_step(stripped, by_extension)
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(path, head)
    if _looks_like_ascii_dxf(stripped):
        return Detection(Format.DXF, "ascii")
    if stripped.startswith(b"<"):
        return _sniff_xml(stripped)
    return Detection(Format.UNKNOWN)


def _sniff_step(head: bytes, by_extension: str | None) -> Detection:
    # The STEP extractor's own header tokenizer (standard library only: no OCP in the parent).
    schemas = [s.strip() for s in step_header.file_schemas(step_header.parse_header_entities(head))]
    schema = schemas[0] if schemas else None
    if schema is None:
        # No readable schema: the extension breaks the tie, STEP otherwise.
        fmt = Format.IFC if by_extension == Format.IFC else Format.STEP
        variant = "spf" if fmt is Format.IFC else None
        return Detection(fmt, variant, warnings=("FILE_SCHEMA could not be read from the header",))
    if schema.upper().startswith("IFC"):
        return Detection(Format.IFC, "spf", details={"schema": schema})
    return Detection(
        Format.STEP, details={"schema": schema, "application_protocol": application_protocol(schema)}
    )


def _first_member_name(head: bytes) -> str:
    """The name in a zip's first local file header (readable even when the archive is cut short)."""
    name_length = int.from_bytes(head[26:28], "little")
    return head[30 : 30 + name_length].decode("utf-8", "replace")


def _sniff_zip(path: Path, head: bytes) -> Detection:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [info.filename for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError):
        # No central directory (a truncated upload): the first member's local header still names it.
        names = [_first_member_name(head)]
    lowered = [n.lower() for n in names]
    if any(n.endswith(".ifc") for n in lowered):
        return Detection(Format.IFC, "ifczip")
    if any(n.endswith(".ifcxml") for n in lowered):
        return Detection(Format.IFC, "ifczip", details={"member_variant": "ifcxml"})
    if any(n.endswith(STEP_SUFFIXES) for n in lowered):
        return Detection(Format.STEP, details={"container": "zip"})
    return Detection(Format.UNKNOWN)


def _looks_like_ascii_dxf(head: bytes) -> bool:
    """Group code 0 followed by SECTION, skipping blank lines and 999 comments."""
    lines = head[:8192].splitlines()
    index = 0
    while index < len(lines):
        code = lines[index].strip()
        if not code:
            index += 1
            continue
        if index + 1 >= len(lines):
            return False
        value = lines[index + 1].strip()
        if code == b"999":
            index += 2
            continue
        return code == b"0" and value == b"SECTION"
    return False


def _sniff_xml(head: bytes) -> Detection:
    text = head[:16384]
    # Skip the XML declaration, processing instructions, comments and a doctype.
    text = re.sub(rb"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(\[.*?\])?\s*>", b"", text, flags=re.S)
    match = _XML_ROOT.search(text)
    if not match:
        return Detection(Format.UNKNOWN)
    root = match.group(2).lower()
    tag_end = text.find(b">", match.start())
    opening = text[match.start() : tag_end if tag_end > 0 else len(text)].lower()
    if (
        root in (b"ifcxml", b"iso_10303_28")
        or b"ifcxml" in opening
        or b"buildingsmart-tech.org/ifc" in opening
    ):
        return Detection(Format.IFC, "ifcxml")
    return Detection(Format.UNKNOWN)
