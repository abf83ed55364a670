"""Which extractor reads which format. Adding a format = a module under formats/ and one line here."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, cast

from extraction_pipeline.extraction.context import ExtractionContext, FormatResult
from extraction_pipeline.extraction.detect import Format
from extraction_pipeline.extraction.envelope import FormatMetadata
from extraction_pipeline.extraction.formats import dwg, dxf, ifc, pdf, step
from extraction_pipeline.extraction.versions import EXTRACTOR_VERSIONS


class FormatExtractor(Protocol):
    NAME: str
    VERSION: str

    def extract(self, path: Path, context: ExtractionContext) -> FormatResult: ...


EXTRACTORS: dict[Format, FormatExtractor] = {
    Format.PDF: cast(FormatExtractor, pdf),
    Format.DXF: cast(FormatExtractor, dxf),
    Format.DWG: cast(FormatExtractor, dwg),
    Format.IFC: cast(FormatExtractor, ifc),
    Format.STEP: cast(FormatExtractor, step),
}


def extractor_for(fmt: Format) -> FormatExtractor | None:
    return EXTRACTORS.get(fmt)


def extractor_versions() -> dict[str, str]:
    """``{"pdf": "1.0.0", ...}``: what ``backfill --outdated`` compares stored versions with."""
    return dict(EXTRACTOR_VERSIONS)


def metadata_models() -> dict[str, type[FormatMetadata]]:
    """Each format's metadata model (the ``FormatMetadata`` subclass its module defines)."""
    models: dict[str, type[FormatMetadata]] = {}
    for fmt, module in EXTRACTORS.items():
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, FormatMetadata)
                and value.__module__ == getattr(module, "__name__", None)
            ):
                models[fmt.value] = value
                break
    return models


def required_metadata_keys(fmt: str) -> set[str]:
    """The keys INTERFACE.md requires in a succeeded envelope's ``metadata`` for ``fmt``."""
    model = metadata_models()[fmt]
    return {field.alias or name for name, field in model.model_fields.items()}
