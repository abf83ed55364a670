"""DWG metadata: header and drawing properties read from the file, content with ezdwg.

What is read where:

* the file header (first bytes): version string, maintenance release, codepage, security flags and,
  for R2004 and newer, the address of the SummaryInfo section;
* the drawing properties (Drawing Properties dialog: title, subject, author, ...):
  - R2004 and newer: the SummaryInfo section at the address stored at 0x20 of the header. It is
    written uncompressed; strings are a 16-bit length (terminating NUL included) followed by 8-bit
    characters in the drawing codepage, or by UTF-16LE code units from R2007 (AC1021) on;
  - R13 to R2000: the ``DWGPROPS`` XRECORD of the named object dictionary. The object stream is a
    bit stream, so its data is found by searching the ``DWGPROPS COOKIE`` marker at all eight bit
    offsets; the data is a list of (group code, value) pairs, strings being a 16-bit length, a
    codepage byte and the characters;
  - older releases carry no drawing properties;
* layers and model-space entities: ``ezdwg`` (R13 and newer).

Every length read from the file is bounded and every read is checked against the end of the data, so a
hostile file ends the parse early instead of looping or allocating without limit.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extraction_pipeline.extraction.context import ExtractionContext, FormatResult
from extraction_pipeline.extraction.envelope import FormatMetadata
from extraction_pipeline.extraction.errors import CorruptFile, EncryptedFile
from extraction_pipeline.extraction.formats.autocad import julian_to_iso
from extraction_pipeline.extraction.versions import EXTRACTOR_VERSIONS

NAME = "dwg"
VERSION = EXTRACTOR_VERSIONS[NAME]


class DwgMetadata(FormatMetadata):
    dwg_version: str
    release: str | None
    codepage: str | int | None
    title: str | None
    subject: str | None
    author: str | None
    keywords: str | None
    comments: str | None
    last_saved_by: str | None
    hyperlink_base: str | None
    custom_properties: dict[str, Any]
    layer_names: list[str] | None
    entity_counts: dict[str, int] | None
    content_readable: bool
    # Additions to the required keys.
    maintenance_release: int | None = None
    codepage_number: int | None = None
    revision_number: str | None = None
    created_at: str | None = None
    modified_at: str | None = None
    properties_source: str | None = None


# Version string -> AutoCAD release (ODA Open Design Specification for .dwg, LibreDWG's version table).
RELEASES: dict[str, str] = {
    "MC0.0": "R1.0",
    "AC1.2": "R1.2",
    "AC1.3": "R1.3",
    "AC1.40": "R1.4",
    "AC1.50": "R2.05",
    "AC2.10": "R2.10",
    "AC2.21": "R2.21",
    "AC2.22": "R2.22",
    "AC1001": "R2.22",
    "AC1002": "R2.5",
    "AC1003": "R2.6",
    "AC1004": "R9",
    "AC1006": "R10",
    "AC1009": "R11/R12",
    "AC1010": "R13",
    "AC1011": "R13",
    "AC1012": "R13",
    "AC1013": "R14",
    "AC1014": "R14",
    "AC1015": "R2000",
    "AC1018": "R2004",
    "AC1021": "R2007",
    "AC1024": "R2010",
    "AC1027": "R2013",
    "AC1032": "R2018",
}

# DWG codepage number (header 0x13) -> (AutoCAD $DWGCODEPAGE name, Python codec).
CODEPAGES: dict[int, tuple[str, str]] = {
    0: ("UTF8", "utf-8"),
    1: ("US_ASCII", "ascii"),
    2: ("ISO8859-1", "iso8859_1"),
    3: ("ISO8859-2", "iso8859_2"),
    4: ("ISO8859-3", "iso8859_3"),
    5: ("ISO8859-4", "iso8859_4"),
    6: ("ISO8859-5", "iso8859_5"),
    7: ("ISO8859-6", "iso8859_6"),
    8: ("ISO8859-7", "iso8859_7"),
    9: ("ISO8859-8", "iso8859_8"),
    10: ("ISO8859-9", "iso8859_9"),
    11: ("DOS437", "cp437"),
    12: ("DOS850", "cp850"),
    13: ("DOS852", "cp852"),
    14: ("DOS855", "cp855"),
    15: ("DOS857", "cp857"),
    16: ("DOS860", "cp860"),
    17: ("DOS861", "cp861"),
    18: ("DOS863", "cp863"),
    19: ("DOS864", "cp864"),
    20: ("DOS865", "cp865"),
    21: ("DOS869", "cp869"),
    22: ("DOS932", "cp932"),
    23: ("MACINTOSH", "mac_roman"),
    24: ("BIG5", "big5"),
    25: ("KSC5601", "cp949"),
    26: ("JOHAB", "johab"),
    27: ("DOS866", "cp866"),
    28: ("ANSI_1250", "cp1250"),
    29: ("ANSI_1251", "cp1251"),
    30: ("ANSI_1252", "cp1252"),
    31: ("GB2312", "gb2312"),
    32: ("ANSI_1253", "cp1253"),
    33: ("ANSI_1254", "cp1254"),
    34: ("ANSI_1255", "cp1255"),
    35: ("ANSI_1256", "cp1256"),
    36: ("ANSI_1257", "cp1257"),
    37: ("ANSI_874", "cp874"),
    38: ("ANSI_932", "cp932"),
    39: ("ANSI_936", "gbk"),
    40: ("ANSI_949", "cp949"),
    41: ("ANSI_950", "cp950"),
    42: ("ANSI_1361", "johab"),
    43: ("UTF16", "utf-16-le"),
    44: ("ANSI_1258", "cp1258"),
}

# Releases whose content ezdwg reads.
EZDWG_VERSIONS = frozenset({"AC1012", "AC1014", "AC1015", "AC1018", "AC1021", "AC1024", "AC1027", "AC1032"})
# Header layouts by version number: AC1018 and newer are laid out like R2004 (SummaryInfo address at
# 0x20; UTF-16 strings from AC1021), AC1010-AC1015 (R13-R2000) keep properties in the DWGPROPS xrecord.

_VERSION_RE = re.compile(rb"^(AC\d\.\d{1,2}|AC\d{4}|MC0\.0)")
# Fewest bytes of a readable header: R2004+ keep their section data behind the 0x80-byte header,
# R13-R2000 need the codepage (0x13) and the section-locator count (0x15), older ones their table.
_MIN_HEADER_R2004 = 0x80
_MIN_HEADER_R13 = 0x19
_MIN_HEADER_OLD = 0x14

# Entity types ezdwg lists that are not model-space entities of their own in DXF terms.
_SUBENTITY_TYPES = frozenset(
    {"ATTRIB", "SEQEND", "VERTEX_2D", "VERTEX_3D", "VERTEX_MESH", "VERTEX_PFACE", "VERTEX_PFACE_FACE"}
)
_NOT_ENTITIES = frozenset({"BLOCK", "ENDBLK"})
_DXF_TYPE_NAMES = {
    "POLYLINE_2D": "POLYLINE",
    "POLYLINE_3D": "POLYLINE",
    "POLYLINE_MESH": "POLYLINE",
    "POLYLINE_PFACE": "POLYLINE",
}

# Bounds against hostile files.
_SUMMARY_WINDOW = 4 * 1024 * 1024  # SummaryInfo bytes read at most
_MAX_CUSTOM_PROPERTIES = 1000
_XRECORD_WINDOW = 1024 * 1024  # DWGPROPS xrecord bytes decoded at most
_MAX_XRECORD_ITEMS = 500
_MAX_DWGPROPS_CANDIDATES = 64
_DWGPROPS_COOKIE = b"DWGPROPS COOKIE"
_PROPERTY_KEYS = ("title", "subject", "author", "keywords", "comments", "last_saved_by", "hyperlink_base")
# AutoCAD dates are Julian day numbers counted from midnight; day 2440588 is 1970-01-01.


@dataclass
class Header:
    version: str
    release: str | None
    maintenance_release: int | None = None
    codepage_number: int | None = None
    security_flags: int | None = None
    summary_address: int | None = None

    @property
    def codec(self) -> str:
        entry = CODEPAGES.get(self.codepage_number) if self.codepage_number is not None else None
        return entry[1] if entry else "cp1252"


@dataclass
class Properties:
    values: dict[str, str | None] = field(default_factory=dict)
    custom: dict[str, str] = field(default_factory=dict)
    created_at: str | None = None
    modified_at: str | None = None
    source: str | None = None


class _OutOfData(Exception):
    """A read ran past the end of the data (a truncated or damaged section)."""


class _Reader:
    """Little-endian reads from a byte string, each checked against its end."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise _OutOfData(f"{size} bytes wanted at {self.pos}, {len(self.data)} available")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def f64(self) -> float:
        return struct.unpack("<d", self.take(8))[0]


