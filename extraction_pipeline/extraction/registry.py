"""Which extractor reads which format: the modules named by the table of formats (``format_table``).

Adding a format = a module under formats/ and its ``FormatSpec`` in ``format_table.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, cast

from extraction_pipeline.extraction import format_table
from extraction_pipeline.extraction.context import ExtractionContext, FormatResult
from extraction_pipeline.extraction.envelope import FormatMetadata
from extraction_pipeline.extraction.versions import EXTRACTOR_VERSIONS


class FormatExtractor(Protocol):
    NAME: str
    VERSION: str

    def extract(self, path: Path, context: ExtractionContext) -> FormatResult: ...


def extractor_modules() -> dict[str, str]:
    """Format -> the module that reads it. Modules are imported on first use, so a one-file
    `extract` (and its worker) loads one extractor, not every one."""
    return {spec.name: spec.module for spec in format_table.formats()}


def extractor_for(fmt: str) -> FormatExtractor | None:
    """The extractor module of ``fmt`` (imported now), or None for ``unknown``."""
    spec = format_table.find(fmt)
    if spec is None:
        return None
    return cast(FormatExtractor, spec.extractor())


def extractor_versions() -> dict[str, str]:
    """``{"pdf": "1.0.0", ...}``: what ``backfill --outdated`` compares stored versions with."""
    return dict(EXTRACTOR_VERSIONS)


def metadata_models() -> dict[str, type[FormatMetadata]]:
    """Each format's metadata model (``FormatSpec.metadata_model``, imported now)."""
    models: dict[str, type[FormatMetadata]] = {}
    for spec in format_table.formats():
        model = spec.metadata_class()
        if not (isinstance(model, type) and issubclass(model, FormatMetadata)):
            raise TypeError(f"{spec.metadata_model} is not a FormatMetadata model")
        models[spec.name] = model
    return models


def required_metadata_keys(fmt: str) -> set[str]:
    """The keys INTERFACE.md requires in a succeeded envelope's ``metadata`` for ``fmt``."""
    model = metadata_models()[fmt]
    return {field.alias or name for name, field in model.model_fields.items()}
