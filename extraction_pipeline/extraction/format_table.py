"""The one table of formats: everything the rest of the code knows about a format, in one spec.

Each supported format is one ``FormatSpec`` in ``BUILTIN_FORMATS``; detection's extension
tie-breaks, the envelope's ``format`` values, the extractor modules, their versions, the CLI's
``--format`` choices, the summaries (the CLI's ``extract`` and ``status``, the Dagster UI), the
unsupported-format message, the samples and ``doctor``'s checks are all derived from it.

This module imports only the standard library, and resolves every module it names (extractor,
metadata model, sample writer) lazily, on first use: the CLI and the Dagster code location read
it at start-up without loading pydantic or a format library.

A format defined outside this package (a plugin, a test) is added with ``register_format(spec)``
(or ``with registered_format(spec):`` for a while) in each process that needs it; a worker pool
imports a module that registers it with ``WorkerPool(preload=("that.module",))``.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# The envelope's format of a file no extractor reads (or whose format could not be told).
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Fact:
    """One key fact of a summary: its label, the metadata key(s) it comes from, how it is shown.

    ``show`` names a way of showing the value that the summary reading it knows (see
    ``orchestration/summary.py`` for the UI's and the job row's; the CLI's ``extract`` and
    ``status`` show the first key's value as ``cli/extraction.py`` does, whatever ``show``). With
    several keys, the value is the first one set (``a or b``). ``when`` leaves the fact out unless
    the first key is ``"present"`` in the metadata or ``"set"`` (truthy) there.
    """

    label: str
    key: str | tuple[str, ...]
    show: str = "auto"
    when: str = "always"

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key,) if isinstance(self.key, str) else self.key


@dataclass(frozen=True)
class FormatSpec:
    """Everything about one format. Modules are named by dotted path, ``module:attribute`` for a
    name in a module, and imported only when used."""

    # The envelope's ``format`` value, the ``--format`` choice, the key of every per-format map.
    name: str
    # How people name it ("PDF"): messages and help.
    label: str
    # File name extensions (lower case, with the dot); the first format listing one claims it.
    # The extension never decides alone: it breaks ties between formats the content allows.
    extensions: tuple[str, ...]
    mime_type: str
    # The extractor module: ``NAME``, ``VERSION``, its metadata model and ``extract(path, context)``.
    module: str
    # Bump it when the extractor's output changes: the asset's code version follows it, so the UI
    # marks the partitions extracted before as stale and ``backfill --outdated`` finds them.
    version: str
    # ``module:Class`` of the metadata model (a ``FormatMetadata`` subclass).
    metadata_model: str
    # Key facts in the Dagster UI (``summary.key_facts``), in display order.
    facts: tuple[Fact, ...] = ()
    # Numbers kept on the job row (``summary.job_summary``): show is "value", "len" or "sum".
    figures: tuple[Fact, ...] = ()
    # What ``extraction-pipeline extract`` prints per file, in display order.
    summary: tuple[Fact, ...] = ()
    # What ``extraction-pipeline status`` prints of a stored file's metadata, in display order.
    status_facts: tuple[Fact, ...] = ()
    # The distributions that provide the format's library (``doctor`` names the first installed).
    distributions: tuple[str, ...] = ()
    # The generated sample (quick start, ``doctor``): its file name and ``module:function`` writer.
    sample_file: str | None = None
    sample_writer: str | None = None
    # Content that starts with one of these (after a UTF-8 BOM and white space) is this format.
    # Consulted when detection's own sniffers (PDF, DXF, DWG, IFC, STEP) recognise nothing.
    magic: tuple[bytes, ...] = ()

    def extractor(self) -> Any:
        return importlib.import_module(self.module)

    def metadata_class(self) -> Any:
        return resolve(self.metadata_model)


def resolve(ref: str) -> Any:
    """``"package.module:name"`` -> that object (the module is imported now)."""
    module, _, attribute = ref.partition(":")
    value: Any = importlib.import_module(module)
    for part in attribute.split(".") if attribute else ():
        value = getattr(value, part)
    return value


_FORMATS_PACKAGE = "extraction_pipeline.extraction.formats"
_SAMPLES = "extraction_pipeline.samples"

_DRAWING_FIGURES = (Fact("layers", "layer_names", "len"), Fact("entities", "entity_counts", "sum"))


def _drawing_facts(version_key: str) -> tuple[Fact, ...]:
    """DXF and DWG show the same facts; ``units`` and ``text_count`` only when reported."""
    return (
        Fact("version", (version_key, "release"), "version"),
        Fact("units", "units", "text", when="present"),
        Fact("layer_names", "layer_names", "text"),
        Fact("layers", "layer_names", "count"),
        Fact("entities", "entity_counts", "total"),
        Fact("texts", "text_count", "number", when="present"),
        Fact("title", "title", "text", when="set"),
        Fact("author", "author", "text", when="set"),
    )


BUILTIN_FORMATS: tuple[FormatSpec, ...] = (
    FormatSpec(
        name="pdf",
        label="PDF",
        extensions=(".pdf",),
        mime_type="application/pdf",
        module=f"{_FORMATS_PACKAGE}.pdf",
        version="1.1.0",
        metadata_model=f"{_FORMATS_PACKAGE}.pdf:PdfMetadata",
        facts=(
            Fact("title", "title", "text"),
            Fact("author", "author", "text"),
            Fact("pdf_version", "pdf_version", "text"),
            Fact("pages", "page_count", "number"),
            Fact("images", "image_count", "number"),
            Fact("text_chars", "text_chars", "number"),
        ),
        figures=(
            Fact("pages", "page_count", "value"),
            Fact("images", "image_count", "value"),
            Fact("text chars", "text_chars", "value"),
        ),
        summary=(
            Fact("version", "pdf_version"),
            Fact("pages", "page_count"),
            Fact("title", "title"),
            Fact("author", "author"),
            Fact("encrypted", "encrypted"),
            Fact("text characters", "text_chars"),
            Fact("images", "image_count"),
        ),
        status_facts=(
            Fact("title", "title"),
            Fact("author", "author"),
            Fact("subject", "subject"),
            Fact("pages", "page_count"),
            Fact("PDF version", "pdf_version"),
            Fact("created", "created_at"),
        ),
        distributions=("pymupdf",),
        sample_file="specification.pdf",
        sample_writer=f"{_SAMPLES}:write_pdf",
    ),
    FormatSpec(
        name="dxf",
        label="DXF",
        extensions=(".dxf",),
        mime_type="image/vnd.dxf",
        module=f"{_FORMATS_PACKAGE}.dxf",
        version="1.1.0",
        metadata_model=f"{_FORMATS_PACKAGE}.dxf:DxfMetadata",
        facts=_drawing_facts("dxf_version"),
        figures=(*_DRAWING_FIGURES, Fact("texts", "text_count", "value")),
        summary=(
            Fact("version", "dxf_version"),
            Fact("release", "release"),
            Fact("units", "units"),
            Fact("layers", "layer_names"),
            Fact("blocks", "block_names"),
            Fact("entities", "entity_counts"),
            Fact("texts", "text_count"),
        ),
        status_facts=(
            Fact("version", "dxf_version"),
            Fact("release", "release"),
            Fact("units", "units"),
            Fact("layers", "layer_names"),
            Fact("entities", "entity_counts"),
            Fact("extents", "extents"),
        ),
        distributions=("ezdxf",),
        sample_file="plant-room.dxf",
        sample_writer=f"{_SAMPLES}:write_dxf",
    ),
    FormatSpec(
        name="dwg",
        label="DWG",
        extensions=(".dwg",),
        mime_type="image/vnd.dwg",
        module=f"{_FORMATS_PACKAGE}.dwg",
        version="1.1.0",
        metadata_model=f"{_FORMATS_PACKAGE}.dwg:DwgMetadata",
        facts=_drawing_facts("dwg_version"),
        figures=_DRAWING_FIGURES,
        summary=(
            Fact("version", "dwg_version"),
            Fact("release", "release"),
            Fact("title", "title"),
            Fact("author", "author"),
            Fact("layers", "layer_names"),
            Fact("entities", "entity_counts"),
            Fact("content readable", "content_readable"),
        ),
        status_facts=(
            Fact("version", "dwg_version"),
            Fact("release", "release"),
            Fact("units", "units"),
            Fact("title", "title"),
            Fact("author", "author"),
            Fact("layers", "layer_names"),
            Fact("entities", "entity_counts"),
        ),
        distributions=("ezdwg",),
        sample_file="plant-room.dwg",
        sample_writer=f"{_SAMPLES}:write_dwg",
    ),
    FormatSpec(
        name="ifc",
        label="IFC",
        extensions=(".ifc", ".ifczip", ".ifcxml"),
        mime_type="application/x-step",
        module=f"{_FORMATS_PACKAGE}.ifc",
        version="1.1.0",
        metadata_model=f"{_FORMATS_PACKAGE}.ifc:IfcMetadata",
        facts=(
            Fact("schema", ("schema", "schema_identifier"), "text"),
            Fact("project", "project_name", "text"),
            Fact("storeys", "storeys", "text"),
            Fact("storey_count", "storeys", "count"),
            Fact("elements", "element_counts", "total"),
            Fact("property_sets", "property_set_count", "number"),
        ),
        figures=(
            Fact("elements", "element_counts", "sum"),
            Fact("storeys", "storeys", "len"),
            Fact("property sets", "property_set_count", "value"),
        ),
        summary=(
            Fact("schema", "schema"),
            Fact("project", "project_name"),
            Fact("authoring tool", "originating_system"),
            Fact("buildings", "buildings"),
            Fact("storeys", "storeys"),
            Fact("elements", "element_counts"),
            Fact("length unit", "length_unit"),
        ),
        status_facts=(
            Fact("schema", "schema"),
            Fact("project", "project_name"),
            Fact("buildings", "buildings"),
            Fact("storeys", "storeys"),
            Fact("elements", "element_counts"),
            Fact("length unit", "length_unit"),
        ),
        distributions=("ifcopenshell",),
        sample_file="building.ifc",
        sample_writer=f"{_SAMPLES}:write_ifc",
    ),
    FormatSpec(
        name="step",
        label="STEP",
        extensions=(".stp", ".step", ".p21"),
        mime_type="model/step",
        module=f"{_FORMATS_PACKAGE}.step",
        version="1.1.0",
        metadata_model=f"{_FORMATS_PACKAGE}.step:StepMetadata",
        facts=(
            Fact("parts", "parts", "part_names"),
            Fact("part_count", "parts", "part_count"),
            Fact("volume_mm3", "volume_mm3", "rounded"),
            Fact("bbox_mm", "bbox_mm", "bbox"),
            Fact("unit", "length_unit", "text"),
            Fact("solids", "solid_count", "number"),
            Fact("faces", "face_count", "number"),
        ),
        figures=(
            Fact("solids", "solid_count", "value"),
            Fact("faces", "face_count", "value"),
            Fact("volume mm3", "volume_mm3", "value"),
        ),
        summary=(
            Fact("schema", "file_schema"),
            Fact("protocol", "application_protocol"),
            Fact("authoring tool", "originating_system"),
            Fact("parts", "parts"),
            Fact("solids", "solid_count"),
            Fact("faces", "face_count"),
            Fact("length unit", "length_unit"),
        ),
        status_facts=(
            Fact("protocol", "application_protocol"),
            Fact("parts", "parts"),
            Fact("solids", "solid_count"),
            Fact("volume (mm3)", "volume_mm3"),
            Fact("bounding box (mm)", "bbox_mm"),
            Fact("length unit", "length_unit"),
        ),
        distributions=("cadquery-ocp-novtk", "cadquery-ocp"),
        sample_file="bracket.step",
        sample_writer=f"{_SAMPLES}:write_step",
    ),
)

# The formats of this process, in order: the built-in ones, then those registered.
_FORMATS: dict[str, FormatSpec] = {spec.name: spec for spec in BUILTIN_FORMATS}

# Format -> extractor version: the live map behind ``versions.EXTRACTOR_VERSIONS`` (kept in step
# with the table by ``register_format``; tests may patch an entry to simulate an upgrade).
EXTRACTOR_VERSIONS: dict[str, str] = {spec.name: spec.version for spec in BUILTIN_FORMATS}


def register_format(spec: FormatSpec) -> None:
    """Add a format to this process's table (after the built-in ones).

    Detection, extraction, the envelope, the summaries and the CLI choices know it from then on,
    in this process only: a worker process learns it by importing a module that registers it
    (``WorkerPool(preload=...)``).
    """
    if spec.name == UNKNOWN or not spec.name.isidentifier() or spec.name != spec.name.lower():
        raise ValueError(f"{spec.name!r} cannot name a format (lower-case identifier, not {UNKNOWN!r})")
    if spec.name in _FORMATS:
        raise ValueError(f"the format {spec.name!r} is already registered")
    _FORMATS[spec.name] = spec
    EXTRACTOR_VERSIONS[spec.name] = spec.version


def unregister_format(name: str) -> None:
    """Remove a format added by ``register_format`` (the built-in ones stay)."""
    if any(spec.name == name for spec in BUILTIN_FORMATS):
        raise ValueError(f"the built-in format {name!r} cannot be removed")
    _FORMATS.pop(name, None)
    EXTRACTOR_VERSIONS.pop(name, None)


@contextlib.contextmanager
def registered_format(spec: FormatSpec) -> Iterator[FormatSpec]:
    """``register_format(spec)`` for the duration of a ``with`` block."""
    register_format(spec)
    try:
        yield spec
    finally:
        unregister_format(spec.name)


def formats() -> tuple[FormatSpec, ...]:
    """Every format of this process, in order."""
    return tuple(_FORMATS.values())


def find(name: str) -> FormatSpec | None:
    """The spec of ``name`` (None for ``"unknown"`` and for any other name)."""
    return _FORMATS.get(str(name))


def format_names(*, unknown: bool = False) -> tuple[str, ...]:
    """``("pdf", "dxf", ...)``, with ``"unknown"`` last when asked: the envelope's and the CLI's values."""
    names = tuple(_FORMATS)
    return (*names, UNKNOWN) if unknown else names


def format_for_extension(extension: str) -> str | None:
    """The format a file name extension (``".stp"``, any case) belongs to, or None."""
    extension = extension.lower()
    for spec in _FORMATS.values():
        if extension in spec.extensions:
            return spec.name
    return None


def format_for_magic(head: bytes) -> str | None:
    """The format whose ``magic`` starts ``head`` (after a UTF-8 BOM and white space), or None."""
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    for spec in _FORMATS.values():
        if spec.magic and stripped.startswith(spec.magic):
            return spec.name
    return None


def supported_formats_text() -> str:
    """``"PDF, DXF, DWG, IFC or STEP"``."""
    labels = [spec.label for spec in _FORMATS.values()]
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} or {labels[-1]}"
