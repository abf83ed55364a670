"""``upload``: local files (folders recursively) into the blob store and ``cloud_files``."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from extraction_pipeline.cli.common import emit_json, fail, load_settings, open_repository, operation_errors
from extraction_pipeline.extraction.errors import TooLarge
from extraction_pipeline.extraction.extract import printable_name
from extraction_pipeline.persistence.blobs import BlobStore, blob_store_from_url
from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline.service.errors import ServiceError
from extraction_pipeline.service.uploads import upload_stream
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
    with click.progressbar(candidates, label="uploading", file=sys.stderr) as bar:
        return [_upload_one(c, store, repository, settings.max_file_bytes) for c in bar]


def _upload_one(
    candidate: UploadCandidate, store: BlobStore, repository: CloudFileRepository, max_bytes: int
) -> dict[str, Any]:
    try:
        with candidate.path.open("rb") as source:
            return upload_stream(source, candidate.name, None, store, repository, max_bytes=max_bytes)
    except TooLarge:
        fail(f"{candidate.path}: grew over the maximum upload size while it was read")
    except ServiceError as exc:  # emptied, or a name the database cannot hold
        fail(f"{candidate.path}: {exc.message}")
    except OSError as exc:
        fail(f"{candidate.path}: cannot be read: {exc.strerror}")


COMMANDS: list[click.Command] = [upload]
