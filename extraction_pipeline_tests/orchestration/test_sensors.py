"""The upload sensor: late commits, no duplicates, bounded batches, and an indexed query."""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy as sa

from extraction_pipeline.definitions import build_definitions
from extraction_pipeline.orchestration.partitions import run_key_for
from extraction_pipeline.orchestration.sensors import SENSOR_NAME
from extraction_pipeline.persistence.models import CloudFile, utcnow
from extraction_pipeline_tests.orchestration.conftest import App


def tick(
    app: App, instance: dg.DagsterInstance, cursor: str | None = None, **settings: object
) -> dg.SensorResult:
    defs = build_definitions(app.settings(**settings), app.resource())
    sensor = defs.get_sensor_def(SENSOR_NAME)
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"extraction": app.resource()}
    ) as context:
        return sensor(context)


def requested(result: dg.SensorResult) -> list[tuple[str, str]]:
    return [(r.partition_key, r.run_key) for r in result.run_requests or []]


def test_new_files_become_partitions_and_runs_once(any_app: App, instance: dg.DagsterInstance) -> None:
    ids = [any_app.upload(f"f{i}.pdf", b"%PDF-1.4 x") for i in range(3)]
    first = tick(any_app, instance)
    assert requested(first) == [(str(i), f"cloud-file-{i}-0") for i in ids]
    assert first.dynamic_partitions_requests[0].partition_keys == [str(i) for i in ids]
    assert all(any_app.status(i)["status"] == "queued" for i in ids)
    second = tick(any_app, instance, cursor=first.cursor)
    assert requested(second) == []  # nothing is requested twice


def test_a_late_commit_with_a_lower_id_is_picked_up(any_app: App, instance: dg.DagsterInstance) -> None:
    """A transaction that got id N but commits after id N+1 was already seen by a tick."""
    row = dict(
        filename="late.pdf", size_bytes=1, sha256="0" * 64, storage_uri="file:///x", uploaded_at=utcnow()
    )
    engine = sa.create_engine(any_app.url)
    if engine.dialect.name == "postgresql":
        late = engine.connect()
        transaction = late.begin()
        late_id = late.execute(sa.insert(CloudFile).values(**row).returning(CloudFile.id)).scalar_one()
        early_id = any_app.upload("early.pdf", b"%PDF-1.4 x")  # commits first, with a higher id
        first = tick(any_app, instance)
        transaction.commit()
        late.close()
    else:  # SQLite has one writer at a time: insert the lower id after the tick instead
        early_id = any_app.upload("early.pdf", b"%PDF-1.4 x")
        with engine.begin() as conn:
            conn.execute(sa.update(CloudFile).values(id=10))
        early_id, late_id = 10, 5
        first = tick(any_app, instance)
        with engine.begin() as conn:
            conn.execute(sa.insert(CloudFile).values(id=late_id, **row))
    engine.dispose()
    assert late_id < early_id
    assert requested(first) == [(str(early_id), f"cloud-file-{early_id}-0")]
    second = tick(any_app, instance, cursor=first.cursor)
    assert requested(second) == [(str(late_id), f"cloud-file-{late_id}-0")]


