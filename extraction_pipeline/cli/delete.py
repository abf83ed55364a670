"""``delete``: remove files and everything the pipeline keeps of them (``service.deletion``)."""

from __future__ import annotations

import click

from extraction_pipeline.cli.common import (
    EXIT_USAGE,
    emit_json,
    load_settings,
    open_repository,
    operation_errors,
)
from extraction_pipeline.cli.instance import open_dagster_instance
from extraction_pipeline.cli.operations import id_list, plural
from extraction_pipeline.persistence.blobs import blob_store_from_url
from extraction_pipeline.service.deletion import delete_files


@click.command()
@click.argument("file_ids", nargs=-1, type=int, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def delete(file_ids: tuple[int, ...], as_json: bool) -> None:
    """Remove files: row, attempts, metadata, text, blob, preview and dynamic partition.

    A file still queued or running is cancelled first (its run terminated, as `cancel` does).
    Exit code 0 when a file was deleted, 2 when none of the ids exists.
    """
    settings = load_settings()
    repository = open_repository(settings)
    instance = open_dagster_instance(settings, required=False)
    try:
        with operation_errors():
            store = blob_store_from_url(settings.storage_url)
            outcome = delete_files(repository, store, instance, file_ids, by="`extraction-pipeline delete`")
    finally:
        if instance is not None:
            instance.dispose()
        repository.dispose()
    if as_json:
        emit_json(
            {
                "deleted": outcome.deleted,
                "not_found": outcome.not_found,
                "terminated_runs": outcome.terminated_runs,
                "leftovers": outcome.leftovers,
            }
        )
    else:
        if outcome.deleted:
            click.echo(f"deleted {plural(len(outcome.deleted), 'file')}: {id_list(outcome.deleted)}")
        if outcome.terminated_runs:
            click.echo(f"terminated {plural(len(outcome.terminated_runs), 'run')}", err=True)
        for line in outcome.leftovers:
            click.echo(f"warning: {line}", err=True)
        for file_id in outcome.not_found:
            click.echo(f"file {file_id} does not exist: nothing to delete", err=True)
    if not outcome.deleted:
        raise SystemExit(EXIT_USAGE)


COMMANDS: list[click.Command] = [delete]
