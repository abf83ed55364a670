"""The housekeeping sensor: what a ``cloud_files`` row deleted directly (plain SQL) leaves behind.

Every ``EXTRACTION_HOUSEKEEPING_INTERVAL_S`` (30 s) it removes, at most ``MAX_DELETIONS`` (500) of
each kind per tick: the dynamic partitions of files that no longer exist, their attempts and
metadata (left where the foreign keys are not enforced), and the blobs no row references once they
are ``BLOB_GRACE_S`` (10 minutes) old. The queries are plain code (``persistence/housekeeping.py``);
this module only reads the cursor, asks the instance for the partition keys and deletes them.

A partition that an unfinished run still names (its partition, or the first or last key of its
range) is left for a later tick: a queued run must not start on a partition that is gone, and a
running one finds its file missing and skips it (``batch.py``), whatever the housekeeping does.
Partitions and blobs are examined ``SCAN_LIMIT`` (50,000) per tick, so a pass over 100k files takes
two ticks and each tick stays small with millions.
"""

from __future__ import annotations

import json
import time

import dagster as dg

from extraction_pipeline.orchestration.dagster_internals import PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG
from extraction_pipeline.orchestration.partitions import cloud_files_partitions
from extraction_pipeline.orchestration.resources import ExtractionResource
from extraction_pipeline.settings import Settings

HOUSEKEEPING_SENSOR_NAME = "housekeeping_sensor"

_UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def partitions_of_unfinished_runs(instance: dg.DagsterInstance) -> set[str]:
    """Partition keys that a queued or running run names: its partition, or its range's ends."""
    keys: set[str] = set()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=_UNFINISHED)):
        for tag in (PARTITION_TAG, RANGE_START_TAG, RANGE_END_TAG):
            if run.tags.get(tag):
                keys.add(run.tags[tag])
    return keys


def build_housekeeping_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name=HOUSEKEEPING_SENSOR_NAME,
        minimum_interval_seconds=settings.housekeeping_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Removes what files deleted directly in cloud_files left behind: their partitions, "
            "attempts, metadata and blobs (a bounded number per tick)."
        ),
    )
    def housekeeping_sensor(
        context: dg.SensorEvaluationContext, extraction: ExtractionResource
    ) -> dg.SensorResult:
        # Not at module level: the ORM models stay out of the code location's load (every run loads it).
        from extraction_pipeline.persistence import housekeeping
        from extraction_pipeline.persistence.blobs import ListableBlobStore

        repository = extraction.repository
        cursor = json.loads(context.cursor) if context.cursor else {}
        done: list[str] = []

        rows = housekeeping.delete_orphan_rows(repository)
        if rows.jobs or rows.metadata or rows.texts:
            done.append(f"{rows.jobs} attempt(s), {rows.metadata} metadata and {rows.texts} text row(s)")

        name = cloud_files_partitions.name
        if name is not None:
            keys = context.instance.get_dynamic_partitions(name)
            offset = int(cursor.get("partition_offset", 0))
            if offset >= len(keys):
                offset = 0
            window = keys[offset : offset + housekeeping.SCAN_LIMIT]
            cursor["partition_offset"] = offset + len(window) if offset + len(window) < len(keys) else 0
            orphans = housekeeping.orphan_partition_keys(repository, window)
            if orphans:
                busy = partitions_of_unfinished_runs(context.instance)
                deferred = [key for key in orphans if key in busy]
                for key in orphans:
                    if key not in busy:
                        context.instance.delete_dynamic_partition(name, key)
                removed = len(orphans) - len(deferred)
                if removed:
                    done.append(f"{removed} partition(s)")
                if deferred:
                    context.log.info(
                        f"partitions {deferred[:20]} of deleted files wait for their runs to end"
                    )

        store = extraction.blob_store
        if isinstance(store, ListableBlobStore):
            sweep = housekeeping.sweep_blobs(
                repository, store, now=time.time(), after=cursor.get("blob_after")
            )
            cursor["blob_after"] = sweep.next_after
            if sweep.deleted:
                done.append(f"{len(sweep.deleted)} blob(s)")
            for line in sweep.leftovers[:20]:
                context.log.warning(line)
            stale = store.remove_stale_uploads(
                older_than=time.time() - housekeeping.STALE_UPLOAD_S, limit=housekeeping.MAX_DELETIONS
            )
            if stale:
                context.log.info(f"removed {stale} unfinished upload(s) left by killed uploads")

        summary = "removed " + ", ".join(done) + " of deleted files" if done else "nothing to clean"
        if done:
            context.log.info(summary)
        # No run is ever requested: the tick is "skipped" either way, its reason says what was done.
        return dg.SensorResult(skip_reason=summary, cursor=json.dumps(cursor))

    return housekeeping_sensor
