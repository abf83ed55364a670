"""``upload``, ``list`` and ``status``: files in, state out."""

from __future__ import annotations

import mimetypes
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from extraction_pipeline.cli.choices import FormatChoice
from extraction_pipeline.cli.common import (
    EXIT_FAILED,
    emit_json,
    fail,
    load_settings,
    open_repository,
    operation_errors,
)
from extraction_pipeline.cli.extraction import _figure
from extraction_pipeline.extraction.errors import TooLarge
from extraction_pipeline.extraction.extract import printable_name
from extraction_pipeline.persistence.blobs import BlobStore, blob_store_from_url
from extraction_pipeline.persistence.repository import CloudFileRepository, NewFile, status_of
from extraction_pipeline.persistence.state import STATUSES, ExtractionState, FileStatus, JobStatus
from extraction_pipeline.settings import MIB, Settings

PROGRESS_THRESHOLD = 10


@dataclass(frozen=True)
class UploadCandidate:
    path: Path
    name: str
    size_bytes: int


def collect_upload_candidates(paths: tuple[str, ...], max_bytes: int) -> list[UploadCandidate]:
    """Every file to upload, checked up front so that bad input leaves nothing behind.

    Every bad path is reported (one line each on stderr), then the command exits with code 2.
    """
    found: list[UploadCandidate] = []
    problems: list[str] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            problems.append(f"{raw}: no such file or directory")
            continue
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            if not files:
                problems.append(f"{raw}: the directory has no files in it")
        elif path.is_file():
            files = [path]
        else:
            problems.append(f"{raw}: not a regular file or directory")
            continue
        for file in files:
            candidate = _check_file(file, max_bytes)
            if isinstance(candidate, str):
                problems.append(candidate)
            else:
                found.append(candidate)
    if problems:
        for problem in problems[:-1]:
            click.echo(f"error: {' '.join(problem.split())}", err=True)
        fail(problems[-1])
    return found


def _check_file(path: Path, max_bytes: int) -> UploadCandidate | str:
    """The file as an upload candidate, or what is wrong with it."""
    try:
        size = path.stat().st_size
        with path.open("rb"):
            pass
    except PermissionError:
        return f"{path}: permission denied (the file is not readable)"
    except OSError as exc:
        return f"{path}: cannot be read: {exc.strerror}"
    if size == 0:
        return f"{path}: the file is empty (0 bytes)"
    if size > max_bytes:
        return f"{path}: {size} bytes is over the maximum upload size of {max_bytes // MIB} MiB (EXTRACTION_MAX_FILE_MB)"
    return UploadCandidate(path=path, name=printable_name(path.name), size_bytes=size)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the uploaded files as JSON.")
def upload(paths: tuple[str, ...], as_json: bool) -> None:
    """Store files (directories recursively) and register them for extraction."""
    settings = load_settings()
    candidates = collect_upload_candidates(paths, settings.max_file_bytes)
    repository = open_repository(settings)
    show_progress = len(candidates) >= PROGRESS_THRESHOLD and not as_json
    with operation_errors():
        uploaded = upload_candidates(candidates, settings, repository, show_progress=show_progress)
    repository.dispose()
    if as_json:
        emit_json(uploaded)
    else:
        for item in uploaded:
            click.echo(f"{item['id']}\t{item['filename']}\t{item['size_bytes']} bytes\t{item['sha256']}")


def upload_candidates(
    candidates: list[UploadCandidate],
    settings: Settings,
    repository: CloudFileRepository,
    *,
    show_progress: bool,
) -> list[dict[str, Any]]:
    """Store each file's bytes, then its row; a failure in between removes the blob again."""
    store = blob_store_from_url(settings.storage_url)
    if not show_progress:
        return [_upload_one(c, store, repository, settings.max_file_bytes) for c in candidates]
    with click.progressbar(candidates, label="uploading", file=click.get_text_stream("stderr")) as bar:
        return [_upload_one(c, store, repository, settings.max_file_bytes) for c in bar]


