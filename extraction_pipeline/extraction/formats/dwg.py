"""DWG metadata: header and drawing properties read from the file, content with ezdwg.

What is read where:

* the file header (first bytes): version string, maintenance release, codepage, security flags and,
  for R2004 and newer, the address of the SummaryInfo section;
* the drawing properties (Drawing Properties dialog: title, subject, author, ...): SummaryInfo
  from R2004, the ``DWGPROPS`` XRECORD from R13 to R2000 (``dwg_properties.py`` says how);
* layers and model-space entities: ``ezdwg`` (R13 and newer).

Where: ``dwg_header`` (the file header, the release and codepage tables), ``dwg_properties``
(SummaryInfo, DWGPROPS), ``dwg_content`` (ezdwg); this module puts them together.

Every length read from the file is bounded and every read is checked against the end of the data, so a
hostile file ends the parse early instead of looping or allocating without limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from extraction_pipeline.extraction.context import ExtractionContext, FormatResult
from extraction_pipeline.extraction.envelope import FormatMetadata
from extraction_pipeline.extraction.errors import EncryptedFile
from extraction_pipeline.extraction.formats.dwg_content import EZDWG_VERSIONS, read_content
from extraction_pipeline.extraction.formats.dwg_header import CODEPAGES, RELEASES, Header, read_header
from extraction_pipeline.extraction.formats.dwg_properties import OutOfData, Properties, read_properties
from extraction_pipeline.extraction.versions import EXTRACTOR_VERSIONS

__all__ = [
    "CODEPAGES",
    "EZDWG_VERSIONS",
    "NAME",
    "RELEASES",
    "VERSION",
    "DwgMetadata",
    "Header",
    "Properties",
    "extract",
    "read_content",
    "read_header",
    "read_properties",
]

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
    except (OSError, ValueError, OutOfData) as exc:
        warnings.append(f"the drawing properties could not be read: {exc}")

    layer_names: list[str] | None = None
    entity_counts: dict[str, int] | None = None
    content_readable = False
    text = context.text_collector()
    if header.version in EZDWG_VERSIONS:
        try:
            layer_names, entity_counts = read_content(path, warnings, text)
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
    return FormatResult(metadata=metadata, warnings=warnings, text=text)
