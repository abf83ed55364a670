"""Sensors: new uploads -> runs; failed runs -> alerts; cancelled runs -> cancelled files.

The upload sensor does not remember "the highest id seen": it asks for files whose
``extraction_status`` is still null (partial index ``ix_cloud_files_pending``), in id order and at
most ``EXTRACTION_SENSOR_BATCH_SIZE`` per tick, so a row whose transaction commits late is simply
found by a later tick. It marks those files ``queued`` (with a request generation) before asking
for runs, and each run key is ``cloud-file-<id>-<generation>``: Dagster starts at most one run per
key. If a tick dies after the database write, the files stay ``queued`` without a run; after
``EXTRACTION_REQUEUE_GRACE_S`` a later tick requests them again with the same key, so a run that
did get created is not duplicated.
"""

import json
import time
from datetime import timedelta
from typing import Any

import dagster as dg

from extraction_pipeline.orchestration import shortcuts
from extraction_pipeline.orchestration.assets import ASSET_KEY, JOB_NAME
from extraction_pipeline.orchestration.dagster_internals import (
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
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
        description="Registers newly uploaded files as partitions and requests one extraction run per file; "
        "files of no supported format and copies of extracted files are settled without a run.",
    )
    def cloud_files_sensor(
        context: dg.SensorEvaluationContext, extraction: ExtractionResource
    ) -> dg.SensorResult:
        from extraction_pipeline.persistence.models import utcnow

        current = extraction.settings
        repository = extraction.repository
        cursor = json.loads(context.cursor) if context.cursor else {}
        new, settled = _queue_new_files(repository, extraction.blob_store, current)
        # Files queued by a tick that died before its runs were created: ask again, same run key.
        now = time.time()
        stale = []
        if now - float(cursor.get("stale_check", 0)) >= min(60.0, current.requeue_grace_s / 2):
            cursor["stale_check"] = now
            cutoff = utcnow() - timedelta(seconds=current.requeue_grace_s)
            stale = repository.stale_queued(cutoff, limit=current.sensor_batch_size)
            if stale:
                repository.touch_queued([item.id for item in stale])
        if settled:
            context.log.info(f"settled {settled} new file(s) without a run (skipped or copied)")
        requested = new + stale
        new_cursor = json.dumps(cursor)
        if not requested:
            return dg.SensorResult(skip_reason="no new files to extract", cursor=new_cursor)
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


def _queue_new_files(repository: Any, store: Any, current: Settings) -> tuple[list[Any], int]:
    """Queue up to ``sensor_batch_size`` new files that need a run; returns them and how many others
    were settled on the way. Photos, spreadsheets and copies of extracted files need no run: they are
    settled here from their first bytes (a run per file would hold a run slot for 1-2 s each), and
    their places in the batch go to the next pending files."""
    new: list[Any] = []
    settled_count = 0
    for _ in range(SETTLE_ROUNDS):
        want = current.sensor_batch_size - len(new)
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
        if not settled or len(queued) < want:  # a batch of runs, or no more pending files
            break
    return new, settled_count


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
        if state is not None and state.status == FileStatus.QUEUED and not state.run_id:
            found.add(row.id)
    return sorted(found)


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