def extract(path: Path, context: ExtractionContext) -> FormatResult:
    warnings: list[str] = []
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(0x100)
    header = read_header(head, size)
    if header.security_flags and header.security_flags & 0x1 and not header.security_flags & ~0x33:
        raise EncryptedFile("the drawing is password-protected (its data is encrypted)")

    properties = Properties()
    try:
        properties = read_properties(path, header, size, warnings)
    except (OSError, ValueError, _OutOfData) as exc:
        warnings.append(f"the drawing properties could not be read: {exc}")

    layer_names: list[str] | None = None
    entity_counts: dict[str, int] | None = None
    content_readable = False
    if header.version in EZDWG_VERSIONS:
        try:
            layer_names, entity_counts = read_content(path, warnings)
            content_readable = True
        except (KeyboardInterrupt, SystemExit, MemoryError):
            raise
        except BaseException as exc:  # ezdwg's native decoder panics with a BaseException subclass
            warnings.append(
                f"the drawing content (layers, entities) could not be read: {type(exc).__name__}: {exc}"[:500]
            )
    else:
        warnings.append(
            f"the drawing content (layers, entities) of {header.release or header.version} "
            f"({header.version}) files cannot be read; only the header and properties were extracted"
        )

    values = properties.values
    codepage_entry = CODEPAGES.get(header.codepage_number) if header.codepage_number is not None else None
    metadata = DwgMetadata(
        dwg_version=header.version,
        release=header.release,
        codepage=codepage_entry[0] if codepage_entry else header.codepage_number,
        title=values.get("title"),
        subject=values.get("subject"),
        author=values.get("author"),
        keywords=values.get("keywords"),
        comments=values.get("comments"),
        last_saved_by=values.get("last_saved_by"),
        hyperlink_base=values.get("hyperlink_base"),
        custom_properties=properties.custom,
        layer_names=layer_names,
        entity_counts=entity_counts,
        content_readable=content_readable,
        maintenance_release=header.maintenance_release,
        codepage_number=header.codepage_number,
        revision_number=values.get("revision_number"),
        created_at=properties.created_at,
        modified_at=properties.modified_at,
        properties_source=properties.source,
    )
    return FormatResult(metadata=metadata, warnings=warnings)