def _upload_one(
    candidate: UploadCandidate, store: BlobStore, repository: CloudFileRepository, max_bytes: int
) -> dict[str, Any]:
    try:
        with candidate.path.open("rb") as source:
            blob = store.put(source, max_bytes=max_bytes)
    except TooLarge:
        fail(f"{candidate.path}: grew over the maximum upload size while it was read")
    except OSError as exc:
        fail(f"{candidate.path}: cannot be read: {exc.strerror}")
    try:
        row = repository.add_file(
            NewFile(
                filename=candidate.name,
                size_bytes=blob.size_bytes,
                sha256=blob.sha256,
                storage_uri=blob.uri,
                content_type=mimetypes.guess_type(candidate.name)[0],
            )
        )
    except BaseException:
        store.delete(blob.uri)  # no blob without a row
        raise
    return {"id": row.id, "filename": row.filename, "size_bytes": row.size_bytes, "sha256": row.sha256}


def file_summary(row: Any) -> dict[str, Any]:
    state: ExtractionState | None = row.state
    if state is None:
        return {
            "id": row.id,
            "filename": row.filename,
            "format": None,
            "status": None,
            "attempts": 0,
            "error": None,
        }
    document = state.document()  # the keys as stored: a missing one reads as before
    return {
        "id": row.id,
        "filename": row.filename,
        "format": state.format,
        "status": document.get("status"),
        "attempts": document.get("attempts", 0),
        "error": state.error_document(),
    }


