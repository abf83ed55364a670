"""Extract one file in this process: hash, detect, dispatch to the format's extractor, build the envelope.

Use ``workers.WorkerPool`` to run this isolated in a child process with time and memory limits.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from extraction_pipeline.extraction import format_table
from extraction_pipeline.extraction.context import DEFAULT_MAX_FILE_BYTES, ExtractionContext
from extraction_pipeline.extraction.detect import Detection, Format, detect_format
from extraction_pipeline.extraction.envelope import Envelope, ErrorInfo, ExtractorInfo, FileInfo
from extraction_pipeline.extraction.errors import (
    CorruptFile,
    ExtractionError,
    ExtractorError,
    TooLarge,
    UnsupportedFormat,
    extractor_fault_message,
    is_extractor_fault,
)
from extraction_pipeline.extraction.registry import extractor_for
from extraction_pipeline.extraction.text import valid_unicode

DETECTOR = ExtractorInfo(name="detect", version="1.0.0")
_CHUNK = 1024 * 1024


def file_info(path: Path, name: str) -> FileInfo:
    """Size and sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileInfo(name=name, size_bytes=size, sha256=digest.hexdigest())


def printable_name(name: str) -> str:
    """A file name as valid Unicode: bytes that were not UTF-8 (surrogate escapes) become U+FFFD."""
    return valid_unicode(name)


def extract_file(
    path: str | Path,
    filename: str | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
    max_text_chars: int | None = None,
    preview: bool = False,
) -> Envelope:
    """Detect and extract ``path``; every failure becomes a failed envelope, never an exception.

    ``max_text_chars``: also gather the file's plain text, at most that many characters (None: no
    text, the envelope's ``text`` stays None). ``preview``: also render the PNG preview
    (``previews.py``) into ``preview_png``; a preview that cannot be made is a warning, never a failure.
    """
    started = time.perf_counter()
    path = Path(path)
    name = printable_name(filename if filename is not None else path.name)
    info = file_info(path, name)
    detection = Detection(Format.UNKNOWN, extension_matches=False)
    extractor = DETECTOR
    warnings: list[str] = []
    try:
        if info.size_bytes > max_bytes:
            raise TooLarge(f"the file has {info.size_bytes} bytes, more than the limit of {max_bytes}")
        if info.size_bytes == 0:
            raise UnsupportedFormat("the file is empty")
        detection = detect_format(path, name)
        warnings.extend(detection.warnings)
        module = extractor_for(detection.format)
        if module is None:
            raise UnsupportedFormat(f"the content is not {format_table.supported_formats_text()}")
        extractor = ExtractorInfo(name=module.NAME, version=module.VERSION)
        context = ExtractionContext(
            detection=detection, filename=name, max_bytes=max_bytes, max_text_chars=max_text_chars
        )
        result = module.extract(path, context)
        warnings.extend(result.warnings)
        text = result.text
        if text is not None and text.truncated:
            warnings.append(f"the text was cut at {text.limit} characters (EXTRACTION_MAX_TEXT_CHARS)")
        metadata = result.metadata.model_dump(mode="json", by_alias=True)
        preview_png = (
            _preview(path, str(detection.format), metadata, info.size_bytes, warnings) if preview else None
        )
        return Envelope(
            preview_png=preview_png,
            file=info,
            format=str(detection.format),
            variant=result.variant if result.variant is not None else detection.variant,
            extension_matches=detection.extension_matches,
            status="succeeded",
            extractor=extractor,
            warnings=warnings,
            metadata=metadata,
            duration_ms=_elapsed_ms(started),
            text=text.text() if text is not None else None,
            text_truncated=text is not None and text.truncated,
        )
    except ExtractionError as exc:
        error = ErrorInfo.from_exception(exc)
    except MemoryError:
        error = ErrorInfo(kind="permanent", code="out_of_memory", message="the extraction ran out of memory")
    except Exception as exc:
        if is_extractor_fault(exc):  # the installation or our code, not the file
            error = ErrorInfo.from_exception(
                ExtractorError(extractor_fault_message(f"{type(exc).__name__}: {exc}"))
            )
        else:  # a parser library choking on the bytes: the file is unreadable
            error = ErrorInfo.from_exception(CorruptFile(f"{type(exc).__name__}: {exc}"[:2000]))
    return failed_envelope(
        info, detection, extractor, error, warnings=warnings, duration_ms=_elapsed_ms(started)
    )


def failed_envelope(
    info: FileInfo,
    detection: Detection,
    extractor: ExtractorInfo,
    error: ErrorInfo,
    *,
    warnings: list[str],
    duration_ms: int,
) -> Envelope:
    """The envelope of a file that could not be extracted: what is known of it, and why."""
    return Envelope(
        file=info,
        format=str(detection.format),
        variant=detection.variant,
        extension_matches=detection.extension_matches,
        status="failed",
        extractor=extractor,
        warnings=warnings,
        error=error,
        duration_ms=duration_ms,
    )


def _preview(path: Path, fmt: str, metadata: dict[str, Any], size: int, warnings: list[str]) -> str | None:
    """The base64 PNG preview, or None and a warning saying why there is none."""
    import base64

    from extraction_pipeline.extraction.previews import NoPreview, is_blank, make_preview, too_big

    reason = too_big(fmt, metadata, size)
    if reason is not None:
        warnings.append(f"no preview: {reason}")
        return None
    try:
        png = make_preview(path, fmt)
        if is_blank(png):
            warnings.append("the preview is blank: the first page or the drawing shows nothing")
        return base64.b64encode(png).decode("ascii")
    except NoPreview as exc:
        warnings.append(f"no preview: {exc}")
    except MemoryError:
        warnings.append("no preview: rendering it ran out of memory")
    except Exception as exc:  # noqa: BLE001 - a preview never fails the file
        warnings.append(f"no preview: the renderer failed ({type(exc).__name__}: {exc})"[:500])
    return None


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