# --------------------------------------------------------------------------- header


def read_header(head: bytes, size: int) -> Header:
    """Parse the fixed file header (``head``: the first bytes, ``size``: the file's length)."""
    match = _VERSION_RE.match(head)
    if not match:
        raise CorruptFile("the file does not start with a DWG version string (AC10xx)")
    version = match.group(1).decode("ascii")
    release = RELEASES.get(version)
    number = _version_number(version)
    if number >= 1018:
        needed = _MIN_HEADER_R2004
    elif number >= 1010:
        needed = _MIN_HEADER_R13
    else:
        needed = _MIN_HEADER_OLD
    if size < needed or len(head) < needed:
        raise CorruptFile(
            f"the DWG file ({version}) is truncated: {size} bytes, fewer than its {needed}-byte header"
        )
    header = Header(version=version, release=release)
    if needed == _MIN_HEADER_OLD:
        return header  # R12 and older keep the codepage among the header variables, not here
    header.maintenance_release = head[0x0B]
    header.codepage_number = struct.unpack_from("<H", head, 0x13)[0]
    if number >= 1018:
        header.security_flags = struct.unpack_from("<I", head, 0x18)[0]
        header.summary_address = struct.unpack_from("<I", head, 0x20)[0]
    return header


# --------------------------------------------------------------------------- properties


def _version_number(version: str) -> int:
    """1032 for "AC1032"; 0 for the old "AC1.50" or "MC0.0" forms."""
    digits = version[2:]
    return int(digits) if digits.isdigit() else 0


def read_properties(path: Path, header: Header, size: int, warnings: list[str]) -> Properties:
    number = _version_number(header.version)
    if number >= 1018:
        return _read_summary_info(path, header, size, warnings)
    if number >= 1010:
        return _read_dwgprops(path, header, size, warnings)
    return Properties()


