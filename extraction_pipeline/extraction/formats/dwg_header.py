"""DWG file header: version string, release, maintenance release, codepage, security flags and,
for R2004 and newer, the address of the SummaryInfo section (ODA Open Design Specification for .dwg).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from extraction_pipeline.extraction.errors import CorruptFile

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

# Header layouts by version number: AC1018 and newer are laid out like R2004 (SummaryInfo address at
# 0x20; UTF-16 strings from AC1021), AC1010-AC1015 (R13-R2000) keep properties in the DWGPROPS xrecord.
_VERSION_RE = re.compile(rb"^(AC\d\.\d{1,2}|AC\d{4}|MC0\.0)")
# Fewest bytes of a readable header: R2004+ keep their section data behind the 0x80-byte header,
# R13-R2000 need the codepage (0x13) and the section-locator count (0x15), older ones their table.
MIN_HEADER_R2004 = 0x80
_MIN_HEADER_R13 = 0x19
_MIN_HEADER_OLD = 0x14


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


def read_header(head: bytes, size: int) -> Header:
    """Parse the fixed file header (``head``: the first bytes, ``size``: the file's length)."""
    match = _VERSION_RE.match(head)
    if not match:
        raise CorruptFile("the file does not start with a DWG version string (AC10xx)")
    version = match.group(1).decode("ascii")
    release = RELEASES.get(version)
    number = version_number(version)
    if number >= 1018:
        needed = MIN_HEADER_R2004
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


def version_number(version: str) -> int:
    """1032 for "AC1032"; 0 for the old "AC1.50" or "MC0.0" forms."""
    digits = version[2:]
    return int(digits) if digits.isdigit() else 0
