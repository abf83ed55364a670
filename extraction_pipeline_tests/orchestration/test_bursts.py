"""Bursts: many uploads at once go to one backfill of multi-file runs; its orphans are not lost."""

from __future__ import annotations

import dagster as dg
import pytest

from extraction_pipeline.definitions import build_definitions
from extraction_pipeline.orchestration import dagster_internals
from extraction_pipeline.orchestration.assets import ASSET_KEY
from extraction_pipeline.orchestration.partitions import PARTITIONS_NAME
from extraction_pipeline.orchestration.sensors import SENSOR_NAME
from extraction_pipeline.persistence.models import CloudFile
from extraction_pipeline_tests.orchestration.conftest import App


@pytest.fixture
def burst_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read by the resource, as in a deployment: bursts from 5 new files, 12 per backfill."""
    monkeypatch.setenv("EXTRACTION_SENSOR_BATCH_SIZE", "4")
    monkeypatch.setenv("EXTRACTION_BURST_THRESHOLD", "4")
    monkeypatch.setenv("EXTRACTION_BURST_BATCH_SIZE", "12")


def tick(app: App, instance: dg.DagsterInstance, cursor: str | None = None) -> dg.SensorResult:
    """A tick as the daemon makes it: with the code location's repository (its asset graph)."""
    defs = build_definitions(app.settings(), app.resource())
    sensor = defs.get_sensor_def(SENSOR_NAME)
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        repository_def=defs.get_repository_def(),
        resources={"extraction": app.resource()},
    ) as context:
        return sensor(context)


def targeted(instance: dg.DagsterInstance, backfill_id: str) -> list[str]:
    backfill = instance.get_backfill(backfill_id)
    assert backfill is not None
    subset = backfill.asset_backfill_data.target_subset.get_partitions_subset(ASSET_KEY)
    return sorted(subset.get_partition_keys(), key=int)


def test_a_burst_goes_to_one_backfill_per_tick_and_a_trickle_gets_a_run_per_file(
    any_app: App, instance: dg.DagsterInstance, burst_env: None
) -> None:
    ids = [any_app.upload(f"f{i}.pdf", b"%PDF-1.4 " + bytes([i])) for i in range(20)]
    first = tick(any_app, instance)
    assert not first.run_requests  # no run per file
    assert first.skip_reason.skip_message == "12 new file(s) handed to a backfill"  # the tick history
    [backfill] = instance.get_backfills()
    assert targeted(instance, backfill.backfill_id) == [str(i) for i in ids[:12]]  # the burst batch
    assert backfill.status.value == "REQUESTED" and "upload sensor" in (backfill.description or "")
    assert set(instance.get_dynamic_partitions(PARTITIONS_NAME)) >= {str(i) for i in ids[:12]}
    for file_id in ids[:12]:
        status = any_app.status(file_id)
        assert (status["status"], status["backfill"], status["backfill_id"]) == (
            "queued",
            True,
            backfill.backfill_id,
        )
    assert any_app.status(ids[12]).get("status") is None  # the rest waits for the next tick

    second = tick(any_app, instance, cursor=first.cursor)
    assert not second.run_requests
    newest = max(instance.get_backfills(), key=lambda b: b.backfill_timestamp)
    assert newest.backfill_id != backfill.backfill_id
    assert targeted(instance, newest.backfill_id) == [str(i) for i in ids[12:]]

    # A trickle (fewer than the threshold): one run each, as always.
    singles = [any_app.upload(f"s{i}.pdf", b"%PDF-1.4 single" + bytes([i])) for i in range(3)]
    third = tick(any_app, instance, cursor=second.cursor)
    assert [r.partition_key for r in third.run_requests] == [str(i) for i in singles]
    assert len(instance.get_backfills()) == 2


def _age(app: App, ids: list[int]) -> None:
    """Pretend the files were queued long ago (older than the requeue grace)."""
    with app.repository.sessions.begin() as session:
        for file_id in ids:
            row = session.get(CloudFile, file_id)
            row.extraction_status = {**row.extraction_status, "updated_at": "2000-01-01T00:00:00+00:00"}


def test_files_of_a_backfill_that_was_never_stored_get_a_run_each(
    any_app: App, instance: dg.DagsterInstance, burst_env: None
) -> None:
    app = any_app
    """The tick died between handing the files over and storing the backfill."""
    ids = [app.upload(f"f{i}.pdf", b"%PDF-1.4 " + bytes([i])) for i in range(3)]
    queued = app.repository.queue_files(ids, run_key=lambda i, g: f"cloud-file-{i}-{g}")
    handed = app.repository.hand_to_backfill([q.id for q in queued], "lostbackfill")
    assert [q.id for q in handed] == ids
    assert not tick(app, instance).run_requests  # not stale yet: the backfill may still come
    _age(app, ids)
    result = tick(app, instance)
    assert [(r.partition_key, r.run_key) for r in result.run_requests] == [
        (str(i), f"cloud-file-{i}-0") for i in ids
    ]
    assert all(app.status(i)["backfill"] is False and "backfill_id" not in app.status(i) for i in ids)


def test_files_of_a_cancelled_backfill_are_cancelled_and_those_of_an_ended_one_run(
    any_app: App, instance: dg.DagsterInstance, burst_env: None
) -> None:
    app = any_app
    ids = [app.upload(f"f{i}.pdf", b"%PDF-1.4 " + bytes([i])) for i in range(10)]
    tick(app, instance)  # 10 files: one backfill
    [backfill] = instance.get_backfills()
    instance.update_backfill(backfill.with_status(type(backfill.status)("CANCELED")))
    _age(app, ids[:5])  # once some of its files wait too long, all its queued files are cancelled
    result = tick(app, instance)
    assert not result.run_requests
    assert [app.status(i)["status"] for i in ids] == ["cancelled"] * 10

    more = [app.upload(f"g{i}.pdf", b"%PDF-1.4 g" + bytes([i])) for i in range(6)]
    tick(app, instance)
    ended = max(instance.get_backfills(), key=lambda b: b.backfill_timestamp)
    assert targeted(instance, ended.backfill_id) == [str(i) for i in more]
    instance.update_backfill(ended.with_status(type(ended.status)("COMPLETED_SUCCESS")))
    _age(app, more)
    rerun = tick(app, instance)  # at most a sensor batch (4) per check, the rest at the next one
    assert sorted(int(r.partition_key) for r in rerun.run_requests) == more[:4]
    rest = tick(app, instance)
    assert sorted(int(r.partition_key) for r in rest.run_requests) == more[4:]


def test_without_the_code_location_the_sensor_requests_runs_in_bounded_batches(
    app: App, instance: dg.DagsterInstance, burst_env: None
) -> None:
    ids = [app.upload(f"f{i}.pdf", b"%PDF-1.4 " + bytes([i])) for i in range(9)]
    defs = build_definitions(app.settings(), app.resource())
    with dg.build_sensor_context(instance=instance, resources={"extraction": app.resource()}) as context:
        result = defs.get_sensor_def(SENSOR_NAME)(context)
    assert [r.partition_key for r in result.run_requests] == [str(i) for i in ids[:4]]
    assert dagster_internals.backfill_state(instance, "none") == dagster_internals.BACKFILL_MISSING
    assert not instance.get_backfills()
