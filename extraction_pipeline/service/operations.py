"""``retry``, ``cancel`` and ``backfill`` as use cases: what changes, and why a file was left alone.

Dagster is imported only inside the functions that talk to an instance, so the CLI's other commands
and the code location never load it through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from extraction_pipeline.extraction.errors import FILE_FAULT_CODES
from extraction_pipeline.orchestration.dagster_internals import PARTITION_TAG
from extraction_pipeline.persistence.repository import CloudFileRepository, status_of
from extraction_pipeline.persistence.state import ACTIVE_STATUSES, FileStatus

ACTIVE_RUN_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")

# States `retry` takes a file from, without and with --force (queued and running files never).
# Failures that are the file's fault (errors.FILE_FAULT_CODES) can only fail again with the same
# bytes and installation: `retry --failed` leaves them out unless --force; every other code
# (extractor_error, timeout, out_of_memory, crashed, storage or database unavailable) is retried.
RETRY_STATUSES = (FileStatus.FAILED, FileStatus.CANCELLED)
FORCE_RETRY_STATUSES = (FileStatus.FAILED, FileStatus.CANCELLED, FileStatus.SKIPPED, FileStatus.SUCCEEDED)


@dataclass
class RetryOutcome:
    requeued: list[int]
    not_found: list[int]
    # file id -> why it was left alone
    reasons: dict[int, str] = field(default_factory=dict)
    # error code -> failed files left out by --failed because the file itself is at fault
    file_faults: dict[str, list[int]] = field(default_factory=dict)


def retry_files(
    repository: CloudFileRepository,
    file_ids: Iterable[int] = (),
    *,
    all_failed: bool = False,
    all_cancelled: bool = False,
    force: bool = False,
) -> RetryOutcome:
    """Failed or cancelled files (with ``force`` also succeeded and skipped ones) become pending
    again; the sensor queues each anew. Queued and running files are never queued twice. A file
    queued with ``force`` is extracted, even when a file with the same bytes succeeded already."""
    ids = set(file_ids)
    reasons: dict[int, str] = {}
    file_faults: dict[str, list[int]] = {}
    if all_failed:
        for row in repository.list_files(status=FileStatus.FAILED):
            code = row.state.error_code if row.state is not None else None
            if force or row.id in ids or code not in FILE_FAULT_CODES:
                ids.add(row.id)
            else:
                file_faults.setdefault(str(code), []).append(row.id)
                reasons[row.id] = f"failed with {code}: the file itself is at fault, it would fail again"
    if all_cancelled:
        ids.update(repository.ids_by_filter(status=FileStatus.CANCELLED))
    rows = {row.id: row for row in repository.list_files(ids=sorted(ids))} if ids else {}
    statuses = FORCE_RETRY_STATUSES if force else RETRY_STATUSES
    # --force also means "extract": the next run does not copy a duplicate's metadata instead.
    requeued = repository.reset_to_pending(sorted(ids), statuses=statuses, force=force)
    for file_id in sorted(set(rows) - set(requeued)):
        state = status_of(rows[file_id])
        if state in ACTIVE_STATUSES:
            reasons[file_id] = f"{state}: already on its way"
        elif state == FileStatus.PENDING:
            reasons[file_id] = "pending: not extracted yet, the pipeline picks it up"
        elif state in FORCE_RETRY_STATUSES and not force:
            reasons[file_id] = f"{state}: --force re-extracts it"
        else:
            reasons[file_id] = f"{state}: cannot be queued again"
    return RetryOutcome(
        requeued=requeued,
        not_found=sorted(ids - set(rows)),
        reasons=dict(sorted(reasons.items())),
        file_faults=dict(sorted(file_faults.items())),
    )


@dataclass
class CancelOutcome:
    cancelled: list[int]
    terminated_runs: list[str]
    # files that exist but had nothing to cancel -> their state
    finished: dict[int, str]
    not_found: list[int]

    @property
    def not_cancelled(self) -> list[int]:
        return sorted([*self.finished, *self.not_found])


def _active_runs_of_file(instance: Any, file_id: int, run_id: str | None) -> list[Any]:
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


def terminate_runs(instance: Any, rows: Iterable[Any], *, by: str) -> list[str]:
    """Terminate the active runs that extract only one of these (just cancelled) files.

    A batched backfill run is left alone: it skips the cancelled file and goes on with the others.
    """
    terminated: list[str] = []
    for row in rows:
        run_id = row.state.run_id if row.state is not None else None  # kept by the cancelled status
        for run in _active_runs_of_file(instance, row.id, run_id):
            if run.tags.get(PARTITION_TAG) != str(row.id):
                continue
            if not instance.run_coordinator.cancel_run(run.run_id):
                instance.report_run_canceled(run, message=f"cancelled by {by}")
            terminated.append(run.run_id)
    return terminated


def cancel_files(
    repository: CloudFileRepository, instance: Any | None, file_ids: Iterable[int], *, by: str
) -> CancelOutcome:
    """Files not finished yet end ``cancelled``; their single-file runs are terminated when an
    instance is given (without one they skip the cancelled files when they reach them)."""
    wanted = sorted(set(file_ids))
    cancelled = repository.cancel_files(wanted)
    ids = [row.id for row in cancelled]
    rest = sorted(set(wanted) - set(ids))
    others = {row.id: row for row in repository.list_files(ids=rest)} if rest else {}
    terminated = terminate_runs(instance, cancelled, by=by) if instance is not None else []
    return CancelOutcome(
        cancelled=ids,
        terminated_runs=terminated,
        finished={file_id: status_of(row) for file_id, row in others.items()},
        not_found=[file_id for file_id in rest if file_id not in others],
    )


def new_backfill_id() -> str:
    """The id of a backfill to be: the files queued for it carry it (``queue_backfill``)."""
    from extraction_pipeline.orchestration.dagster_internals import new_backfill_id as make_id

    return make_id()


def launch_backfill(
    instance: Any,
    keys: list[str],
    *,
    title: str,
    launched_by: str = "`extraction-pipeline backfill`",
    backfill_id: str | None = None,
) -> str:
    """Register ``keys`` as partitions and create a Dagster asset backfill for them (the daemon runs it).

    ``backfill_id``: the id given to ``queue_backfill``. If this fails, the upload sensor requests
    the files one run each once the requeue grace has passed (their backfill does not exist)."""
    from extraction_pipeline.definitions import defs
    from extraction_pipeline.orchestration.assets import launch_asset_backfill
    from extraction_pipeline.orchestration.dagster_internals import asset_graph_of

    return launch_asset_backfill(
        instance,
        asset_graph_of(defs),
        keys,
        title=title,
        description=f"{len(keys)} file(s), launched by {launched_by}",
        backfill_id=backfill_id,
    )


@dataclass
class BackfillSelection:
    """Which files to backfill: every file, or those matching every filter given."""

    select_all: bool = False
    status: str | None = None
    uploaded_before: datetime | None = None  # aware, UTC
    outdated: bool = False

    @property
    def empty(self) -> bool:
        return not (self.select_all or self.status or self.uploaded_before or self.outdated)


def queue_backfill(
    repository: CloudFileRepository, selection: BackfillSelection, backfill_id: str | None = None
) -> tuple[list[str], int]:
    """Queue the selected files for a backfill; returns their partition keys and how many matched.

    Files queued or running already are left out, so no file is extracted twice at once. With
    ``backfill_id`` (``new_backfill_id``) the files carry the id of the backfill to be created.
    """
    versions = None
    if selection.outdated:
        from extraction_pipeline.extraction.registry import extractor_versions

        versions = extractor_versions()
    ids = repository.ids_by_filter(
        status=selection.status, uploaded_before=selection.uploaded_before, outdated=versions
    )
    from extraction_pipeline.orchestration.partitions import run_key_for

    extra: dict[str, Any] = {"backfill": True}
    if backfill_id is not None:
        extra["backfill_id"] = backfill_id
    queued = repository.queue_files(ids, only_pending=False, run_key=run_key_for, **extra)
    return [item.partition_key for item in queued], len(ids)
