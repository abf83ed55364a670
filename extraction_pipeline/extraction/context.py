"""What an extractor receives besides the path, and what it gives back."""

from __future__ import annotations

from dataclasses import dataclass, field

from extraction_pipeline.extraction.detect import Detection
from extraction_pipeline.extraction.envelope import FormatMetadata
from extraction_pipeline.extraction.limits import DEFAULT_MAX_FILE_BYTES
from extraction_pipeline.extraction.text import TextCollector

__all__ = ["DEFAULT_MAX_FILE_BYTES", "ExtractionContext", "FormatResult"]


@dataclass(frozen=True)
class ExtractionContext:
    """Inputs shared by every format's ``extract(path, context)``."""

    detection: Detection
    filename: str
    # Largest amount of data an extractor may inflate or read (ifcZIP members, for one).
    max_bytes: int = DEFAULT_MAX_FILE_BYTES
    # Most characters of the file's text to gather (``EXTRACTION_MAX_TEXT_CHARS``); None: no text.
    max_text_chars: int | None = None

    def text_collector(self) -> TextCollector | None:
        """Where an extractor puts the file's text, or None when nobody asked for it."""
        return None if self.max_text_chars is None else TextCollector(self.max_text_chars)


@dataclass
class FormatResult:
    """An extractor's answer: the metadata plus anything the user should be warned about."""

    metadata: FormatMetadata
    warnings: list[str] = field(default_factory=list)
    # Set when the extractor learns the variant better than detection did.
    variant: str | None = None
    # The file's plain text, when ``context.max_text_chars`` asked for it (None: the file has none).
    text: TextCollector | None = None
