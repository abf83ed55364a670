"""Which extractor reads which format. Adding a format = a module under formats/ and one line here."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, cast

from extraction_pipeline.extraction.context import ExtractionContext, FormatResult
from extraction_pipeline.extraction.detect import Format
from extraction_pipeline.extraction.formats import dwg, dxf, ifc, pdf, step


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
    """``{"pdf": "1.0.0", ...}``: the orchestration derives the asset's code version from it."""
    return {fmt.value: module.VERSION for fmt, module in EXTRACTORS.items()}
