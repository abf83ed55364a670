"""``retry``, ``cancel`` and ``backfill``: operator commands on the pipeline, and ``quickstart``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
from extraction_pipeline.extraction.errors import FILE_FAULT_CODES
from extraction_pipeline.orchestration.dagster_internals import PARTITION_TAG
from extraction_pipeline.persistence.repository import status_of
from extraction_pipeline.persistence.state import ACTIVE_STATUSES, FileStatus

ACTIVE_RUN_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")

# Failures that are the file's fault: the same bytes through the same installation can only fail
# again, so `retry --failed` leaves them out unless --force (errors.FILE_FAULT_CODES). Every other
# code (extractor_error, timeout, out_of_memory, crashed, storage_unavailable, database_unavailable,
# an unknown one) is worth another try.
# States `retry` takes a file from, without and with --force (queued and running files never).
RETRY_STATUSES = (FileStatus.FAILED, FileStatus.CANCELLED)
FORCE_RETRY_STATUSES = (FileStatus.FAILED, FileStatus.CANCELLED, FileStatus.SKIPPED, FileStatus.SUCCEEDED)


def _error_code(row: Any) -> str | None:
    return row.state.error_code if row.state is not None else None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


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
    help="Re-extract even succeeded files (FILE_IDS) and failures that would fail again (--failed).",
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
    and re-extracts succeeded files given by id. Queued and running files are never queued twice.
    """
    if not file_ids and not all_failed and not all_cancelled:
        fail("give file ids, --failed or --cancelled")
    settings = load_settings()
    repository = open_repository(settings)
    reasons: dict[int, str] = {}  # file id -> why it was left alone
    file_faults: dict[str, list[int]] = {}  # error code -> failed files left out by --failed
    with operation_errors():
        ids = set(file_ids)
        if all_failed:
            for row in repository.list_files(status=FileStatus.FAILED):
                code = _error_code(row)
                if force or row.id in ids or code not in FILE_FAULT_CODES:
                    ids.add(row.id)
                else:
                    file_faults.setdefault(str(code), []).append(row.id)
                    reasons[row.id] = f"failed with {code}: the file itself is at fault, it would fail again"
        if all_cancelled:
            ids.update(repository.ids_by_filter(status=FileStatus.CANCELLED))
        rows = {row.id: row for row in repository.list_files(ids=sorted(ids))} if ids else {}
        statuses = FORCE_RETRY_STATUSES if force else RETRY_STATUSES
        requeued = repository.reset_to_pending(sorted(ids), statuses=statuses)
    repository.dispose()
    missing = sorted(ids - set(rows))
    for file_id in sorted(set(rows) - set(requeued)):
        state = status_of(rows[file_id])
        if state in ACTIVE_STATUSES:
            reasons[file_id] = f"{state}: already on its way"
        elif state == FileStatus.PENDING:
            reasons[file_id] = "pending: not extracted yet, the pipeline picks it up"
        elif state in FORCE_RETRY_STATUSES:
            reasons[file_id] = f"{state}: --force re-extracts it"
        else:
            reasons[file_id] = f"{state}: cannot be queued again"
    skipped = sorted(reasons)
    if as_json:
        emit_json(
            {
                "requeued": requeued,
                "skipped": skipped,
                "not_found": missing,
                "skipped_reasons": {str(file_id): reasons[file_id] for file_id in skipped},
                "skipped_file_errors": dict(sorted(file_faults.items())),
            }
        )
    else:
        click.echo(
            f"requeued {_plural(len(requeued), 'file')}" + (f": {_id_list(requeued)}" if requeued else "")
        )
        fault_ids = sorted(file_id for found in file_faults.values() for file_id in found)
        if fault_ids:
            counts = ", ".join(f"{len(found)} {code}" for code, found in sorted(file_faults.items()))
            click.echo(
                f"skipped {_plural(len(fault_ids), 'failed file')} that can only fail again, the file "
                f"itself is at fault ({counts}): {_id_list(fault_ids)}; --force queues them too",
                err=True,
            )
        for file_id in skipped:
            if file_id not in fault_ids:
                click.echo(f"skipped file {file_id}: {reasons[file_id]}", err=True)
        if missing:
            click.echo(f"no such file: {_id_list(missing)}", err=True)
    if missing and not requeued:
        raise SystemExit(EXIT_USAGE)


def _id_list(ids: list[int], most: int = 20) -> str:
    shown = ", ".join(map(str, ids[:most]))
    return shown if len(ids) <= most else f"{shown} and {len(ids) - most} more"


