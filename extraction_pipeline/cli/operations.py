"""``retry``, ``cancel`` and ``backfill``: operator commands on the pipeline.

The work is ``service.operations``' (the HTTP API calls the same functions); this module parses
the options and prints.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from extraction_pipeline.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    emit_json,
    fail,
    load_settings,
    open_repository,
    operation_errors,
)
from extraction_pipeline.cli.instance import open_dagster_instance
from extraction_pipeline.persistence.state import FileStatus
from extraction_pipeline.service.operations import (
    BackfillSelection,
    cancel_files,
    launch_backfill,
    new_backfill_id,
    queue_backfill,
    retry_files,
)

__all__ = ["COMMANDS", "backfill", "cancel", "id_list", "launch_backfill", "plural", "retry"]


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def id_list(ids: list[int], most: int = 20) -> str:
    shown = ", ".join(map(str, ids[:most]))
    return shown if len(ids) <= most else f"{shown} and {len(ids) - most} more"


@click.command()
@click.argument("file_ids", nargs=-1, type=int)
@click.option(
    "--failed",
    "all_failed",
    is_flag=True,
    help="Every failed file that may succeed now; files at fault themselves (unsupported_format, "
    "corrupt, encrypted, too_large) only with --force.",
)
@click.option("--cancelled", "all_cancelled", is_flag=True, help="Every cancelled file.")
@click.option(
    "--force",
    is_flag=True,
    help="Re-extract even succeeded or skipped files (FILE_IDS) and failures that would fail again "
    "(--failed); a forced file is extracted, never deduplicated.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def retry(
    file_ids: tuple[int, ...], all_failed: bool, all_cancelled: bool, force: bool, as_json: bool
) -> None:
    """Queue failed or cancelled files again (the sensor starts a new run for each).

    --failed leaves out files that can only fail again because the file itself is at fault
    (unsupported_format, corrupt, encrypted, too_large) and says how many; failures of the
    installation or the environment (extractor_error, timeout, out_of_memory, crashed,
    storage_unavailable, database_unavailable) are queued again. --force queues those files too
    and re-extracts succeeded and skipped files given by id (extracted, even when a file with the
    same bytes succeeded: no metadata copied). Queued and running files are never queued twice.
    """
    if not file_ids and not all_failed and not all_cancelled:
        fail("give file ids, --failed or --cancelled")
    settings = load_settings()
    repository = open_repository(settings)
    with operation_errors():
        outcome = retry_files(
            repository, file_ids, all_failed=all_failed, all_cancelled=all_cancelled, force=force
        )
    repository.dispose()
    requeued, reasons, file_faults, missing = (
        outcome.requeued,
        outcome.reasons,
        outcome.file_faults,
        outcome.not_found,
    )
    skipped = sorted(reasons)
    if as_json:
        emit_json(
            {
                "requeued": requeued,
                "skipped": skipped,
                "not_found": missing,
                "skipped_reasons": {str(file_id): reasons[file_id] for file_id in skipped},
                "skipped_file_errors": file_faults,
            }
        )
    else:
        click.echo(
            f"requeued {plural(len(requeued), 'file')}" + (f": {id_list(requeued)}" if requeued else "")
        )
        fault_ids = sorted(file_id for found in file_faults.values() for file_id in found)
        if fault_ids:
            counts = ", ".join(f"{len(found)} {code}" for code, found in file_faults.items())
            click.echo(
                f"skipped {plural(len(fault_ids), 'failed file')} that can only fail again, the file "
                f"itself is at fault ({counts}): {id_list(fault_ids)}; --force queues them too",
                err=True,
            )
        for file_id in skipped:
            if file_id not in fault_ids:
                click.echo(f"skipped file {file_id}: {reasons[file_id]}", err=True)
        if missing:
            click.echo(f"no such file: {id_list(missing)}", err=True)
    if missing and not requeued:
        raise SystemExit(EXIT_USAGE)


@click.command()
@click.argument("file_ids", nargs=-1, type=int, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def cancel(file_ids: tuple[int, ...], as_json: bool) -> None:
    """Stop queued or running extractions; the files end cancelled.

    A run that extracts only this file is terminated through the Dagster instance (DAGSTER_HOME,
    else the quick start's); a batched backfill run skips the cancelled file and goes on with the
    others. Exit code 0 when a file was cancelled, 1 when every file had finished already, 2 when
    no file exists.
    """
    settings = load_settings()
    repository = open_repository(settings)
    instance = open_dagster_instance(settings, required=False)
    try:
        with operation_errors():
            outcome = cancel_files(repository, instance, file_ids, by="`extraction-pipeline cancel`")
    finally:
        if instance is not None:
            instance.dispose()
        repository.dispose()
    ids, finished = outcome.cancelled, outcome.finished
    if as_json:
        emit_json(
            {
                "cancelled": ids,
                "terminated_runs": outcome.terminated_runs,
                "not_cancelled": outcome.not_cancelled,
                "not_found": outcome.not_found,
                "finished": {str(file_id): state for file_id, state in finished.items()},
            }
        )
    else:
        if ids:
            click.echo(f"cancelled {plural(len(ids), 'file')}: {id_list(ids)}")
        if outcome.terminated_runs:
            click.echo(
                f"terminated {plural(len(outcome.terminated_runs), 'run')}: "
                f"{', '.join(outcome.terminated_runs)}",
                err=True,
            )
        for file_id, state in finished.items():
            click.echo(f"file {file_id} is {state}: nothing to cancel", err=True)
        for file_id in outcome.not_found:
            click.echo(f"file {file_id} does not exist: nothing to cancel", err=True)
        if instance is None and ids:
            click.echo(
                "no Dagster instance (DAGSTER_HOME is not set and there is no quick start instance): "
                "runs were not terminated; they skip the cancelled files",
                err=True,
            )
    if not ids:
        raise SystemExit(EXIT_FAILED if finished else EXIT_USAGE)


@click.command()
@click.option("--all", "select_all", is_flag=True, help="Every file (re-extracts finished ones too).")
@click.option(
    "--status",
    type=click.Choice(
        [
            s.value
            for s in (
                FileStatus.PENDING,
                FileStatus.SUCCEEDED,
                FileStatus.FAILED,
                FileStatus.CANCELLED,
                FileStatus.SKIPPED,
            )
        ]
    ),
    help="Only files in this state (pending: never seen by the pipeline; skipped: of no supported "
    "format, e.g. after a format was added).",
)
@click.option(
    "--uploaded-before",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    help="Only older uploads.",
)
@click.option("--outdated", is_flag=True, help="Only files extracted by an older extractor version.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def backfill(
    select_all: bool, status: str | None, uploaded_before: datetime | None, outdated: bool, as_json: bool
) -> None:
    """Register existing files as partitions and launch a Dagster partition backfill for them.

    It shows on the UI's backfills page; the daemon runs it in batches (BackfillPolicy). Files that
    are queued or running already are left out, so no file is extracted twice at once.
    """
    selection = BackfillSelection(
        select_all=select_all,
        status=status,
        uploaded_before=uploaded_before.replace(tzinfo=UTC) if uploaded_before else None,
        outdated=outdated,
    )
    if selection.empty:
        fail("choose the files: --all, --status, --uploaded-before or --outdated")
    settings = load_settings()
    instance = open_dagster_instance(settings)
    repository = open_repository(settings)
    with operation_errors():
        backfill_id = new_backfill_id()
        keys, matched = queue_backfill(repository, selection, backfill_id)
    repository.dispose()
    if not keys:
        instance.dispose()
        if as_json:
            emit_json({"backfill_id": None, "files": 0, "skipped": matched})
        else:
            click.echo("no files to backfill", err=True)
        return
    try:
        launch_backfill(
            instance, keys, title=f"extraction backfill of {len(keys)} file(s)", backfill_id=backfill_id
        )
    except Exception as exc:
        fail(
            f"the backfill could not be created: {type(exc).__name__}: {exc}; its {plural(len(keys), 'file')} "
            "stay queued and the upload sensor requests a run for each after EXTRACTION_REQUEUE_GRACE_S",
            EXIT_FAILED,
        )
    finally:
        instance.dispose()
    if as_json:
        emit_json({"backfill_id": backfill_id, "files": len(keys), "skipped": matched - len(keys)})
    else:
        click.echo(f"backfill {backfill_id}: {len(keys)} file(s)")


COMMANDS: list[click.Command] = [retry, cancel, backfill]
