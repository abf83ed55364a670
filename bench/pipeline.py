"""The measurements of the pipeline on a deployment: the backfill against the raw loop, the
upload latency, a burst of uploads through the sensor, the sensor tick with many pending files, the
partitions and their status query."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import REPO, log
from bench.deploy import (
    FINAL_STATUSES,
    Deployment,
    completed_at,
    statuses,
    upload,
    upload_historic,
    wait_until_final,
)
from bench.generate import Template, backfill_mix
from bench.raw import raw_loop_s


def _status_reason(status: dict[str, Any]) -> str:
    error = status.get("error") or {}
    if isinstance(error, dict) and (error.get("code") or error.get("message")):
        message = " ".join(str(error.get("message") or "").split())[:300]
        return f"{status.get('status')}: {error.get('code')}: {message}"
    return str(status.get("status") or "no status")


def measure_backfill(deploy: Deployment, repository: Any, mix: list[Template]) -> dict[str, Any]:
    """N historic files through ``backfill`` and the (already running, warm) daemon.

    The time runs from the backfill's launch (queueing the files and creating the Dagster backfill,
    as ``extraction-pipeline backfill`` does) to the last file's ``succeeded``. The raw loop runs
    on the same stored files before and after (the daemon idle), and the mean of the two counts:
    other load on the machine then hits both sides alike.
    """
    from extraction_pipeline.cli.operations import launch_backfill
    from extraction_pipeline.orchestration.partitions import run_key_for
    from extraction_pipeline.persistence.blobs import blob_store_from_url

    log(f"backfill: storing {len(mix)} historic files")
    ids = upload_historic(deploy, repository, mix)
    started = time.time()
    queued = repository.queue_files(ids, only_pending=False, run_key=run_key_for, backfill=True)
    with deploy.instance() as instance:
        keys = [item.partition_key for item in queued]
        backfill_id = launch_backfill(instance, keys, title=f"bench backfill of {len(keys)} file(s)")
    launch_s = time.time() - started
    log(f"backfill {backfill_id}: {len(keys)} files launched in {launch_s:.1f} s")
    store = blob_store_from_url(deploy.storage_url)
    rows = {row.id: row for row in repository.list_files(ids=ids)}
    blob_files = [(store.path_of(rows[i].storage_uri), t.fmt) for i, t in zip(ids, mix, strict=True)]
    states = wait_until_final(deploy, repository, ids, timeout_s=3600, what="backfill")
    succeeded = [s for s in states.values() if s.get("status") == "succeeded"]
    # Every file of the mix went through the raw loop (before the backfill): one the project did
    # not extract is a failure of the run, not a file to leave out of the figure.
    failures = [
        f"backfill: {t.path.name} (file {i}) ended {_status_reason(states[i])}, but the raw library reads it"
        for i, t in zip(ids, mix, strict=True)
        if states[i].get("status") != "succeeded"
    ]
    last = max(completed_at(s) for s in succeeded) if succeeded else time.time()
    wall = last - started
    log("backfill: the raw single-process loop over the same stored files")
    raw_after = raw_loop_s(blob_files, [f"{t.path.name} (file {i})" for i, t in zip(ids, mix, strict=True)])
    runs = {s.get("run_id") for s in states.values() if s.get("run_id")}
    with deploy.instance() as instance:
        records = [instance.get_run_record_by_id(r) for r in runs]
    records = [r for r in records if r is not None]
    by_sensor = sum(1 for r in records if "dagster/backfill" not in r.dagster_run.tags)
    starts = [r.start_time for r in records if r.start_time]
    # Dagster's backfill daemon looks for new backfills every 30 s (fixed): the first run waits
    # for it. What follows is the throughput of the runs themselves.
    first_start = min(starts) if starts else started
    return {
        "files": len(ids),
        "succeeded": len(succeeded),
        "failed": len(ids) - len(succeeded),
        "wall_s": round(wall, 2),
        "launch_s": round(launch_s, 2),
        "first_run_started_after_s": round(first_start - started, 2),
        "runs_wall_s": round(last - first_start, 2),
        "raw_after_s": round(raw_after, 2),
        "runs": len(records),
        "taken_by_sensor": by_sensor,
        "bytes": sum(p.stat().st_size for p, _ in blob_files),
        "failures": failures,
    }


def measure_latency(
    deploy: Deployment, repository: Any, templates: list[Template], uploads: int, pace_s: float
) -> dict[str, Any]:
    """Uploads one at a time every ``pace_s``; latency = the row's commit -> ``succeeded``."""
    small = sorted(templates, key=lambda t: t.path.stat().st_size)[: max(1, len(templates) * 2 // 3)]
    committed: dict[int, float] = {}
    names: dict[int, str] = {}
    next_at = time.monotonic()
    for number in range(uploads):
        deploy.check_daemon()
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += pace_s
        path = small[number % len(small)].path
        file_id = upload(deploy, repository, path)
        committed[file_id] = time.time()
        names[file_id] = path.name
    states = wait_until_final(deploy, repository, list(committed), timeout_s=600, what="latency")
    # The templates are files the raw libraries read (the overhead step checks them).
    failures = [
        f"latency: upload of {names[i]} (file {i}) ended {_status_reason(states[i])}"
        for i in committed
        if states[i].get("status") != "succeeded"
    ]
    latencies = sorted(
        completed_at(states[i]) - committed[i] for i in committed if states[i].get("status") == "succeeded"
    )
    return {
        "uploads": uploads,
        "pace_s": pace_s,
        "succeeded": len(latencies),
        "p50_s": round(_quantile(latencies, 0.50), 2),
        "p95_s": round(_quantile(latencies, 0.95), 2),
        "max_s": round(latencies[-1], 2) if latencies else None,
        "phases": _phases(deploy, states, committed),
        "failures": failures,
    }


def _upload_burst(deploy: Deployment, repository: Any, mix: list[Template]) -> tuple[list[int], float, float]:
    """Upload ``mix`` back to back through the sensor path; the ids, the first commit, upload seconds."""
    ids: list[int] = []
    started = 0.0
    for template in mix:
        ids.append(upload(deploy, repository, template.path))
        if len(ids) == 1:
            started = time.time()  # the first burst row's commit
    return ids, started, time.time() - started


def _burst_runs(deploy: Deployment, states: dict[int, dict[str, Any]], ids: list[int]) -> list[Any]:
    from dagster import RunsFilter

    run_ids = list({s["run_id"] for i in ids if (s := states[i]).get("run_id")})
    with deploy.instance() as instance:
        return list(instance.get_run_records(RunsFilter(run_ids=run_ids))) if run_ids else []


def _phases(
    deploy: Deployment, states: dict[int, dict[str, Any]], committed: dict[int, float]
) -> dict[str, Any]:
    """Where the latency of single uploads goes, from Dagster's event log (p50/p95/max seconds):
    ``sensor`` commit -> run created, ``queue`` created -> launched (STARTING), ``worker_start``
    launched -> the run worker's RUN_START, ``steps`` RUN_START -> the file final."""
    from dagster import DagsterEventType

    marks: dict[str, list[float]] = {"sensor": [], "queue": [], "worker_start": [], "steps": []}
    with deploy.instance() as instance:
        for file_id, commit in committed.items():
            state = states.get(file_id) or {}
            run_id = state.get("run_id")
            record = instance.get_run_record_by_id(run_id) if run_id else None
            if record is None or not state.get("completed_at"):
                continue
            created = record.create_timestamp.timestamp()
            starting = [e.timestamp for e in instance.all_logs(run_id, of_type=DagsterEventType.RUN_STARTING)]
            started = [e.timestamp for e in instance.all_logs(run_id, of_type=DagsterEventType.RUN_START)]
            if not starting or not started:
                continue
            marks["sensor"].append(created - commit)
            marks["queue"].append(min(starting) - created)
            marks["worker_start"].append(min(started) - min(starting))
            marks["steps"].append(completed_at(state) - min(started))
    summary: dict[str, Any] = {}
    for name, values in marks.items():
        values.sort()
        summary[name] = (
            {
                "p50_s": round(_quantile(values, 0.5), 2),
                "p95_s": round(_quantile(values, 0.95), 2),
                "max_s": round(values[-1], 2),
            }
            if values
            else None
        )
    return summary


def _run_steps(deploy: Deployment, records: list[Any]) -> list[dict[str, Any]]:
    """Each burst run's timeline: launched, worker started and run ended (seconds after the run was
    created), and each step's duration; where a multi-file run spends its time."""
    from dagster import DagsterEventType

    timelines = []
    with deploy.instance() as instance:
        for record in sorted(records, key=lambda r: r.create_timestamp):
            run_id = record.dagster_run.run_id
            created = record.create_timestamp.timestamp()
            starting = [e.timestamp for e in instance.all_logs(run_id, of_type=DagsterEventType.RUN_STARTING)]
            line: dict[str, Any] = {"launched": round(min(starting) - created, 2) if starting else None}
            line["started"] = round(record.start_time - created, 2) if record.start_time else None
            for stat in instance.get_run_step_stats(run_id):
                if stat.end_time and stat.start_time:
                    line[stat.step_key.rsplit(".", 1)[-1]] = round(stat.end_time - stat.start_time, 2)
            line["ended"] = round(record.end_time - created, 2) if record.end_time else None
            timelines.append(line)
    return timelines


def _failures(states: dict[int, dict[str, Any]], ids: list[int], mix: list[Template], what: str) -> list[str]:
    # Every file of the mix went through the raw loop: one the project did not extract is a failure.
    return [
        f"{what}: {t.path.name} (file {i}) ended {_status_reason(states[i])}, but the raw library reads it"
        for i, t in zip(ids, mix, strict=True)
        if states[i].get("status") != "succeeded"
    ]


def measure_burst(
    deploy: Deployment,
    repository: Any,
    templates: list[Template],
    files: int,
    singles_pace_s: float,
    min_singles: int = 5,
    max_singles: int = 30,
    start_daemon: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Two bursts of ``files`` uploads at once through the sensor path (blob + row with a null
    status, as ``upload`` makes them; no backfill command), the mix of the backfill step.

    1. The burst alone: wall time from the first row's commit to the last file final, against the
       raw single-process loop over the same files (before, on the templates, and after, on the
       stored blobs, each with the daemon stopped when ``start_daemon`` is given: its sensors tick
       every second even when idle); the mean counts. Only the burst's work is timed, as only the
       burst's files go through the raw loop.
    2. The same burst again, and once the sensor has taken all of its files (none pending), single
       uploads of the smallest template, one every ``singles_pace_s`` while the burst runs (at least
       ``min_singles``, at most ``max_singles``), each timed commit -> ``succeeded``.
    """
    from extraction_pipeline.persistence.blobs import blob_store_from_url

    mix = backfill_mix(templates, files)
    log(f"burst: the raw single-process loop over the {len(mix)} files of the mix")
    raw_before = raw_loop_s([(t.path, t.fmt) for t in mix])
    if start_daemon is not None:
        start_daemon()
    deploy.check_daemon()
    with deploy.instance() as instance:
        backfills_before = len(instance.get_backfills())

    log(f"burst 1: uploading {len(mix)} files at once through the sensor path")
    ids, started, upload_s = _upload_burst(deploy, repository, mix)
    states = wait_until_final(deploy, repository, ids, timeout_s=3600, what="burst 1")
    failures = _failures(states, ids, mix, "burst")
    ended = [completed_at(states[i]) for i in ids if states[i].get("completed_at")]
    wall = (max(ended) if ended else time.time()) - started
    records = _burst_runs(deploy, states, ids)
    with deploy.instance() as instance:
        backfills = len(instance.get_backfills()) - backfills_before

    log(f"burst 2: {len(mix)} files again, then single uploads every {singles_pace_s} s while they run")
    again, _, _ = _upload_burst(deploy, repository, mix)
    deadline = time.monotonic() + 600
    while any(not s for s in statuses(repository, again).values()):  # the sensor has not taken them all
        deploy.check_daemon()
        if time.monotonic() > deadline:
            raise TimeoutError("burst 2: the sensor did not take the burst within 600 s")
        time.sleep(0.2)
    smallest = min(templates, key=lambda t: t.path.stat().st_size)
    committed: dict[int, float] = {}
    singles_after_burst = 0
    next_at = time.monotonic()
    while len(committed) < max_singles:
        deploy.check_daemon()
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += singles_pace_s
        finished = all(s.get("status") in FINAL_STATUSES for s in statuses(repository, again).values())
        if finished and len(committed) >= min_singles:
            break
        if finished:  # fewer than ``min_singles`` were made while the burst ran
            singles_after_burst += 1
        file_id = upload(deploy, repository, smallest.path)
        committed[file_id] = time.time()
    log(f"burst 2: {len(committed)} single uploads ({singles_after_burst} after the burst had finished)")
    second = wait_until_final(deploy, repository, again + list(committed), timeout_s=3600, what="burst 2")
    failures += _failures(second, again, mix, "burst 2")
    failures += [
        f"burst 2: single upload of {smallest.path.name} (file {i}) ended {_status_reason(second[i])}"
        for i in committed
        if second[i].get("status") != "succeeded"
    ]
    latencies = sorted(
        completed_at(second[i]) - committed[i] for i in committed if second[i].get("status") == "succeeded"
    )

    store = blob_store_from_url(deploy.storage_url)
    rows = {row.id: row for row in repository.list_files(ids=ids)}
    blob_files = [(store.path_of(rows[i].storage_uri), t.fmt) for i, t in zip(ids, mix, strict=True)]
    if start_daemon is not None:
        deploy.stop_daemon()
    log("burst: the raw single-process loop over the same stored files")
    raw_after = raw_loop_s(blob_files, [f"{t.path.name} (file {i})" for i, t in zip(ids, mix, strict=True)])
    raw_s = (raw_before + raw_after) / 2
    starts = [r.start_time for r in records if r.start_time]
    return {
        "files": len(ids),
        "succeeded": sum(1 for i in ids if states[i].get("status") == "succeeded"),
        "wall_s": round(wall, 2),
        "upload_s": round(upload_s, 2),
        "files_per_s": round(len(ids) / wall, 2) if wall > 0 else None,
        "raw_before_s": round(raw_before, 2),
        "raw_after_s": round(raw_after, 2),
        "raw_s": round(raw_s, 2),
        "ratio_vs_raw": round(wall / raw_s, 3) if raw_s > 0 else None,
        "first_run_started_after_s": round(min(starts) - started, 2) if starts else None,
        "runs": len(records),
        "run_timelines": _run_steps(deploy, records),
        "runs_of_backfills": sum(1 for r in records if "dagster/backfill" in r.dagster_run.tags),
        "backfills": backfills,
        "bytes": sum(p.stat().st_size for p, _ in blob_files),
        "singles": {
            "uploads": len(committed),
            "after_burst": singles_after_burst,
            "pace_s": singles_pace_s,
            "template": smallest.path.name,
            "succeeded": len(latencies),
            "p50_s": round(_quantile(latencies, 0.50), 2),
            "p95_s": round(_quantile(latencies, 0.95), 2),
            "max_s": round(latencies[-1], 2) if latencies else None,
            "phases": _phases(deploy, second, committed),
        },
        "failures": failures,
    }


# A PNG signature: content of none of the five formats, as photos attached to a record are.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def measure_shortcuts(
    deploy: Deployment, repository: Any, folder: Path, source: Template, files: int
) -> dict[str, Any]:
    """Files that are not extracted, through the sensor path (one upload after the other, as a host
    application writes them): ``files`` images (distinct bytes, none of the five formats) end
    ``skipped``; then ``files`` uploads of the bytes of ``source``, after it succeeded once, end with
    its metadata copied. Each rate: files / (first commit -> last file final). The daemon must run
    with deduplication on."""
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for number in range(files):
        path = folder / f"photo_{number:05d}.png"
        path.write_bytes(PNG_SIGNATURE + number.to_bytes(8, "big") + os.urandom(4096))
        images.append(path)
    skipped, skip_failures = _through_sensor(deploy, repository, images, "skipped", "skipped")
    for file_id, status in skipped["states"].items():
        error = status.get("error") or {}
        if status.get("status") == "skipped" and error.get("code") != "unsupported_format":
            skip_failures.append(
                f"skipped: file {file_id} has error {error.get('code')}, not unsupported_format"
            )
    first = upload(deploy, repository, source.path)
    state = wait_until_final(deploy, repository, [first], timeout_s=600, what="dedupe source")[first]
    if state.get("status") != "succeeded":
        raise RuntimeError(f"dedupe: the source {source.path.name} ended {_status_reason(state)}")
    copies, copy_failures = _through_sensor(deploy, repository, [source.path] * files, "succeeded", "dedupe")
    for file_id, status in copies["states"].items():
        # The source is the oldest file with these bytes that succeeded (maybe one before ``first``).
        if status.get("status") == "succeeded" and status.get("deduplicated_from") is None:
            copy_failures.append(f"dedupe: file {file_id} was extracted, not copied (source file {first})")
    return {
        "skipped": {k: v for k, v in skipped.items() if k != "states"},
        "dedupe": {**{k: v for k, v in copies.items() if k != "states"}, "source": source.path.name},
        "failures": skip_failures + copy_failures,
    }


def _through_sensor(
    deploy: Deployment, repository: Any, paths: list[Path], expected: str, what: str
) -> tuple[dict[str, Any], list[str]]:
    committed: dict[int, float] = {}
    for path in paths:
        deploy.check_daemon()
        committed[upload(deploy, repository, path)] = time.time()
    states = wait_until_final(deploy, repository, list(committed), timeout_s=1200, what=what)
    failures = [
        f"{what}: file {i} ended {_status_reason(states[i])}, expected {expected}"
        for i in committed
        if states[i].get("status") != expected
    ]
    ended = [completed_at(s) for s in states.values() if s.get("completed_at")]
    wall = (max(ended) if ended else time.time()) - min(committed.values())
    return {
        "files": len(paths),
        "wall_s": round(wall, 2),
        "files_per_s": round(len(paths) / wall, 2) if wall > 0 else None,
        "states": states,
    }, failures


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def insert_pending(url: str, count: int) -> None:
    """``count`` pending rows in ``cloud_files`` in one statement (no blobs: the sensor never reads them)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO cloud_files (filename, size_bytes, sha256, storage_uri, uploaded_at) "
                "SELECT 'historic_' || g || '.pdf', 1000, repeat('0', 64), 'file:///nowhere/' || g, now() "
                "FROM generate_series(1, :n) AS g"
            ),
            {"n": count},
        )
        conn.execute(sa.text("ANALYZE cloud_files"))
    engine.dispose()


def measure_sensor_tick(deploy: Deployment, pending: int, ticks: int) -> dict[str, Any]:
    """The upload sensor evaluated in-process (as the code server does) with ``pending`` files waiting."""
    import dagster as dg

    from extraction_pipeline.definitions import build_definitions
    from extraction_pipeline.orchestration.resources import ExtractionResource
    from extraction_pipeline.orchestration.sensors import SENSOR_NAME
    from extraction_pipeline.settings import Settings

    log(f"sensor: inserting {pending:,} pending files")
    insert_pending(deploy.app_url, pending)
    settings = Settings.from_env(deploy.env)
    resource = ExtractionResource(database_url=deploy.app_url, storage_url=deploy.storage_url)
    sensor = build_definitions(settings, resource).get_sensor_def(SENSOR_NAME)
    times: list[float] = []
    requested = 0
    with deploy.instance() as instance:
        cursor = None
        for _ in range(ticks):
            with dg.build_sensor_context(
                instance=instance, cursor=cursor, resources={"extraction": resource}
            ) as context:
                started = time.perf_counter()
                result = sensor(context)
                times.append(time.perf_counter() - started)
            cursor = result.cursor
            requested = len(result.run_requests or [])
    return {
        "pending": pending,
        "ticks_s": [round(t, 3) for t in times],
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "runs_requested_per_tick": requested,
    }


PARTITION_STATUS_QUERY = """
query PartitionStatus($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode {
      partitionKeysByDimension { name partitionKeys }
      assetPartitionStatuses {
        __typename
        ... on DefaultPartitionStatuses {
          materializedPartitions failedPartitions unmaterializedPartitions materializingPartitions
        }
      }
      partitionStats { numMaterialized numPartitions numFailed numMaterializing }
    }
  }
}
"""


def measure_partitions(deploy: Deployment, registered: int, more: int, queries: int) -> dict[str, Any]:
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster_graphql.test.utils import execute_dagster_graphql

    from extraction_pipeline.orchestration.partitions import cloud_files_partitions

    name = cloud_files_partitions.name
    with deploy.instance() as instance:
        have = len(instance.get_dynamic_partitions(name))
        log(f"partitions: registering {registered - have:,} more (have {have:,})")
        base = 10_000_000
        keys = [str(base + i) for i in range(registered - have)]
        for start in range(0, len(keys), 10_000):
            instance.add_dynamic_partitions(name, keys[start : start + 10_000])
        extra = [str(base + registered + i) for i in range(more)]
        started = time.perf_counter()
        instance.add_dynamic_partitions(name, extra)
        add_s = time.perf_counter() - started
        total = len(instance.get_dynamic_partitions(name))
        target = WorkspaceFileTarget(paths=[str(REPO / "workspace.yaml")])
        times: list[float] = []
        saved_cwd = os.getcwd()
        os.chdir(REPO)
        try:
            with WorkspaceProcessContext(instance, target) as process_context:
                for _ in range(queries):
                    started = time.perf_counter()
                    result = execute_dagster_graphql(
                        process_context.create_request_context(),
                        PARTITION_STATUS_QUERY,
                        variables={"assetKey": {"path": ["cloud_file_metadata"]}},
                    )
                    times.append(time.perf_counter() - started)
                    if result.errors:
                        raise RuntimeError(f"GraphQL errors: {result.errors}")
        finally:
            os.chdir(saved_cwd)
        node = result.data["assetNodeOrError"]
        stats = node.get("partitionStats") or {}
    return {
        "registered": total,
        "add_1k_s": round(add_s, 3),
        "status_query_s": round(statistics.median(times), 3),
        "status_query_runs_s": [round(t, 3) for t in times],
        "materialized": stats.get("numMaterialized"),
    }