def _runs_for_file(instance: Any, file_id: int, run_id: str | None) -> list[Any]:
    import dagster as dg

    statuses = [dg.DagsterRunStatus[name] for name in ACTIVE_RUN_STATUSES]
    runs = {
        run.run_id: run
        for run in instance.get_runs(dg.RunsFilter(tags={PARTITION_TAG: str(file_id)}, statuses=statuses))
    }
    if run_id and run_id not in runs:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status.value in ACTIVE_RUN_STATUSES:
            runs[run.run_id] = run
    return list(runs.values())


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
    with operation_errors():
        cancelled = repository.cancel_files(list(file_ids))
        ids = [row.id for row in cancelled]
        not_active = sorted(set(file_ids) - set(ids))
        others = {row.id: row for row in repository.list_files(ids=not_active)} if not_active else {}
    terminated: list[str] = []
    if instance is not None:
        for row in cancelled:
            run_id = row.state.run_id if row.state is not None else None  # kept by the cancelled status
            for run in _runs_for_file(instance, row.id, run_id):
                if run.tags.get(PARTITION_TAG) != str(row.id):
                    continue  # a batch: the run skips the cancelled file
                if not instance.run_coordinator.cancel_run(run.run_id):
                    instance.report_run_canceled(run, message="cancelled by `extraction-pipeline cancel`")
                terminated.append(run.run_id)
        instance.dispose()
    repository.dispose()
    missing = [file_id for file_id in not_active if file_id not in others]
    finished = {file_id: status_of(others[file_id]) for file_id in not_active if file_id in others}
    if as_json:
        emit_json(
            {
                "cancelled": ids,
                "terminated_runs": terminated,
                "not_cancelled": not_active,
                "not_found": missing,
                "finished": {str(file_id): state for file_id, state in finished.items()},
            }
        )
    else:
        if ids:
            click.echo(f"cancelled {_plural(len(ids), 'file')}: {_id_list(ids)}")
        if terminated:
            click.echo(f"terminated {_plural(len(terminated), 'run')}: {', '.join(terminated)}", err=True)
        for file_id, state in finished.items():
            click.echo(f"file {file_id} is {state}: nothing to cancel", err=True)
        for file_id in missing:
            click.echo(f"file {file_id} does not exist: nothing to cancel", err=True)
        if instance is None and ids:
            click.echo(
                "no Dagster instance (DAGSTER_HOME is not set and there is no quick start instance): "
                "runs were not terminated; they skip the cancelled files",
                err=True,
            )
    if not ids:
        raise SystemExit(EXIT_FAILED if finished else EXIT_USAGE)


def launch_backfill(instance: Any, keys: list[str], *, title: str) -> str:
    """Register ``keys`` as partitions and create a Dagster asset backfill for them (the daemon runs it)."""
    from extraction_pipeline.definitions import defs
    from extraction_pipeline.orchestration.assets import ASSET_KEY
    from extraction_pipeline.orchestration.dagster_internals import add_asset_partition_backfill
    from extraction_pipeline.orchestration.partitions import cloud_files_partitions

    name = cloud_files_partitions.name
    existing = set(instance.get_dynamic_partitions(name))
    new = [key for key in keys if key not in existing]
    for start in range(0, len(new), 10_000):
        instance.add_dynamic_partitions(name, new[start : start + 10_000])
    return add_asset_partition_backfill(
        instance,
        defs,
        [ASSET_KEY],
        keys,
        title=title,
        description=f"{len(keys)} file(s), launched by `extraction-pipeline backfill`",
    )


@click.command()
@click.option("--all", "select_all", is_flag=True, help="Every file (re-extracts finished ones too).")
@click.option(
    "--status",
    type=click.Choice(
        [s.value for s in (FileStatus.PENDING, FileStatus.SUCCEEDED, FileStatus.FAILED, FileStatus.CANCELLED)]
    ),
    help="Only files in this state (pending: never seen by the pipeline).",
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
    if not (select_all or status or uploaded_before or outdated):
        fail("choose the files: --all, --status, --uploaded-before or --outdated")
    settings = load_settings()
    instance = open_dagster_instance(settings)
    repository = open_repository(settings)
    with operation_errors():
        versions = None
        if outdated:
            from extraction_pipeline.extraction.registry import extractor_versions

            versions = extractor_versions()
        before = uploaded_before.replace(tzinfo=UTC) if uploaded_before else None
        ids = repository.ids_by_filter(status=status, uploaded_before=before, outdated=versions)
        from extraction_pipeline.orchestration.partitions import run_key_for

        queued = repository.queue_files(ids, only_pending=False, run_key=run_key_for, backfill=True)
    repository.dispose()
    keys = [item.partition_key for item in queued]
    if not keys:
        if as_json:
            emit_json({"backfill_id": None, "files": 0, "skipped": len(ids)})
        else:
            click.echo("no files to backfill", err=True)
        return
    try:
        backfill_id = launch_backfill(instance, keys, title=f"extraction backfill of {len(keys)} file(s)")
    except Exception as exc:
        fail(f"the backfill could not be created: {type(exc).__name__}: {exc}", EXIT_FAILED)
    finally:
        instance.dispose()
    if as_json:
        emit_json({"backfill_id": backfill_id, "files": len(keys), "skipped": len(ids) - len(keys)})
    else:
        click.echo(f"backfill {backfill_id}: {len(keys)} file(s)")


COMMANDS: list[click.Command] = [retry, cancel, backfill]
