"""``retry``, ``cancel`` and ``backfill``: operator commands on the pipeline, and ``quickstart``."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
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

ACTIVE_RUN_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")


def _dagster_instance(required: bool) -> Any:
    """The Dagster instance of ``DAGSTER_HOME`` (None when unset and not required)."""
    if not os.environ.get("DAGSTER_HOME"):
        if required:
            fail("DAGSTER_HOME is not set: point it at the folder of the Dagster instance (its dagster.yaml)")
        return None
    import dagster as dg

    try:
        return dg.DagsterInstance.get()
    except Exception as exc:  # a broken dagster.yaml, an unreachable instance database
        fail(
            f"the Dagster instance in DAGSTER_HOME cannot be opened: {type(exc).__name__}: {exc}", EXIT_FAILED
        )


@click.command()
@click.argument("file_ids", nargs=-1, type=int)
@click.option("--failed", "all_failed", is_flag=True, help="Every failed file.")
@click.option("--cancelled", "all_cancelled", is_flag=True, help="Every cancelled file.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def retry(file_ids: tuple[int, ...], all_failed: bool, all_cancelled: bool, as_json: bool) -> None:
    """Queue failed or cancelled files again (the sensor starts a new run for each)."""
    if not file_ids and not all_failed and not all_cancelled:
        fail("give file ids, --failed or --cancelled")
    settings = load_settings()
    repository = open_repository(settings)
    with operation_errors():
        ids = set(file_ids)
        if all_failed:
            ids.update(repository.ids_by_filter(status="failed"))
        if all_cancelled:
            ids.update(repository.ids_by_filter(status="cancelled"))
        known = {row.id for row in repository.list_files(ids=sorted(ids))} if ids else set()
        requeued = repository.reset_to_pending(sorted(ids))
    repository.dispose()
    missing = sorted(ids - known)
    skipped = sorted(known - set(requeued))
    if as_json:
        emit_json({"requeued": requeued, "skipped": skipped, "not_found": missing})
    else:
        click.echo(f"requeued {len(requeued)} file(s)" + (f": {requeued}" if requeued else ""))
        if skipped:
            click.echo(f"skipped {skipped}: not failed or cancelled", err=True)
        if missing:
            click.echo(f"no such file: {missing}", err=True)
    if missing and not requeued:
        raise SystemExit(2)


def _runs_for_file(instance: Any, file_id: int, run_id: str | None) -> list[Any]:
    import dagster as dg

    statuses = [dg.DagsterRunStatus[name] for name in ACTIVE_RUN_STATUSES]
    runs = {
        run.run_id: run
        for run in instance.get_runs(
            dg.RunsFilter(tags={"dagster/partition": str(file_id)}, statuses=statuses)
        )
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
    """Stop queued or running extractions; the files end ``cancelled``.

    A run that extracts only this file is terminated through the Dagster instance (DAGSTER_HOME);
    a batched backfill run skips the cancelled file and goes on with the others.
    """
    settings = load_settings()
    repository = open_repository(settings)
    instance = _dagster_instance(required=False)
    with operation_errors():
        cancelled = repository.cancel_files(list(file_ids))
    terminated: list[str] = []
    if instance is not None:
        for row in cancelled:
            run_id = (row.extraction_status or {}).get("run_id")  # kept by the cancelled status
            for run in _runs_for_file(instance, row.id, run_id):
                if run.tags.get("dagster/partition") != str(row.id):
                    continue  # a batch: the run skips the cancelled file
                if not instance.run_coordinator.cancel_run(run.run_id):
                    instance.report_run_canceled(run, message="cancelled by `extraction-pipeline cancel`")
                terminated.append(run.run_id)
    repository.dispose()
    ids = [row.id for row in cancelled]
    not_active = sorted(set(file_ids) - set(ids))
    if as_json:
        emit_json({"cancelled": ids, "terminated_runs": terminated, "not_cancelled": not_active})
    else:
        click.echo(f"cancelled {len(ids)} file(s)" + (f": {ids}" if ids else ""))
        if terminated:
            click.echo(f"terminated runs: {', '.join(terminated)}", err=True)
        if not_active:
            click.echo(f"not cancelled (finished or unknown): {not_active}", err=True)
        if instance is None and ids:
            click.echo(
                "DAGSTER_HOME is not set: runs were not terminated; they skip cancelled files", err=True
            )


def launch_backfill(instance: Any, keys: list[str], *, title: str) -> str:
    """Register ``keys`` as partitions and create a Dagster asset backfill for them (the daemon runs it)."""
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id

    from extraction_pipeline.definitions import defs
    from extraction_pipeline.orchestration.assets import ASSET_KEY
    from extraction_pipeline.orchestration.partitions import cloud_files_partitions

    name = cloud_files_partitions.name
    existing = set(instance.get_dynamic_partitions(name))
    new = [key for key in keys if key not in existing]
    for start in range(0, len(new), 10_000):
        instance.add_dynamic_partitions(name, new[start : start + 10_000])
    backfill_id = make_new_backfill_id()
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=backfill_id,
        asset_graph=defs.resolve_asset_graph(),
        partition_names=keys,
        asset_selection=[ASSET_KEY],
        backfill_timestamp=time.time(),
        tags={},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=title,
        description=f"{len(keys)} file(s), launched by `extraction-pipeline backfill`",
        run_config=None,
    )
    instance.add_backfill(backfill)
    return backfill_id


@click.command()
@click.option("--all", "select_all", is_flag=True, help="Every file (re-extracts finished ones too).")
@click.option(
    "--status",
    type=click.Choice(["pending", "succeeded", "failed", "cancelled"]),
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
    instance = _dagster_instance(required=True)
    repository = open_repository(settings)
    with operation_errors():
        versions = None
        if outdated:
            from extraction_pipeline.extraction.registry import extractor_versions

            versions = extractor_versions()
        before = uploaded_before.replace(tzinfo=UTC) if uploaded_before else None
        ids = repository.ids_by_filter(status=status, uploaded_before=before, outdated=versions)
        queued = repository.queue_files(ids, only_pending=False, backfill=True)
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
    if as_json:
        emit_json({"backfill_id": backfill_id, "files": len(keys), "skipped": len(ids) - len(keys)})
    else:
        click.echo(f"backfill {backfill_id}: {len(keys)} file(s)")


COMMANDS: list[click.Command] = [retry, cancel, backfill]