def _read_summary_info(path: Path, header: Header, size: int, warnings: list[str]) -> Properties:
    address = header.summary_address or 0
    if address < _MIN_HEADER_R2004 or address >= size:
        if address:
            warnings.append(
                f"the SummaryInfo address ({address:#x}) lies outside the file; no drawing properties"
            )
        return Properties()
    with path.open("rb") as handle:
        handle.seek(address)
        data = handle.read(_SUMMARY_WINDOW)
    unicode = _version_number(header.version) >= 1021
    reader = _Reader(data)
    try:
        texts = [_summary_string(reader, unicode, header.codec) for _ in range(8)]
    except (_OutOfData, ValueError) as exc:
        warnings.append(f"the SummaryInfo section is damaged ({exc}); no drawing properties")
        return Properties()
    title, subject, author, keywords, comments, last_saved_by, revision, hyperlink = texts
    props = Properties(source="summary_info")
    props.values = {
        "title": title,
        "subject": subject,
        "author": author,
        "keywords": keywords,
        "comments": comments,
        "last_saved_by": last_saved_by,
        "revision_number": revision,
        "hyperlink_base": hyperlink,
    }
    try:
        reader.take(8)  # total editing time (days, milliseconds)
        props.created_at = _julian_to_iso(reader.u32(), reader.u32())
        props.modified_at = _julian_to_iso(reader.u32(), reader.u32())
        count = reader.u16()
        if count > _MAX_CUSTOM_PROPERTIES:
            raise ValueError(f"{count} custom properties")
        for _ in range(count):
            name = _summary_string(reader, unicode, header.codec)
            value = _summary_string(reader, unicode, header.codec)
            if name:
                props.custom[name] = value
    except (_OutOfData, ValueError) as exc:
        warnings.append(f"the custom drawing properties could not be read completely ({exc})")
    return props


def _summary_string(reader: _Reader, unicode: bool, codec: str) -> str:
    """A SummaryInfo string: RS length (NUL included), then 8-bit or UTF-16LE characters."""
    length = reader.u16()
    if unicode:
        raw = reader.take(2 * length)
        if length and raw[-2:] != b"\x00\x00":
            raise ValueError("a string is not NUL-terminated")
        return raw.decode("utf-16-le", "replace").rstrip("\x00")
    raw = reader.take(length)
    if length and raw[-1:] != b"\x00":
        raise ValueError("a string is not NUL-terminated")
    return _decode_8bit(raw.rstrip(b"\x00"), codec)


def _decode_8bit(raw: bytes, codec: str) -> str:
    try:
        return raw.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return raw.decode("cp1252", "replace")


def _julian_to_iso(day: int, milliseconds: int) -> str | None:
    """The binary header's (day, milliseconds since midnight) pair."""
    if milliseconds >= 86_400_000:
        return None
    return julian_to_iso(day + milliseconds / 86_400_000)


# R13-R2000: the DWGPROPS xrecord ---------------------------------------------------------------


def _shifted_needles(marker: bytes) -> list[tuple[int, bytes]]:
    """For each bit offset k: the bytes that ``marker`` becomes when it starts k bits into a byte.

    The first and last bytes then share bits with their neighbours, so only the inner bytes (which
    start one byte after the marker's first byte) are fixed.
    """
    needles = [(0, marker)]
    for k in range(1, 8):
        inner = bytes(((marker[j - 1] << (8 - k)) | (marker[j] >> k)) & 0xFF for j in range(1, len(marker)))
        needles.append((k, inner))
    return needles


def _realign(window: bytes, shift: int) -> bytes:
    """``window`` read as a bit stream starting ``shift`` bits into its first byte."""
    if shift == 0:
        return window
    number = int.from_bytes(window, "big") << shift
    return (number & ((1 << (8 * len(window))) - 1)).to_bytes(len(window), "big")[:-1]


def _read_dwgprops(path: Path, header: Header, size: int, warnings: list[str]) -> Properties:
    if size == 0:
        return Properties()
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        candidates: list[int] = []  # bit positions of the record start (group code 1 of the cookie)
        for shift, needle in _shifted_needles(_DWGPROPS_COOKIE):
            start = 0
            while len(candidates) < _MAX_DWGPROPS_CANDIDATES:
                pos = data.find(needle, start)
                if pos < 0:
                    break
                start = pos + 1
                cookie_byte = pos if shift == 0 else pos - 1
                record_bit = 8 * cookie_byte + shift - 5 * 8  # RS code, RS length, RC codepage
                if record_bit >= 0:
                    candidates.append(record_bit)
        for record_bit in sorted(candidates):
            first = record_bit // 8
            window = data[first : first + _XRECORD_WINDOW + 1]
            props = _parse_dwgprops(_realign(window, record_bit % 8), header.codec)
            if props is not None:
                return props
    if candidates:
        warnings.append("a DWGPROPS record was found but could not be decoded; no drawing properties")
    return Properties()


