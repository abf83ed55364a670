"""The two ways a detected file ends without an extraction, as plain code (no Dagster in here).

- **Skipped**: the content is none of the supported formats (a photo, a spreadsheet, a Word file).
  One look at its bytes (detection), then the file is ``skipped`` with ``error.code``
  ``unsupported_format`` and the reason, its attempt row ``skipped``: no worker, no retry, no failed
  run, no alert. ``backfill --status skipped`` (after a format is added) or ``retry ID --force``
  looks again.
- **Deduplicated**: the file has the same bytes (``sha256`` and size) as an older file that
  ``succeeded`` with the extractor version of the detected format: that file's metadata is copied
  instead of extracting again, the status says ``deduplicated_from`` and so does the attempt's
  ``result``. A file queued by ``retry --force`` (``forced``) is always extracted. Files with the
  same bytes in the same run are all extracted (none has succeeded yet when the run looks).

The upload sensor settles new uploads this way before it requests runs (``settle_before_run``: no
run at all for a photo or a copy); in a run (backfills, retries, a blob the sensor could not read)
``settle`` decides and records both during ``detect_format``, before the extract step starts a
worker; ``not_extracted`` tells ``materialize`` which files of the run ended that way, for the UI.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from extraction_pipeline.extraction import format_table
from extraction_pipeline.persistence.state import JobStatus

if TYPE_CHECKING:
    from extraction_pipeline.persistence.blobs import BlobStore
    from extraction_pipeline.persistence.models import CloudFile, CloudFileMetadata, ExtractionJob
    from extraction_pipeline.persistence.repository import CloudFileRepository

# What detection (``extraction.detect.Format.UNKNOWN``) and the envelope call a file of no supported
# format; not imported from there, which would load detection's imports with the code location.
UNKNOWN_FORMAT = "unknown"
UNSUPPORTED_CODE = "unsupported_format"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def unsupported(row: CloudFile) -> dict[str, str]:
    """The error of a skipped file: permanent, ``unsupported_format``, and why."""
    reason = (
        "the file is empty"
        if row.size_bytes == 0
        else f"the content is not {format_table.supported_formats_text()}"
    )
    return {"kind": "permanent", "code": UNSUPPORTED_CODE, "message": reason}


@dataclass
class Settled:
    """What ``settle`` did with the detected files of a batch."""

    skipped: dict[int, dict[str, Any]] = field(default_factory=dict)  # file id -> error
    deduplicated: dict[int, tuple[int, str]] = field(default_factory=dict)  # file id -> (source, format)
    to_extract: dict[int, str] = field(default_factory=dict)  # file id -> format
    cancelled: list[int] = field(default_factory=list)  # to be skipped, but cancelled meanwhile


def settle(
    repository: CloudFileRepository,
    rows: Mapping[int, CloudFile],
    detected: Mapping[int, str],
    *,
    run_id: str | None,
    attempt: int,
    max_attempts: int,
    versions: Mapping[str, str] | None = None,
    deduplicate: bool = True,
) -> Settled:
    """Skip the detected files of no supported format, copy the metadata of duplicates, and return
    the others (to be extracted). ``versions``: format -> extractor version (the live table's)."""
    if versions is None:
        versions = format_table.EXTRACTOR_VERSIONS
    settled = Settled()
    unknown = {
        file_id: unsupported(rows[file_id]) for file_id, fmt in detected.items() if fmt == UNKNOWN_FORMAT
    }
    recorded = repository.skip_files(unknown, run_id=run_id, attempt=attempt, max_attempts=max_attempts)
    settled.skipped = {file_id: unknown[file_id] for file_id in recorded}
    settled.cancelled = sorted(set(unknown) - set(recorded))
    wanted = {
        file_id: (fmt, versions[fmt])
        for file_id, fmt in detected.items()
        if deduplicate and fmt in versions and _may_be_deduplicated(rows[file_id])
    }
    sources = repository.duplicate_sources(wanted) if wanted else {}
    copied = repository.deduplicate_files(sources, run_id=run_id, attempt=attempt, max_attempts=max_attempts)
    settled.deduplicated = {file_id: (source, detected[file_id]) for file_id, source in copied.items()}
    settled.to_extract = {
        file_id: fmt for file_id, fmt in detected.items() if fmt != UNKNOWN_FORMAT and file_id not in copied
    }
    return settled


def settle_before_run(
    repository: CloudFileRepository,
    store: BlobStore,
    file_ids: Sequence[int],
    *,
    max_attempts: int,
    deduplicate: bool = True,
) -> set[int]:
    """For the upload sensor: the files of ``file_ids`` whose fate needs no run, settled now.

    Each blob's first bytes are read by detection (standard library only); files of no supported
    format are skipped and copies of a succeeded file get its metadata (as ``settle`` does in a run,
    but without a Dagster run per photo: a run costs about a second and a half of a run slot).
    A blob that cannot be read now is left to its run, which retries a storage failure."""
    from extraction_pipeline.extraction.detect import detect_format

    rows = {row.id: row for row in repository.list_files(ids=list(file_ids))}
    detected: dict[int, str] = {}
    for file_id, row in rows.items():
        try:
            with store.local_path(row.storage_uri) as path:
                detected[file_id] = str(detect_format(path, row.filename).format)
        except Exception:  # noqa: BLE001 - unreadable now: the run reads it (and records why)
            continue
    if not detected:
        return set()
    settled = settle(
        repository, rows, detected, run_id=None, attempt=1, max_attempts=max_attempts, deduplicate=deduplicate
    )
    return {*settled.skipped, *settled.deduplicated, *settled.cancelled}


def _may_be_deduplicated(row: CloudFile) -> bool:
    """Not forced (``retry --force``), and a real digest (the host application writes the column)."""
    state = row.state
    if state is not None and state.forced:
        return False
    return bool(_SHA256.fullmatch(row.sha256 or ""))


# -- what materialize shows ----------------------------------------------------------------------


@dataclass(frozen=True)
class SkippedFile:
    file_id: int
    filename: str
    error: dict[str, Any]


@dataclass(frozen=True)
class DeduplicatedFile:
    """A file whose metadata was copied: ``envelope`` rebuilt from the copy, for the UI."""

    file_id: int
    source_id: int
    envelope: dict[str, Any]


@dataclass
class NotExtracted:
    skipped: list[SkippedFile] = field(default_factory=list)
    deduplicated: list[DeduplicatedFile] = field(default_factory=list)


def deduplicated_from(job: ExtractionJob) -> int | None:
    """The source of a deduplicated attempt (``result.deduplicated_from``), else None."""
    if job.status != JobStatus.SUCCEEDED or not job.result:
        return None
    source = job.result.get("deduplicated_from")
    return int(source) if source is not None else None


def not_extracted(
    repository: CloudFileRepository,
    file_ids: Sequence[int],
    jobs: Mapping[int, ExtractionJob],
    rows: Mapping[int, CloudFile],
) -> NotExtracted:
    """The files of ``file_ids`` whose latest attempt in this run was skipped or deduplicated."""
    found = NotExtracted()
    copies: dict[int, int] = {}
    for file_id in file_ids:
        job, row = jobs.get(file_id), rows.get(file_id)
        if job is None or row is None:
            continue  # not tried in this run, or deleted meanwhile
        if job.status == JobStatus.SKIPPED:
            error = {"kind": job.error_kind, "code": job.error_code, "message": job.error_message}
            found.skipped.append(SkippedFile(file_id, row.filename, error))
        elif (source := deduplicated_from(job)) is not None:
            copies[file_id] = source
    if copies:
        stored = repository.metadata_of(list(copies))
        for file_id, source in copies.items():
            meta = stored.get(file_id)
            if meta is not None:
                envelope = copied_envelope(rows[file_id], meta, source)
                found.deduplicated.append(DeduplicatedFile(file_id, source, envelope))
    return found


def copied_envelope(row: CloudFile, meta: CloudFileMetadata, source_id: int) -> dict[str, Any]:
    """The envelope of a deduplicated file as the UI's summary reads one: its own name, size and
    digest, the copied format, version, metadata and warnings."""
    return {
        "file": {"name": row.filename, "size_bytes": row.size_bytes, "sha256": row.sha256},
        "format": meta.format,
        "variant": meta.variant,
        "status": "succeeded",
        "extractor": {"name": meta.format, "version": meta.extractor_version},
        "warnings": list(meta.warnings or []),
        "metadata": meta.metadata_ or {},
        "duration_ms": 0,
        "deduplicated_from": source_id,
        "preview_uri": meta.preview_uri,
    }
