"""STEP metadata: header fields from the text, geometry and assembly tree with OCP (XCAF).

Header (``FILE_DESCRIPTION``, ``FILE_NAME``, ``FILE_SCHEMA``): ``step_header``, the tokenizer format
detection shares (at most ``HEADER_LIMIT`` bytes are read); ``file_schema`` is the schema string as
written (a list when the file names several).

Geometry, assembly tree, counting rule and units: ``step_geometry`` (OCP, imported on extraction only).

Failures: a file OpenCascade cannot parse, or whose entities hold no transferable shape, is
``CorruptFile`` with the reader's reason. A syntactically valid file with an empty DATA section is
a real (if useless) STEP file: it succeeds with zero counts, null volume/area/box and a warning.
"""

from __future__ import annotations

import contextlib
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from extraction_pipeline.extraction.archives import unpack_member
from extraction_pipeline.extraction.context import ExtractionContext, FormatResult
from extraction_pipeline.extraction.detect import STEP_SUFFIXES, application_protocol
from extraction_pipeline.extraction.envelope import FormatMetadata
from extraction_pipeline.extraction.errors import CorruptFile
from extraction_pipeline.extraction.formats.step_geometry import (  # noqa: F401  (public names of this module)
    MAX_INSTANCE_NAMES,
    MAX_TREE_DEPTH,
    MAX_TREE_NODES,
    normalize_length_unit,
    read_geometry,
)
from extraction_pipeline.extraction.formats.step_header import (  # noqa: F401  (public names of this module)
    HEADER_LIMIT,
    decode_step_string,
    read_header,
)
from extraction_pipeline.extraction.formats.step_text import collect_text
from extraction_pipeline.extraction.versions import EXTRACTOR_VERSIONS

NAME = "step"
VERSION = EXTRACTOR_VERSIONS[NAME]


class StepMetadata(FormatMetadata):
    file_schema: str | list[str] | None
    application_protocol: str | None
    originating_system: str | None
    preprocessor_version: str | None
    author: str | list[str] | None
    organization: str | list[str] | None
    timestamp: str | None
    file_name: str | None
    length_unit: str | None
    parts: list[Any]
    solid_count: int
    face_count: int
    edge_count: int
    volume_mm3: float | None
    surface_area_mm2: float | None
    bbox_mm: dict[str, list[float]] | None
    # Additions beyond the contract.
    description: list[str] | None = None
    implementation_level: str | None = None
    authorisation: str | None = None
    definition_solid_count: int = 0
    entity_count: int = 0
    container: str | None = None


def extract(path: Path, context: ExtractionContext) -> FormatResult:
    warnings: list[str] = []
    text = context.text_collector()
    if context.detection.details.get("container") == "zip":
        with _zip_member(path, context, warnings) as member:
            metadata = _extract_plain(member, warnings)
            if text is not None:
                collect_text(member, text)
        metadata.container = "zip"
    else:
        metadata = _extract_plain(path, warnings)
        if text is not None:
            collect_text(path, text)
    return FormatResult(metadata=metadata, warnings=warnings, text=text)


def _extract_plain(path: Path, warnings: list[str]) -> StepMetadata:
    header = read_header(path, warnings)
    geometry = read_geometry(path, warnings)
    schemas = header.get("schemas") or []
    return StepMetadata(
        file_schema=schemas[0] if len(schemas) == 1 else (schemas or None),
        application_protocol=next(filter(None, map(application_protocol, schemas)), None),
        originating_system=header.get("originating_system"),
        preprocessor_version=header.get("preprocessor_version"),
        author=header.get("author"),
        organization=header.get("organization"),
        timestamp=header.get("timestamp"),
        file_name=header.get("file_name"),
        description=header.get("description"),
        implementation_level=header.get("implementation_level"),
        authorisation=header.get("authorisation"),
        **geometry,
    )


# --------------------------------------------------------------------------- zip container


@contextlib.contextmanager
def _zip_member(path: Path, context: ExtractionContext, warnings: list[str]) -> Iterator[Path]:
    """The STEP member of a zip archive, unpacked to a temporary file (size bounded)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CorruptFile(f"the zip archive cannot be opened: {exc}") from exc
    with archive, tempfile.TemporaryDirectory(prefix="step-zip-") as folder:
        members = [
            info
            for info in archive.infolist()
            if not info.is_dir() and info.filename.lower().endswith(STEP_SUFFIXES)
        ]
        if not members:
            raise CorruptFile("the zip archive holds no STEP file")
        member = members[0]
        if len(members) > 1:
            warnings.append(
                f"the zip archive holds {len(members)} STEP files; only {member.filename} was read"
            )
        target = Path(folder) / "member.stp"
        unpack_member(archive, member, target, context.max_bytes, f"the zipped STEP file {member.filename!r}")
        yield target
