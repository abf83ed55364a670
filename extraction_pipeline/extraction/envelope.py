"""The result envelope: the one shape every extraction returns, whatever the format."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from extraction_pipeline.extraction import format_table
from extraction_pipeline.extraction.errors import ErrorKind, ExtractionError


def _known_format(value: str) -> str:
    names = format_table.format_names(unknown=True)
    if value not in names:
        quoted = [repr(name) for name in names]
        expected = f"{', '.join(quoted[:-1])} or {quoted[-1]}"  # as pydantic says it of a Literal
        raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
    return value


class _FormatEnum:
    """The JSON Schema of ``format``: the enum of the table's names and ``"unknown"``, read when the
    schema is generated (a format registered later is in it)."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"enum": list(format_table.format_names(unknown=True)), "type": "string"}


# The envelope's ``format``: a name of the table of formats (``format_table``) or ``"unknown"``.
# Checked against the table when validated, so that a registered format is accepted too.
FormatName = Annotated[str, AfterValidator(_known_format), _FormatEnum]


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
    # Only with `extract --text` (see ``TEXT_KEYS``): the file's plain text (None: it carries none),
    # and whether it was cut at `EXTRACTION_MAX_TEXT_CHARS`.
    text: str | None = None
    text_truncated: bool = False
    # Only with `extract --thumbnail`: the PNG preview, base64 (never printed: the CLI writes a file).
    preview_png: str | None = Field(default=None, exclude=True)
    # Only in the pipeline: where the preview was stored (the attempt's result keeps it for
    # ``materialize``, which writes it to ``cloud_file_metadata.preview_uri``). Never printed.
    preview_uri: str | None = Field(default=None, exclude=True)

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


# The envelope's keys that `extract --json` prints only with `--text`.
TEXT_KEYS = frozenset({"text", "text_truncated"})
