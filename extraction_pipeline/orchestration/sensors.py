"""Sensors: new uploads -> runs; failed runs -> alerts; cancelled runs -> cancelled files.

The upload sensor does not remember "the highest id seen": it asks for files whose
``extraction_status`` is still null (partial index ``ix_cloud_files_pending``), in id order and at
most ``EXTRACTION_SENSOR_BATCH_SIZE`` per tick, so a row whose transaction commits late is simply
found by a later tick. It marks those files ``queued`` (with a request generation) before asking
for runs, and each run key is ``cloud-file-<id>-<generation>``: Dagster starts at most one run per
key. If a tick dies after the database write, the files stay ``queued`` without a run; after
``EXTRACTION_REQUEUE_GRACE_S`` a later tick requests them again with the same key, so a run that
did get created is not duplicated.

Bursts: a tick that finds ``EXTRACTION_BURST_THRESHOLD`` or more new files to extract (a folder
dropped at once) takes up to ``EXTRACTION_BURST_BATCH_SIZE`` of them and hands them to one asset
backfill instead of a run each: the backfill daemon runs them in multi-file runs of
``EXTRACTION_BACKFILL_BATCH_SIZE`` (one process start and one warm extraction worker per batch, not
per file), and ``dagster.yaml`` lets backfill runs take 2 of the 4 run slots, so a single upload
made meanwhile still gets a run of its own at once. The files carry the backfill's id (written
before the backfill is stored); a file still queued after the grace period for a backfill that
does not exist or ended is requested again with a run of its own, and one whose backfill was
cancelled is cancelled.
"""

import json
import time
from datetime import timedelta
from typing import Any

import dagster as dg

from extraction_pipeline.orchestration import dagster_internals, shortcuts
from extraction_pipeline.orchestration.assets import ASSET_KEY, JOB_NAME, launch_asset_backfill
from extraction_pipeline.orchestration.dagster_internals import (
    BACKFILL_ID_TAG,
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    RUN_KEY_TAG,
    WILL_RETRY_TAG,
)
from extraction_pipeline.orchestration.notify import notify
from extraction_pipeline.orchestration.partitions import cloud_files_partitions, run_key_for
from extraction_pipeline.orchestration.resources import ExtractionResource
from extraction_pipeline.persistence.state import FileStatus
from extraction_pipeline.settings import Settings

SENSOR_NAME = "cloud_files_sensor"
FILE_ID_TAG = "extraction/file_id"


def build_upload_sensor(job: Any, settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        job=job,
        minimum_interval_seconds=settings.sensor_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Registers newly uploaded files as partitions and requests one extraction run per file "
        "(many new files at once: one backfill of multi-file runs); files of no supported format and copies "
        "of extracted files are settled without a run.",
    )
    def cloud_files_sensor(
        context: dg.SensorEvaluationContext, extraction: ExtractionResource
    ) -> dg.SensorResult:
        from extraction_pipeline.persistence.models import utcnow

        current = extraction.settings
        repository = extraction.repository
        cursor = json.loads(context.cursor) if context.cursor else {}
        # A backfill needs the asset graph of the code location (absent in some test contexts).
        repository_def = context.repository_def
        new, settled = _queue_new_files(
            repository, extraction.blob_store, current, burst=repository_def is not None
        )
        handed = 0
        if repository_def is not None and len(new) >= current.burst_threshold:
            rest = _hand_to_backfill(context, repository_def, repository, new)
            handed, new = len(new) - len(rest), rest
        # Files queued by a tick that died before its runs were created: ask again, same run key;
        # files of a backfill that will never run them, likewise.
        now = time.time()
        stale = []
        if now - float(cursor.get("stale_check", 0)) >= min(60.0, current.requeue_grace_s / 2):
            cursor["stale_check"] = now
            cutoff = utcnow() - timedelta(seconds=current.requeue_grace_s)
            stale = repository.stale_queued(cutoff, limit=current.sensor_batch_size)
            if stale:
                repository.touch_queued([item.id for item in stale])
            stale += _orphans_of_backfills(context, repository, cutoff, limit=current.sensor_batch_size)
        if settled:
            context.log.info(f"settled {settled} new file(s) without a run (skipped or copied)")
        requested = new + stale
        new_cursor = json.dumps(cursor)
        if not requested:
            reason = f"{handed} new file(s) handed to a backfill" if handed else "no new files to extract"
            return dg.SensorResult(skip_reason=reason, cursor=new_cursor)
        context.log.info(
            f"requesting {len(new)} new file(s)" + (f" and {len(stale)} stale queued" if stale else "")
        )
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=run_key_for(item.id, item.generation),
                    partition_key=item.partition_key,
                    tags={FILE_ID_TAG: str(item.id)},
                )
                for item in requested
            ],
            dynamic_partitions_requests=[
                cloud_files_partitions.build_add_request([item.partition_key for item in requested])
            ],
            cursor=new_cursor,
        )

    return cloud_files_sensor


