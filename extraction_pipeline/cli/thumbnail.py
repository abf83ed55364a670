"""``thumbnail``: write a file's stored PNG preview (``service.previews``)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from extraction_pipeline.cli.common import (
    EXIT_FAILED,
    emit_json,
    fail,
    load_settings,
    open_repository,
    operation_errors,
)
from extraction_pipeline.persistence.blobs import blob_store_from_url
from extraction_pipeline.service.errors import FileNotFound
from extraction_pipeline.service.previews import NoThumbnail, PreviewRenderer, load_thumbnail


@click.command()
@click.argument("file_id", type=int)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
    help="Where to write the PNG (`-`: standard output).",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"id","path","size_bytes"} when written.')
def thumbnail(file_id: int, output: Path, as_json: bool) -> None:
    """Write the PNG preview of file FILE_ID (512 px).

    An upload's preview is made when it is extracted; a file extracted by a backfill gets its
    preview now, the first time it is asked for (an isolated worker reads the file again).

    Exit code 0 when written, 1 when the file has no preview (the message says why), 2 when there
    is no such file.
    """
    settings = load_settings()
    repository = open_repository(settings)
    render = PreviewRenderer(settings) if settings.previews else None
    try:
        with operation_errors():
            store = blob_store_from_url(settings.storage_url)
            png = load_thumbnail(repository, store, file_id, render=render)
    except FileNotFound as exc:
        fail(exc.message)
    except NoThumbnail as exc:
        fail(exc.message, EXIT_FAILED)
    finally:
        if render is not None:
            render.close()
        repository.dispose()
    if str(output) == "-":
        sys.stdout.buffer.write(png)
        sys.stdout.buffer.flush()
        return
    _write_atomically(output, png)
    if as_json:
        emit_json({"id": file_id, "path": str(output), "size_bytes": len(png)})
    else:
        click.echo(f"wrote {output} ({len(png)} bytes)", err=True)


def _write_atomically(output: Path, data: bytes) -> None:
    """``data`` into ``output`` whole or not at all (a temporary file beside it, then a rename)."""
    folder = output.parent if str(output.parent) else Path(".")
    try:
        handle, temp_name = tempfile.mkstemp(dir=folder, prefix=f".{output.name}.", suffix=".tmp")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp_name, output)
    except OSError as exc:
        Path(temp_name).unlink(missing_ok=True)
        fail(f"cannot write {output}: {exc.strerror}", EXIT_FAILED)


COMMANDS: list[click.Command] = [thumbnail]
