"""The raw pre-scan of a DXF: header variables and LAYER/BLOCK names as the file writes them.

ezdxf fabricates or rewrites some facts while loading (a default header for files without one, a
fresh ``$TDCREATE``, layers "0" and "Defpoints", R13/R14 arrow blocks). Reading the raw tags before
the ENTITIES section tells which facts the file really carries, in time linear in its size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# Sections after which the pre-scan has nothing more to learn.
_STOP_SECTIONS = {"ENTITIES", "OBJECTS", "ACDSDATA", "THUMBNAILIMAGE"}


@dataclass
class RawScan:
    """Facts read from the raw tags in front of the ENTITIES section."""

    header_found: bool = False
    header: dict[str, dict[int, str]] = field(default_factory=dict)
    layer_names: set[str] = field(default_factory=set)  # lower-cased
    block_names: set[str] = field(default_factory=set)  # lower-cased

    def value(self, name: str, code: int) -> str | None:
        return self.header.get(name, {}).get(code)


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