def test_a_tick_lost_after_the_database_write_is_requested_again_with_the_same_key(
    app: App, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_id = app.upload("a.pdf", b"%PDF-1.4 x")
    monkeypatch.setenv("EXTRACTION_REQUEUE_GRACE_S", "1")
    tick(app, instance)  # the daemon dies before it creates the run: the result is lost
    assert app.status(file_id)["status"] == "queued"
    # Not yet stale: not requested again.
    assert requested(tick(app, instance)) == []
    with app.repository.sessions.begin() as session:  # two seconds later
        row = session.get(CloudFile, file_id)
        row.extraction_status = {**row.extraction_status, "updated_at": "2000-01-01T00:00:00+00:00"}
    again = tick(app, instance)
    assert requested(again) == [(str(file_id), f"cloud-file-{file_id}-0")]  # Dagster dedups this key


def test_retry_gives_a_new_run_key(app: App, instance: dg.DagsterInstance) -> None:
    file_id = app.upload("a.pdf", b"%PDF-1.4 x")
    tick(app, instance)
    app.repository.set_status(
        file_id, "failed", error={"kind": "permanent", "code": "corrupt", "message": "x"}
    )
    assert app.repository.reset_to_pending([file_id]) == [file_id]
    assert requested(tick(app, instance)) == [(str(file_id), f"cloud-file-{file_id}-1")]


def test_the_stored_run_key_is_the_requested_one(app: App, instance: dg.DagsterInstance) -> None:
    """Rows queued before the run key moved to orchestration keep matching the key it builds."""
    file_id = app.upload("a.pdf", b"%PDF-1.4 x")
    assert run_key_for(file_id, 0) == f"cloud-file-{file_id}-0"
    assert requested(tick(app, instance)) == [(str(file_id), f"cloud-file-{file_id}-0")]
    status = app.status(file_id)
    assert (status["run_key"], status["generation"]) == (f"cloud-file-{file_id}-0", 0)


def _bulk_pending(app: App, count: int) -> None:
    rows = [
        dict(
            filename=f"f{i}.pdf", size_bytes=1, sha256="0" * 64, storage_uri="file:///x", uploaded_at=utcnow()
        )
        for i in range(count)
    ]
    with app.repository.engine.begin() as conn:
        conn.execute(sa.insert(CloudFile), rows)
        conn.execute(
            sa.text("ANALYZE cloud_files") if conn.dialect.name == "postgresql" else sa.text("ANALYZE")
        )


def test_a_large_backlog_is_worked_in_bounded_batches_through_the_index(
    any_app: App, instance: dg.DagsterInstance
) -> None:
    _bulk_pending(any_app, 20_000)
    # Most of the table is already done: the pending ones are few and must come from the index.
    with any_app.repository.engine.begin() as conn:
        conn.execute(
            sa.update(CloudFile).where(CloudFile.id > 200).values(extraction_status={"status": "succeeded"})
        )
        conn.execute(
            sa.text("ANALYZE cloud_files") if conn.dialect.name == "postgresql" else sa.text("ANALYZE")
        )
    result = tick(any_app, instance, sensor_batch_size=50)
    assert [int(key) for key, _ in requested(result)] == list(range(1, 51))
    result = tick(any_app, instance, cursor=result.cursor)
    assert [int(key) for key, _ in requested(result)] == list(range(51, 101))
    query = (
        sa.select(CloudFile.id).where(CloudFile.extraction_status.is_(None)).order_by(CloudFile.id).limit(50)
    )
    with any_app.repository.engine.connect() as conn:
        compiled = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "postgresql":
            plan = "\n".join(r[0] for r in conn.execute(sa.text("EXPLAIN " + compiled)))
        else:
            plan = "\n".join(str(r[-1]) for r in conn.execute(sa.text("EXPLAIN QUERY PLAN " + compiled)))
    assert "ix_cloud_files_pending" in plan, plan


def test_a_file_of_no_supported_format_is_skipped_by_the_sensor_without_a_run(
    any_app: App, instance: dg.DagsterInstance
) -> None:
    photo = any_app.upload("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4)
    drawing = any_app.upload("plan.pdf", b"%PDF-1.4 x")
    result = tick(any_app, instance)
    assert requested(result) == [(str(drawing), f"cloud-file-{drawing}-0")]  # one run: the PDF's
    assert result.dynamic_partitions_requests[0].partition_keys == [str(drawing)]
    status = any_app.status(photo)
    assert status["status"] == "skipped" and status["error"]["code"] == "unsupported_format"
    [job] = any_app.repository.jobs_for(photo)
    assert (job.status, job.attempt, job.dagster_run_id) == ("skipped", 1, None)
    assert requested(tick(any_app, instance, cursor=result.cursor)) == []  # one look, never again


def test_photos_give_their_places_in_the_batch_to_the_next_pending_files(
    any_app: App, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a batch of 2, one tick settles five photos and still requests both drawings after them."""
    monkeypatch.setenv("EXTRACTION_SENSOR_BATCH_SIZE", "2")  # read by the resource, as in a deployment
    photos = [any_app.upload(f"p{n}.png", b"\x89PNG\r\n\x1a\n" + bytes([n]) * 64) for n in range(5)]
    drawings = [any_app.upload(f"d{n}.pdf", b"%PDF-1.4 x") for n in range(2)]
    result = tick(any_app, instance)
    assert [key for key, _ in requested(result)] == [str(i) for i in drawings]
    assert all(any_app.status(i)["status"] == "skipped" for i in photos)
