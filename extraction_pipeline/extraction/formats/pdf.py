"""PDF metadata with PyMuPDF."""

from __future__ import annotations

from pathlib import Path

from extraction_pipeline.extraction.context import ExtractionContext, FormatResult
from extraction_pipeline.extraction.envelope import FormatMetadata

NAME = "pdf"
VERSION = "1.0.0"


class PdfMetadata(FormatMetadata):
    pdf_version: str | None
    page_count: int
    encrypted: bool
    needs_password: bool
    title: str | None
    author: str | None
    subject: str | None
    keywords: str | None
    creator: str | None
    producer: str | None
    created_at: str | None
    modified_at: str | None
    page_sizes_pt: list[dict] | None
    text_chars: int | None
    pages_without_text: int | None
    image_count: int | None
    has_forms: bool | None
    toc_entries: list[dict] | None
    annotation_count: int | None
    repaired: bool


def extract(path: Path, context: ExtractionContext) -> FormatResult:
    raise NotImplementedError