def _xrecord_value_size(code: int) -> int | None:
    """Byte size of a non-string xrecord value by group code; None for strings, -1 when unknown."""
    if 0 <= code <= 9 or 300 <= code <= 309 or code in (100, 102, 105) or 1000 <= code <= 1009:
        return None
    if 10 <= code <= 39 or 110 <= code <= 112 or 210 <= code <= 219 or 1010 <= code <= 1039:
        return 24
    if 40 <= code <= 59 or 113 <= code <= 149 or 460 <= code <= 469 or 1040 <= code <= 1059:
        return 8
    if 60 <= code <= 79 or 170 <= code <= 179 or 270 <= code <= 279 or 370 <= code <= 409:
        return 2
    if 280 <= code <= 299:
        return 1
    if 90 <= code <= 99 or 420 <= code <= 459 or code == 1071:
        return 4
    if 160 <= code <= 169:
        return 8
    return -1


def _parse_dwgprops(data: bytes, codec: str) -> Properties | None:
    """Decode the DWGPROPS xrecord items; None when the bytes are not such a record."""
    reader = _Reader(data)
    strings: list[tuple[int, str]] = []
    reals: dict[int, float] = {}
    try:
        for index in range(_MAX_XRECORD_ITEMS):
            code = reader.u16()
            size = _xrecord_value_size(code)
            if size is None:
                length = reader.u16()
                reader.u8()  # codepage of the string
                text = _decode_8bit(reader.take(length), codec)
                if index == 0 and (code != 1 or text != _DWGPROPS_COOKIE.decode()):
                    return None
                strings.append((code, text))
            elif size < 0 or index == 0:
                break  # an unknown code: the record (or what we can make of it) ends here
            elif code == 90:
                break  # the custom-property count closes the fixed part of the record
            else:
                raw = reader.take(size)
                if size == 8 and code in (40, 41, 42):
                    reals[code] = struct.unpack("<d", raw)[0]
    except _OutOfData:
        pass
    if not strings:
        return None
    props = Properties(source="dwgprops")
    keys = {2: "title", 3: "subject", 4: "author", 6: "comments", 7: "keywords", 8: "last_saved_by"}
    keys[9] = "revision_number"
    code_1_seen = 0
    for code, text in strings:
        if code == 1:
            code_1_seen += 1
            if code_1_seen == 2:  # the first is the cookie, the second the hyperlink base
                props.values["hyperlink_base"] = text
        elif code in keys:
            props.values.setdefault(keys[code], text)
        elif 300 <= code <= 309:
            name, sep, value = text.partition("=")
            if sep and name.strip():
                props.custom[name.strip()] = value
    for key in _PROPERTY_KEYS:
        props.values.setdefault(key, None)
    props.created_at = julian_to_iso(reals.get(41, 0.0))
    props.modified_at = julian_to_iso(reals.get(42, 0.0))
    return props


# --------------------------------------------------------------------------- content (ezdwg)


def read_content(path: Path, warnings: list[str]) -> tuple[list[str] | None, dict[str, int]]:
    """Layer names and model-space entity counts (DXF type names) with ezdwg."""
    import ezdwg  # lazy: native extension

    ezdwg.clear_decode_caches()  # its caches are keyed by path; a reused path must not see old data
    try:
        document = ezdwg.read(str(path))
        layers = [(int(handle), str(name or "")) for handle, name in ezdwg.raw.decode_layer_names(str(path))]
        counts: Counter[str] = Counter()
        for entity in document.modelspace().query(include_styles=False):
            kind = str(entity.dxftype).upper()
            if kind in _SUBENTITY_TYPES or kind in _NOT_ENTITIES:
                continue
            if kind.startswith("DIM_"):
                kind = "DIMENSION"
            counts[_DXF_TYPE_NAMES.get(kind, kind)] += 1
    finally:
        ezdwg.clear_decode_caches()
    layer_names: list[str] | None = [name for _, name in layers]
    if not layers or any(not name for _, name in layers):
        missing = sum(1 for _, name in layers if not name)
        warnings.append(
            f"the layer names could not be decoded ({missing} of {len(layers)} empty); layer_names is null"
            if layers
            else "no layer could be decoded; layer_names is null"
        )
        layer_names = None
    return layer_names, dict(sorted(counts.items()))
