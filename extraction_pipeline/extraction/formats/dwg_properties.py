"""DWG drawing properties (Drawing Properties dialog: title, subject, author, ...).

- R2004 and newer: the SummaryInfo section at the address stored at 0x20 of the header. It is
  written uncompressed; strings are a 16-bit length (terminating NUL included) followed by 8-bit
  characters in the drawing codepage, or by UTF-16LE code units from R2007 (AC1021) on;
- R13 to R2000: the ``DWGPROPS`` XRECORD of the named object dictionary. The object stream is a
  bit stream, so its data is found by searching the ``DWGPROPS COOKIE`` marker at all eight bit
  offsets; the data is a list of (group code, value) pairs, strings being a 16-bit length, a
  codepage byte and the characters;
- older releases carry no drawing properties.

Every length read is bounded and every read checked against the end of the data.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

from extraction_pipeline.extraction.formats.autocad import julian_to_iso
from extraction_pipeline.extraction.formats.dwg_header import MIN_HEADER_R2004, Header, version_number

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
class Properties:
    values: dict[str, str | None] = field(default_factory=dict)
    custom: dict[str, str] = field(default_factory=dict)
    created_at: str | None = None
    modified_at: str | None = None
    source: str | None = None


class OutOfData(Exception):
    """A read ran past the end of the data (a truncated or damaged section)."""


class _Reader:
    """Little-endian reads from a byte string, each checked against its end."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise OutOfData(f"{size} bytes wanted at {self.pos}, {len(self.data)} available")
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


def read_properties(path: Path, header: Header, size: int, warnings: list[str]) -> Properties:
    number = version_number(header.version)
    if number >= 1018:
        return _read_summary_info(path, header, size, warnings)
    if number >= 1010:
        return _read_dwgprops(path, header, size, warnings)
    return Properties()


# --------------------------------------------------------------------------- SummaryInfo (R2004+)


def _read_summary_info(path: Path, header: Header, size: int, warnings: list[str]) -> Properties:
    address = header.summary_address or 0
    if address < MIN_HEADER_R2004 or address >= size:
        if address:
            warnings.append(
                f"the SummaryInfo address ({address:#x}) lies outside the file; no drawing properties"
            )
        return Properties()
    with path.open("rb") as handle:
        handle.seek(address)
        data = handle.read(_SUMMARY_WINDOW)
    unicode = version_number(header.version) >= 1021
    reader = _Reader(data)
    try:
        texts = [_summary_string(reader, unicode, header.codec) for _ in range(8)]
    except (OutOfData, ValueError) as exc:
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
    except (OutOfData, ValueError) as exc:
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
    except OutOfData:
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
