"""The result envelope: the one shape every extraction returns, whatever the format."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from extraction_pipeline.extraction.errors import ErrorKind, ExtractionError

FormatName = Literal["pdf", "dxf", "dwg", "ifc", "step", "unknown"]


class FileInfo(BaseModel):
    name: str
    size_bytes: int
    sha256: str


class ExtractorInfo(BaseModel):
    name: str
    version: str


class ErrorInfo(BaseModel):
    kind: ErrorKind
    code: str
    message: str

    @classmethod
    def from_exception(cls, exc: ExtractionError) -> ErrorInfo:
        return cls(kind=exc.kind, code=exc.code, message=exc.message)


class FormatMetadata(BaseModel):
    """Base of the per-format metadata models: every declared field is required (may be null)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Envelope(BaseModel):
    """What `extract --json` prints and what the pipeline materializes."""

    file: FileInfo
    format: FormatName
    variant: str | None = None
    extension_matches: bool = True
    status: Literal["succeeded", "failed"]
    extractor: ExtractorInfo
    warnings: list[str] = Field(default_factory=list)
    error: ErrorInfo | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    duration_ms: int = 0

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"
