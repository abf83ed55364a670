"""``upload``, ``list`` and ``status``: files in, state out."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from extraction_pipeline.cli.common import (
    EXIT_FAILED,
    emit_json,
    fail,
    load_settings,
    open_repository,
    operation_errors,
)
from extraction_pipeline.extraction.errors import TooLarge
from extraction_pipeline.extraction.extract import printable_name
from extraction_pipeline.persistence.blobs import BlobStore, blob_store_from_url
from extraction_pipeline.persistence.repository import STATUSES, CloudFileRepository, NewFile, status_of
from extraction_pipeline.settings import MIB, Settings

PROGRESS_THRESHOLD = 10


@dataclass(frozen=True)
class UploadCandidate:
    path: Path
    name: str
    size_bytes: int


def collect_upload_candidates(paths: tuple[str, ...], max_bytes: int) -> list[UploadCandidate]:
    """Every file to upload, checked up front so that bad input leaves nothing behind."""
    found: list[UploadCandidate] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            fail(f"{raw}: no such file or directory")
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            if not files:
                fail(f"{raw}: the directory has no files in it")
        elif path.is_file():
            files = [path]
        else:
            fail(f"{raw}: not a regular file or directory")
        for file in files:
            found.append(_check_file(file, max_bytes))
    return found


def _check_file(path: Path, max_bytes: int) -> UploadCandidate:
    try:
        size = path.stat().st_size
        with path.open("rb"):
            pass
    except PermissionError:
        fail(f"{path}: permission denied (the file is not readable)")
    except OSError as exc:
        fail(f"{path}: cannot be read: {exc.strerror}")
    if size == 0:
        fail(f"{path}: the file is empty (0 bytes)")
    if size > max_bytes:
        fail(
            f"{path}: {size} bytes is over the maximum upload size of {max_bytes // MIB} MiB (EXTRACTION_MAX_FILE_MB)"
        )
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
    status = row.extraction_status or {}
    return {
        "id": row.id,
        "filename": row.filename,
        "format": status.get("format"),
        "status": status.get("status"),
        "attempts": status.get("attempts", 0),
        "error": status.get("error"),
    }


@click.command(name="list")
@click.option("--status", type=click.Choice(STATUSES), help="Only files in this state.")
@click.option("--format", "fmt", type=click.Choice(["pdf", "dxf", "dwg", "ifc", "step", "unknown"]))
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
    for item in summaries:
        error = f"\t{item['error']['code']}: {item['error']['message']}" if item["error"] else ""
        click.echo(
            f"{item['id']}\t{item['status'] or 'pending'}\t{item['format'] or '-'}\t{item['filename']}{error}"
        )


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
        "extraction_status": row.extraction_status,
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
        click.echo(f"{row.id}\t{row.filename}\t{document['status']}")
        for job in document["jobs"]:
            error = f"\t{job['error']['code']}" if job["error"] else ""
            click.echo(f"  attempt {job['attempt']}/{job['max_attempts']}\t{job['status']}{error}")
        if stored is not None:
            click.echo(
                f"  {stored.format} metadata: {len(stored.metadata_)} keys, {len(stored.warnings)} warnings"
            )
    if document["status"] == "failed":
        raise SystemExit(EXIT_FAILED)


COMMANDS: list[click.Command] = [upload, list_files, status]