# How many times a tick may take another batch of pending files when the last one was mostly
# photos or copies (settled without a run): up to this many batches of files read per tick.
SETTLE_ROUNDS = 10


def _queue_new_files(
    repository: Any, store: Any, current: Settings, *, burst: bool = True
) -> tuple[list[Any], int]:
    """Queue new files that need a run: up to ``sensor_batch_size``, or (``burst``) up to
    ``burst_batch_size`` once ``burst_threshold`` of them were found: they go to a backfill. Returns them and how
    many others were settled on the way. Photos, spreadsheets and copies of extracted files need
    no run: they are settled here from their first bytes (a run per file would hold a run slot for
    1-2 s each), and their places in the batch go to the next pending files."""
    new: list[Any] = []
    settled_count = 0
    limit = current.sensor_batch_size
    for _ in range(SETTLE_ROUNDS):
        want = limit - len(new)
        if want <= 0:
            break
        queued = repository.queue_files(repository.pending_ids(want), run_key=run_key_for)
        if not queued:
            break
        settled = shortcuts.settle_before_run(
            repository,
            store,
            [item.id for item in queued],
            max_attempts=current.max_retries + 1,
            deduplicate=current.deduplicate,
        )
        settled_count += len(settled)
        new.extend(item for item in queued if item.id not in settled)
        if len(queued) < want:  # no more pending files
            break
        if burst and len(new) >= current.burst_threshold and limit < current.burst_batch_size:
            limit = current.burst_batch_size  # a burst: take more of the backlog for its backfill
        elif not settled:  # a full batch of files that need runs
            break
    return new, settled_count


def _hand_to_backfill(
    context: dg.SensorEvaluationContext, repository_def: Any, repository: Any, items: list[Any]
) -> list[Any]:
    """A burst: the files go to one asset backfill (multi-file runs, ``backfill_batch_size`` files
    each, at most 2 at once: dagster.yaml keeps run slots for single uploads). Returns the files it
    could not take (the backfill could not be stored): those get one run each, as usual."""
    backfill_id = dagster_internals.new_backfill_id()
    handed = repository.hand_to_backfill([item.id for item in items], backfill_id)
    if not handed:
        return []
    keys = [item.partition_key for item in handed]
    try:
        launch_asset_backfill(
            context.instance,
            dagster_internals.asset_graph_of(repository_def),
            keys,
            title=f"{len(keys)} uploads at once (files {keys[0]} to {keys[-1]})",
            description=f"{len(keys)} file(s) uploaded at once, launched by the upload sensor ({SENSOR_NAME})",
            backfill_id=backfill_id,
        )
    except Exception as exc:  # noqa: BLE001 - the files are not lost: one run each instead
        context.log.warning(
            f"could not launch a backfill for {len(keys)} file(s), one run each instead: {exc}"
        )
        return repository.release_from_backfill(backfill_id, limit=len(keys))
    context.log.info(f"{len(keys)} new file(s) at once: backfill {backfill_id} extracts them in batches")
    return []


# Most files of a cancelled backfill cancelled per check (one UPDATE; more at the next check).
CANCEL_LIMIT = 5000


def _orphans_of_backfills(
    context: dg.SensorEvaluationContext, repository: Any, cutoff: Any, limit: int
) -> list[Any]:
    """Files queued long ago for a backfill that will not run them: the backfill was never stored
    (its sensor tick died), ended, or was cancelled (then the files are cancelled). Returns those
    to request one run each for."""
    released: list[Any] = []
    for backfill_id in repository.stale_backfill_ids(cutoff):
        state = dagster_internals.backfill_state(context.instance, backfill_id)
        if state == dagster_internals.BACKFILL_ACTIVE:
            continue
        if state == dagster_internals.BACKFILL_CANCELLED:
            # Cancelling is one statement: the whole backfill at once (bounded all the same).
            cancelled = repository.cancel_files(
                repository.queued_for_backfill(backfill_id, limit=CANCEL_LIMIT)
            )
            if cancelled:
                context.log.info(
                    f"backfill {backfill_id} was cancelled: {len(cancelled)} queued file(s) cancelled"
                )
            continue
        if len(released) < limit:
            found = repository.release_from_backfill(backfill_id, limit=limit - len(released))
            if found:
                context.log.warning(
                    f"backfill {backfill_id} is {state} but {len(found)} of its file(s) were never run: "
                    "one run each"
                )
            released.extend(found)
    return released


