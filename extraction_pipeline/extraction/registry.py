"""Which extractor reads which format. Adding a format = a module under formats/ and one line here."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol, cast

from extraction_pipeline.extraction.context import ExtractionContext, FormatResult
from extraction_pipeline.extraction.detect import Format
from extraction_pipeline.extraction.envelope import FormatMetadata
from extraction_pipeline.extraction.versions import EXTRACTOR_VERSIONS


class FormatExtractor(Protocol):
    NAME: str
    VERSION: str

    def extract(self, path: Path, context: ExtractionContext) -> FormatResult: ...


# Format -> the module under formats/ that reads it. Modules are imported on first use, so a
# one-file `extract` (and its worker) loads one extractor, not five.
EXTRACTOR_MODULES: dict[Format, str] = {
    Format.PDF: "pdf",
    Format.DXF: "dxf",
    Format.DWG: "dwg",
    Format.IFC: "ifc",
    Format.STEP: "step",
}


def extractor_for(fmt: Format) -> FormatExtractor | None:
    name = EXTRACTOR_MODULES.get(fmt)
    if name is None:
        return None
    return cast(FormatExtractor, importlib.import_module(f"extraction_pipeline.extraction.formats.{name}"))


def extractor_versions() -> dict[str, str]:
    """``{"pdf": "1.0.0", ...}``: what ``backfill --outdated`` compares stored versions with."""
    return dict(EXTRACTOR_VERSIONS)


def metadata_models() -> dict[str, type[FormatMetadata]]:
    """Each format's metadata model (the ``FormatMetadata`` subclass its module defines)."""
    models: dict[str, type[FormatMetadata]] = {}
    for fmt in EXTRACTOR_MODULES:
        module = extractor_for(fmt)
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