@click.command(name="list")
@click.option("--status", type=click.Choice(STATUSES), help="Only files in this state.")
@click.option("--format", "fmt", type=FormatChoice(unknown=True))
@click.option("--limit", type=click.IntRange(min=1), help="At most this many files.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_files(status: str | None, fmt: str | None, limit: int | None, as_json: bool) -> None:
    """Files with their extraction status."""
    settings = load_settings()
    repository = open_repository(settings)
    with operation_errors():
        rows = repository.list_files(status=status, fmt=fmt, limit=limit)
    repository.dispose()
    summaries = [file_summary(row) for row in rows]
    if as_json:
        emit_json(summaries)
        return
    if not summaries:
        click.echo(
            "no files" + (f" with status {status}" if status else "") + (f" in format {fmt}" if fmt else ""),
            err=True,
        )
        return
    for line in file_table(summaries, shutil.get_terminal_size(fallback=(120, 24)).columns):
        click.echo(line)


# The widest the file name column gets before names are shortened in the middle.
NAME_WIDTH = 40
# The narrowest the name and error columns get, whatever the terminal's width.
MIN_NAME_WIDTH = 16
ERROR_WIDTH = 24


def _printable(text: str) -> str:
    """One line of printable characters (a name from the host app may hold tabs or newlines)."""
    return "".join(c if c.isprintable() else "?" for c in " ".join(text.split()))


def _shorten_end(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "\u2026"


def _shorten_middle(text: str, width: int) -> str:
    """``a-very-long-drawing-name-rev-12.dwg`` -> ``a-very-long-dr\u2026ev-12.dwg``: the end (extension) stays."""
    if len(text) <= width:
        return text
    tail = max((width - 1) // 3, 1)
    return text[: width - 1 - tail] + "\u2026" + text[-tail:]


def file_table(summaries: list[dict[str, Any]], columns: int) -> list[str]:
    """``list``: a header and one aligned row per file; long names and messages shortened to fit ``columns``."""
    headers = ("ID", "STATUS", "FORMAT", "ATTEMPTS", "FILE", "ERROR")
    cells = []
    for item in summaries:
        error = item["error"] or {}
        message = ""
        if error:
            message = _printable(f"{error.get('code') or 'error'}: {error.get('message') or ''}").rstrip(": ")
        cells.append(
            [
                str(item["id"]),
                item["status"] or FileStatus.PENDING,
                item["format"] or "-",
                str(item["attempts"] or 0),
                _printable(item["filename"]),
                message,
            ]
        )
    widths = [max(len(headers[i]), *(len(row[i]) for row in cells)) for i in range(4)]
    room = columns - sum(widths) - 2 * 5  # for the name and the error, after the separators
    longest = max(len(headers[4]), *(len(row[4]) for row in cells))
    name_width = min(longest, max(room, MIN_NAME_WIDTH))
    if any(row[5] for row in cells):  # the errors share the room
        name_width = min(longest, NAME_WIDTH, max(room // 2, MIN_NAME_WIDTH))
    widths.append(name_width)
    error_width = max(room - widths[4], ERROR_WIDTH)
    lines = []
    for row in [list(headers), *cells]:
        row[4] = _shorten_middle(row[4], widths[4])
        row[5] = _shorten_end(row[5], error_width)
        fixed = [row[0].rjust(widths[0])] + [row[i].ljust(widths[i]) for i in range(1, 5)]
        lines.append(("  ".join([*fixed, row[5]])).rstrip())
    return lines


# What `status` shows of a succeeded file's metadata, per format: (metadata key, label).
KEY_METADATA: dict[str, tuple[tuple[str, str], ...]] = {
    "pdf": (
        ("title", "title"),
        ("author", "author"),
        ("subject", "subject"),
        ("page_count", "pages"),
        ("pdf_version", "PDF version"),
        ("created_at", "created"),
    ),
    "dxf": (
        ("dxf_version", "version"),
        ("release", "release"),
        ("units", "units"),
        ("layer_names", "layers"),
        ("entity_counts", "entities"),
        ("extents", "extents"),
    ),
    "dwg": (
        ("dwg_version", "version"),
        ("release", "release"),
        ("units", "units"),
        ("title", "title"),
        ("author", "author"),
        ("layer_names", "layers"),
        ("entity_counts", "entities"),
    ),
    "ifc": (
        ("schema", "schema"),
        ("project_name", "project"),
        ("buildings", "buildings"),
        ("storeys", "storeys"),
        ("element_counts", "elements"),
        ("length_unit", "length unit"),
    ),
    "step": (
        ("application_protocol", "protocol"),
        ("parts", "parts"),
        ("solid_count", "solids"),
        ("volume_mm3", "volume (mm3)"),
        ("bbox_mm", "bounding box (mm)"),
        ("length_unit", "length unit"),
    ),
}


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _error_text(code: str | None, message: str | None, width: int = 2000) -> str:
    text = _figure(message, width=width)
    return f"{code}: {text}" if text else str(code)


def attempt_line(
    job: Any, *, retried: bool = False, now: datetime | None = None, shown_error: str | None = None
) -> str:
    """One attempt: its number (``final`` for a failure no retry follows), state, start and duration.

    ``retried``: a later attempt exists (an attempt that failed transiently stays ``retrying``).
    ``shown_error``: the message printed already (the file's error): the attempt gives only its code.
    """
    now = now or datetime.now(UTC)
    state = job.status
    if state == JobStatus.FAILED:
        label = f"attempt {job.attempt} (final)"  # a failure nothing retries
    elif state == JobStatus.RETRYING and retried:
        label, state = f"attempt {job.attempt}/{job.max_attempts}", "failed, retried"
    elif state in (JobStatus.RUNNING, JobStatus.RETRYING):
        label = f"attempt {job.attempt}/{job.max_attempts}"  # more may follow
    else:
        label = f"attempt {job.attempt}"
    parts = [f"{label}: {state}"]
    if job.started_at is not None:
        started = f"started {_when(job.started_at)}"
        if job.finished_at is not None:
            started += f", took {_duration((job.finished_at - job.started_at).total_seconds())}"
        elif job.status == JobStatus.RUNNING:
            started += f", running for {_duration(max((now - job.started_at).total_seconds(), 0))}"
        parts.append(started)
    elif job.finished_at is not None:
        parts.append(f"finished {_when(job.finished_at)}")
    if job.status == JobStatus.RETRYING and not retried and job.next_retry_at is not None:
        parts.append(f"next attempt at {_when(job.next_retry_at)}")
    if job.error_code:
        if shown_error is not None and job.error_message == shown_error:
            parts.append(job.error_code)
        else:
            parts.append(_error_text(job.error_code, job.error_message, width=160))
    return ", ".join(parts)


def metadata_lines(fmt: str, values: dict[str, Any]) -> list[str]:
    """``label: value`` for the key metadata of ``fmt``; empty values are left out."""
    lines = []
    for key, label in KEY_METADATA.get(fmt, ()):
        shown = _figure(values.get(key))
        if shown is not None:
            lines.append(f"{label}: {shown}")
    return lines


def status_lines(row: Any, jobs: list[Any], stored: Any, now: datetime | None = None) -> list[str]:
    """``status`` for a person: the file, its error (code and message), its attempts, its key metadata."""
    state = status_of(row)
    current: ExtractionState = row.state or ExtractionState()
    fmt = current.format
    head = f"{row.id}  {_printable(row.filename)}  {state}" + (f" ({fmt})" if fmt else "")
    lines = [head]
    if state == FileStatus.PENDING:
        lines.append("  not picked up by the pipeline yet")
    error = current.error
    if error is not None and error.code:
        kind = f" ({error.kind})" if error.kind else ""
        lines.append(f"  error{kind}: {_error_text(error.code, error.message)}")
    if current.deduplicated_from is not None:
        lines.append(f"  metadata copied from file {current.deduplicated_from} (same content)")
    message = error.message if error is not None else None
    for index, job in enumerate(jobs):
        line = attempt_line(job, retried=index < len(jobs) - 1, now=now, shown_error=message)
        lines.append(f"  {line}")
    if stored is not None:
        values = stored.metadata_ or {}
        lines.append(
            f"  {stored.format} metadata (extractor {stored.extractor_version}, "
            f"extracted {_when(stored.extracted_at)}):"
        )
        key_values = metadata_lines(stored.format, values)
        lines.extend(f"    {line}" for line in key_values)
        if not key_values:
            lines.append("    (no key values)")
        for warning in stored.warnings or ():
            text = _figure(warning, width=2000)
            if text is not None:
                lines.append(f"  warning: {text}")
    return lines


@click.command()
@click.argument("file_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def status(file_id: int, as_json: bool) -> None:
    """A file's extraction status, its attempts and a summary of its metadata."""
    settings = load_settings()
    repository = open_repository(settings)
    with operation_errors():
        row = repository.get_file(file_id)
        if row is None:
            fail(f"no file with id {file_id}")
        jobs = repository.jobs_for(file_id)
        stored = repository.metadata_for(file_id)
    repository.dispose()
    document = {
        "id": row.id,
        "filename": row.filename,
        "size_bytes": row.size_bytes,
        "sha256": row.sha256,
        "content_type": row.content_type,
        "uploaded_at": row.uploaded_at.isoformat(),
        "status": status_of(row),
        "extraction_status": row.state_document,
        "jobs": [
            {
                "id": job.id,
                "attempt": job.attempt,
                "max_attempts": job.max_attempts,
                "status": job.status,
                "dagster_run_id": job.dagster_run_id,
                "started_at": job.started_at.isoformat() if job.started_at else None,
                "finished_at": job.finished_at.isoformat() if job.finished_at else None,
                "next_retry_at": job.next_retry_at.isoformat() if job.next_retry_at else None,
                "error": {"kind": job.error_kind, "code": job.error_code, "message": job.error_message}
                if job.error_code
                else None,
            }
            for job in jobs
        ],
        "metadata": None
        if stored is None
        else {
            "format": stored.format,
            "variant": stored.variant,
            "extractor_version": stored.extractor_version,
            "extracted_at": stored.extracted_at.isoformat(),
            "warnings": stored.warnings,
            "values": stored.metadata_,
        },
    }
    if as_json:
        emit_json(document)
    else:
        for line in status_lines(row, jobs, stored):
            click.echo(line)
    if document["status"] == FileStatus.FAILED:
        raise SystemExit(EXIT_FAILED)


COMMANDS: list[click.Command] = [upload, list_files, status]