def _is_extraction_run(run: dg.DagsterRun) -> bool:
    if run.job_name == JOB_NAME:
        return True
    return run.asset_selection is not None and ASSET_KEY in run.asset_selection


def run_file_ids(run: dg.DagsterRun, instance: dg.DagsterInstance) -> list[int]:
    """The files a run was asked to extract: its partition, or its partition range."""
    if run.tags.get(PARTITION_TAG):
        return [int(run.tags[PARTITION_TAG])]
    start, end = run.tags.get(RANGE_START_TAG), run.tags.get(RANGE_END_TAG)
    if start and end:
        keys = cloud_files_partitions.get_partition_keys(dynamic_partitions_store=instance)
        try:
            return [int(k) for k in keys[keys.index(start) : keys.index(end) + 1]]
        except ValueError:
            return []
    return []


def _unfinished_files_of_run(
    run: dg.DagsterRun, instance: dg.DagsterInstance, extraction: ExtractionResource
) -> list[int]:
    repository = extraction.repository
    active = (FileStatus.QUEUED, FileStatus.RUNNING)
    found = {row.id for row in repository.files_of_run(run.run_id, statuses=active)}
    for row in repository.list_files(ids=run_file_ids(run, instance)):
        state = row.state
        if (
            state is not None
            and state.status == FileStatus.QUEUED
            and not state.run_id
            and _waited_for(run, state)
        ):
            found.add(row.id)
    return sorted(found)


def _waited_for(run: dg.DagsterRun, state: Any) -> bool:
    """A queued file that waited for ``run``: queued under the run's key (the upload sensor's) or for
    its backfill. A file queued again meanwhile (``retry`` after the run was cancelled) has a new
    request and is not the run's, however late this sensor looks at the run."""
    run_key = run.tags.get(RUN_KEY_TAG)
    if run_key and state.run_key == run_key:
        return True
    backfill_id = run.tags.get(BACKFILL_ID_TAG)
    if backfill_id and state.backfill:
        return state.backfill_id in (None, backfill_id)
    return False


def _will_be_retried(run: dg.DagsterRun, instance: dg.DagsterInstance) -> bool:
    """Dagster tags a failed run it is going to retry (run_retries) with ``dagster/will_retry``."""
    current = instance.get_run_by_id(run.run_id) or run
    return current.tags.get(WILL_RETRY_TAG) == "true"


@dg.run_failure_sensor(
    name="extraction_failure_alerts",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Announces failed extraction runs: a JSON log line, and a webhook POST when configured.",
)
def extraction_failure_alerts(context: dg.RunFailureSensorContext, extraction: ExtractionResource) -> None:
    run = context.dagster_run
    repository = extraction.repository
    if not _is_extraction_run(run) and not repository.files_of_run(run.run_id):
        return
    if _will_be_retried(run, context.instance):
        # A crashed run worker: Dagster's run retry (run_retries) takes its files over; the retried
        # run is announced if it fails too.
        context.log.info(f"run {run.run_id} failed and will be retried; no alert")
        return
    # Files the run left behind (the run worker died): failed, unless a retried run took them over.
    for file_id in _unfinished_files_of_run(run, context.instance, extraction):
        repository.set_status(
            file_id,
            FileStatus.FAILED,
            expect_run_id=run.run_id,
            error={"kind": "transient", "code": "crashed", "message": "the extraction run failed"},
        )
    of_run = repository.files_of_run(run.run_id, statuses=(FileStatus.FAILED, FileStatus.CANCELLED))
    files = [
        {"id": row.id, "filename": row.filename, "format": state.format, "error": state.error_document()}
        for row in of_run
        if (state := row.state) is not None and state.status == FileStatus.FAILED
    ]
    if not files and of_run:
        return  # a terminated run: its files are cancelled, nothing failed
    event = {
        "event": "extraction_failed",
        "run_id": run.run_id,
        "job_name": run.job_name,
        "partition": run.tags.get(PARTITION_TAG),
        "message": context.failure_event.message if context.failure_event else None,
        "files": files,
    }
    notify(event, extraction.settings.notify_webhook_url)


@dg.run_status_sensor(
    name="extraction_cancellations",
    run_status=dg.DagsterRunStatus.CANCELED,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks the files of a cancelled extraction run as cancelled.",
)
def extraction_cancellations(context: dg.RunStatusSensorContext, extraction: ExtractionResource) -> None:
    run = context.dagster_run
    if not _is_extraction_run(run) and not extraction.repository.files_of_run(run.run_id):
        return
    ids = _unfinished_files_of_run(run, context.instance, extraction)
    cancelled = extraction.repository.cancel_files(ids)
    if cancelled:
        context.log.info(f"run {run.run_id} was cancelled: files {[row.id for row in cancelled]} cancelled")
