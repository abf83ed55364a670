"""Housekeeping of files deleted directly in ``cloud_files``: the orphan queries, the bounded blob
sweep, the sensor on a real instance, a file deleted while its run extracts it, and the retention
settings of the committed and the quick start's ``dagster.yaml``.

"Directly" is what the host application does: a plain ``DELETE`` in its own connection. On SQLite
that connection has no ``PRAGMA foreign_keys``, so the attempts and the metadata stay; PostgreSQL
cascades them.
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.test_utils import create_run_for_test

from extraction_pipeline.definitions import build_definitions
from extraction_pipeline.orchestration.housekeeping import HOUSEKEEPING_SENSOR_NAME
from extraction_pipeline.orchestration.resources import ExtractionResource
from extraction_pipeline.persistence import housekeeping
from extraction_pipeline.persistence.blobs import FileBlobStore, blob_store_from_url
from extraction_pipeline_tests.orchestration.conftest import App, make_pdf, run

REPO_ROOT = Path(__file__).resolve().parents[2]
HOUR_AGO = time.time() - 3600


def delete_directly(app: App, file_ids: list[int], *, keep_dependents: bool = False) -> None:
    """``DELETE FROM cloud_files`` as the host application runs it, in its own connection.

    SQLite: no ``PRAGMA foreign_keys`` there, attempts and metadata stay. PostgreSQL cascades them,
    unless ``keep_dependents`` (foreign key triggers off for the session, as a replica or a bulk
    load has them), which is how orphans can exist there at all.
    """
    ids = ",".join(str(int(i)) for i in file_ids)
    if app.url.startswith("sqlite"):
        connection = sqlite3.connect(app.url.removeprefix("sqlite:///"))
        with connection:
            connection.execute(f"DELETE FROM cloud_files WHERE id IN ({ids})")
        connection.close()
        return
    engine = sa.create_engine(app.url)
    with engine.begin() as connection:
        if keep_dependents:
            connection.execute(sa.text("SET LOCAL session_replication_role = replica"))
        connection.execute(sa.text(f"DELETE FROM cloud_files WHERE id IN ({ids})"))
    engine.dispose()


def count_rows(app: App, table: str, file_id: int) -> int:
    with app.repository.engine.connect() as connection:
        return int(
            connection.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE cloud_file_id = :id"), {"id": file_id}
            ).scalar_one()
        )


def attempt_and_metadata(app: App, file_id: int) -> None:
    """An attempt row and a metadata row for ``file_id``, as a succeeded extraction leaves them."""
    job_id = app.repository.start_attempt(file_id, run_id="run-1", attempt=1, max_attempts=1)
    assert job_id is not None
    envelope = {"format": "pdf", "extractor": {"version": "1.0.0"}, "metadata": {}, "warnings": []}
    assert app.repository.materialize_many([(file_id, job_id, envelope, {})]) == {file_id}


def blob_path(app: App, file_id: int) -> Path:
    row = app.repository.get_file(file_id)
    assert row is not None
    store = blob_store_from_url(app.storage_url)
    assert isinstance(store, FileBlobStore)
    return store.path_of(row.storage_uri)


def stray_blob(app: App, data: bytes, *, mtime: float | None = HOUR_AGO) -> Path:
    """A blob no row references: a leftover (old) or an upload whose row is not committed yet (new)."""
    store = blob_store_from_url(app.storage_url)
    assert isinstance(store, FileBlobStore)
    path = store.path_of(store.put(io.BytesIO(data)).uri)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


# -- the queries, on SQLite and PostgreSQL ----------------------------------------------------------


def test_orphan_attempts_and_metadata_are_deleted_a_bounded_number_at_a_time(any_app: App) -> None:
    ids = [any_app.upload(f"f{i}.pdf", b"%PDF-1.4 x") for i in range(4)]
    for file_id in ids:
        attempt_and_metadata(any_app, file_id)
    gone, kept = ids[:3], ids[3]
    delete_directly(any_app, gone, keep_dependents=True)
    assert housekeeping.orphan_row_file_ids(any_app.repository) == gone

    first = housekeeping.delete_orphan_rows(any_app.repository, limit=2)
    assert (first.jobs, first.metadata) == (2, 2)
    assert housekeeping.orphan_row_file_ids(any_app.repository) == [gone[2]]
    second = housekeeping.delete_orphan_rows(any_app.repository, limit=2)
    assert (second.jobs, second.metadata) == (1, 1)
    assert housekeeping.delete_orphan_rows(any_app.repository) == housekeeping.OrphanRows()
    for file_id in gone:
        assert count_rows(any_app, "extraction_jobs", file_id) == 0
        assert count_rows(any_app, "cloud_file_metadata", file_id) == 0
    # The file that still exists keeps everything.
    assert count_rows(any_app, "extraction_jobs", kept) == 1
    assert any_app.repository.metadata_for(kept) is not None


def test_orphan_partition_keys_are_the_keys_without_a_row(any_app: App) -> None:
    ids = [any_app.upload(f"f{i}.pdf", b"%PDF-1.4 x") for i in range(3)]
    delete_directly(any_app, [ids[0], ids[2]])
    keys = [str(i) for i in ids] + ["999999", "not-a-file-id"]
    assert housekeeping.orphan_partition_keys(any_app.repository, keys) == [
        str(ids[0]),
        str(ids[2]),
        "999999",
    ]
    assert housekeeping.orphan_partition_keys(any_app.repository, keys, limit=2) == [str(ids[0]), str(ids[2])]
    assert housekeeping.orphan_partition_keys(any_app.repository, []) == []


def test_the_blob_sweep_keeps_referenced_and_young_blobs_and_is_bounded(any_app: App) -> None:
    kept = any_app.upload("kept.pdf", b"%PDF-1.4 kept")
    kept_blob = blob_path(any_app, kept)
    os.utime(kept_blob, (HOUR_AGO, HOUR_AGO))  # old, but referenced
    deleted = any_app.upload("deleted.pdf", b"%PDF-1.4 deleted")
    deleted_blob = blob_path(any_app, deleted)
    os.utime(deleted_blob, (HOUR_AGO, HOUR_AGO))
    delete_directly(any_app, [deleted])
    leftovers = [stray_blob(any_app, f"old {i}".encode()) for i in range(2)]
    in_flight = stray_blob(any_app, b"an upload whose row is being inserted", mtime=None)
    store = blob_store_from_url(any_app.storage_url)
    assert isinstance(store, FileBlobStore)

    # At most one deletion per call: the pass goes on where the last call stopped.
    removed: list[str] = []
    after = None
    for _ in range(10):
        sweep = housekeeping.sweep_blobs(any_app.repository, store, now=time.time(), after=after, limit=1)
        assert len(sweep.deleted) <= 1
        removed += sweep.deleted
        after = sweep.next_after
        if not sweep.deleted and after is None:
            break
    assert sorted(removed) == sorted(p.as_uri() for p in [deleted_blob, *leftovers])
    assert kept_blob.is_file() and in_flight.is_file()
    assert not deleted_blob.exists() and not any(p.exists() for p in leftovers)
    # Once it is older than the grace period, the blob that never got its row goes too.
    later = housekeeping.sweep_blobs(
        any_app.repository, store, now=time.time() + housekeeping.BLOB_GRACE_S + 1
    )
    assert later.deleted == [in_flight.as_uri()] and kept_blob.is_file()


def test_the_blob_sweep_examines_a_bounded_slice_per_call(app: App) -> None:
    paths = sorted((stray_blob(app, f"blob {i}".encode()) for i in range(5)), key=lambda p: p.name)
    store = blob_store_from_url(app.storage_url)
    assert isinstance(store, FileBlobStore)
    first = housekeeping.sweep_blobs(app.repository, store, now=time.time(), scan_limit=2)
    assert first.examined == 2 and first.next_after == paths[1].name
    assert first.deleted == [p.as_uri() for p in paths[:2]]
    second = housekeeping.sweep_blobs(
        app.repository, store, now=time.time(), after=first.next_after, scan_limit=2
    )
    assert second.deleted == [p.as_uri() for p in paths[2:4]]
    third = housekeeping.sweep_blobs(
        app.repository, store, now=time.time(), after=second.next_after, scan_limit=2
    )
    assert third.deleted == [paths[4].as_uri()] and third.next_after is None  # the pass is over


def test_no_blob_is_swept_when_the_rows_name_another_blob_store(app: App, tmp_path: Path) -> None:
    """The same folder mounted at another path (or the wrong EXTRACTION_STORAGE_URL): every blob
    would look unreferenced, so none is deleted."""
    app.upload("a.pdf", b"%PDF-1.4 a")
    elsewhere = FileBlobStore(tmp_path / "mounted-elsewhere")
    old = elsewhere.path_of(elsewhere.put(io.BytesIO(b"some blob")).uri)
    os.utime(old, (HOUR_AGO, HOUR_AGO))
    sweep = housekeeping.sweep_blobs(app.repository, elsewhere, now=time.time())
    assert sweep.deleted == [] and old.is_file()
    assert sweep.leftovers == ["the newest file's blob is not in this blob store: blobs not swept"]


def test_the_file_store_lists_finished_blobs_in_key_order(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    assert list(store.list_blobs()) == []  # no folder yet
    uris = [store.put(io.BytesIO(f"blob {i}".encode())).uri for i in range(4)]
    (store.root / ".tmp" / "upload-partial").write_bytes(b"half an upload")
    (store.root / "zz").mkdir()
    (store.root / "zz" / "not-a-blob").write_bytes(b"x")
    listed = list(store.list_blobs())
    assert sorted(uris) == [entry.uri for entry in listed]
    assert [entry.key for entry in listed] == sorted(entry.key for entry in listed)
    assert all(abs(entry.modified_at - time.time()) < 60 for entry in listed)
    assert [e.uri for e in store.list_blobs(after=listed[1].key)] == [e.uri for e in listed[2:]]
    assert [e.uri for e in store.list_blobs(limit=3)] == [e.uri for e in listed[:3]]


def test_a_killed_uploads_temporary_file_goes_after_a_day_a_live_one_stays(tmp_path: Path) -> None:
    """A server killed mid-upload leaves ``.tmp/upload-*`` (up to the upload limit, 512 MiB each)."""
    store = FileBlobStore(tmp_path / "blobs")
    kept = store.put(io.BytesIO(b"a finished blob")).uri
    folder = store.root / ".tmp"
    killed, live = folder / "upload-killed", folder / "upload-live"
    killed.write_bytes(b"x" * 1000)
    live.write_bytes(b"still arriving")
    day_ago = time.time() - housekeeping.STALE_UPLOAD_S - 60
    os.utime(killed, (day_ago, day_ago))
    assert store.remove_stale_uploads(older_than=time.time() - housekeeping.STALE_UPLOAD_S, limit=10) == 1
    assert not killed.exists() and live.exists()
    assert [entry.uri for entry in store.list_blobs()] == [kept]  # finished blobs are not touched


# -- the sensor on a real instance --------------------------------------------------------------------


def housekeeping_tick(app: App, instance: dg.DagsterInstance, cursor: str | None = None) -> dg.SensorResult:
    defs = build_definitions(app.settings(), app.resource())
    sensor = defs.get_sensor_def(HOUSEKEEPING_SENSOR_NAME)
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"extraction": app.resource()}
    ) as context:
        result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def test_the_sensor_removes_the_partition_metadata_attempts_and_blob_of_a_deleted_row(
    any_app: App, instance: dg.DagsterInstance
) -> None:
    gone = any_app.upload("gone.pdf", make_pdf(pages=1, text="gone"))
    kept = any_app.upload("kept.pdf", make_pdf(pages=1, text="kept"))
    assert run(
        any_app, instance, [gone, kept], resource=any_app.resource(isolated=False, max_retries=0)
    ).success
    gone_blob, kept_blob = blob_path(any_app, gone), blob_path(any_app, kept)
    for path in (gone_blob, kept_blob):  # uploaded an hour ago: past the grace period
        os.utime(path, (HOUR_AGO, HOUR_AGO))
    delete_directly(any_app, [gone])

    result = housekeeping_tick(any_app, instance)
    assert instance.get_dynamic_partitions("cloud_files") == [str(kept)]
    assert not gone_blob.exists() and kept_blob.is_file()
    assert count_rows(any_app, "cloud_file_metadata", gone) == 0
    assert count_rows(any_app, "extraction_jobs", gone) == 0
    assert count_rows(any_app, "cloud_file_text", gone) == 0
    assert any_app.repository.metadata_for(kept) is not None
    assert count_rows(any_app, "cloud_file_text", kept) == 1
    reason = result.skip_reason.skip_message if result.skip_reason else ""
    if any_app.url.startswith("sqlite"):  # PostgreSQL cascaded the attempt, metadata and text at once
        assert reason == (
            "removed 1 attempt(s), 1 metadata and 1 text row(s), 1 partition(s), 1 blob(s) of deleted files"
        )
    else:
        assert reason == "removed 1 partition(s), 1 blob(s) of deleted files"
    again = housekeeping_tick(any_app, instance, cursor=result.cursor)
    assert again.skip_reason is not None and again.skip_reason.skip_message == "nothing to clean"


def test_the_sensor_leaves_the_partition_of_an_unfinished_run_for_later(
    app: App, instance: dg.DagsterInstance
) -> None:
    running, idle = app.upload("running.pdf", b"%PDF-1.4 x"), app.upload("idle.pdf", b"%PDF-1.4 x")
    instance.add_dynamic_partitions("cloud_files", [str(running), str(idle)])
    run_ = create_run_for_test(
        instance, status=dg.DagsterRunStatus.STARTED, tags={"dagster/partition": str(running)}
    )
    delete_directly(app, [running, idle])
    housekeeping_tick(app, instance)
    assert instance.get_dynamic_partitions("cloud_files") == [str(running)]
    instance.report_run_failed(run_)  # the run ends: its partition goes on the next tick
    housekeeping_tick(app, instance)
    assert instance.get_dynamic_partitions("cloud_files") == []


def test_the_sensor_is_registered_and_on_by_default() -> None:
    defs = build_definitions()
    sensor = defs.get_sensor_def(HOUSEKEEPING_SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 30


# -- a file deleted while its run extracts it ---------------------------------------------------------


class DeletedDuringExtraction(ExtractionResource):
    """The host application deletes the file's row (plain SQL, its own connection) while the worker
    extracts it: exactly between the attempt's start and its result."""

    def extract(
        self, path: Path, filename: str, *, attempt: int, max_attempts: int, preview: bool = True
    ) -> Any:
        app = App(
            url=self.settings.database_url, storage_url=self.settings.storage_url, repository=self.repository
        )
        row = next(r for r in self.repository.list_files() if r.filename == filename)
        delete_directly(app, [row.id])
        return super().extract(path, filename, attempt=attempt, max_attempts=max_attempts, preview=preview)


def deleted_mid_run(app: App, instance: dg.DagsterInstance, name: str, data: bytes) -> tuple[int, Any]:
    file_id = app.upload(name, data)
    resource = DeletedDuringExtraction(
        database_url=app.url, storage_url=app.storage_url, isolated=False, max_retries=0
    )
    return file_id, run(app, instance, [file_id], resource=resource)


def test_a_file_deleted_while_it_is_extracted_ends_the_run_cleanly(
    any_app: App, instance: dg.DagsterInstance
) -> None:
    file_id, result = deleted_mid_run(any_app, instance, "gone.pdf", make_pdf(pages=2))
    assert result.success
    assert any_app.repository.get_file(file_id) is None
    assert count_rows(any_app, "cloud_file_metadata", file_id) == 0  # nothing written back
    materialized = instance.get_latest_materialization_event(dg.AssetKey("cloud_file_metadata"))
    assert materialized is None
    if any_app.url.startswith("sqlite"):
        # The attempt row outlives its file (no foreign keys in the host's connection) until the
        # housekeeping removes it.
        assert count_rows(any_app, "extraction_jobs", file_id) == 1
        housekeeping.delete_orphan_rows(any_app.repository)
    assert count_rows(any_app, "extraction_jobs", file_id) == 0


def test_a_file_deleted_while_its_extraction_fails_fails_no_run(
    any_app: App, instance: dg.DagsterInstance
) -> None:
    """A corrupt file: its attempt fails for good just as the row goes. The run reports nothing for
    the gone file, so it succeeds and no alert is sent."""
    file_id, result = deleted_mid_run(
        any_app, instance, "broken.pdf", b"%PDF-1.4\n garbage that is not a pdf body"
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    assert any_app.repository.get_file(file_id) is None
    assert count_rows(any_app, "cloud_file_metadata", file_id) == 0
    if any_app.url.startswith("sqlite"):  # the failed attempt outlives the file until the housekeeping
        assert count_rows(any_app, "extraction_jobs", file_id) == 1
        housekeeping.delete_orphan_rows(any_app.repository)
    assert count_rows(any_app, "extraction_jobs", file_id) == 0


# -- retention of the instance's tick history ---------------------------------------------------------


def test_the_committed_dagster_yaml_keeps_skipped_sensor_ticks_one_day(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", pg_url)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert dict(instance.get_tick_retention_settings(InstigatorType.SENSOR)) == {
            TickStatus.STARTED: -1,
            TickStatus.SKIPPED: 1,
            TickStatus.SUCCESS: 7,
            TickStatus.FAILURE: 30,
        }
        schedule = instance.get_tick_retention_settings(InstigatorType.SCHEDULE)
        assert set(schedule.values()) == {30}


def test_the_quick_start_instance_keeps_skipped_ticks_a_day_and_a_run_slot_for_uploads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from extraction_pipeline.cli.quickstart import EMBEDDED_INSTANCE_YAML

    (tmp_path / "dagster.yaml").write_text(EMBEDDED_INSTANCE_YAML)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        retention = instance.get_tick_retention_settings(InstigatorType.SENSOR)
        assert retention[TickStatus.SKIPPED] == 1 and retention[TickStatus.SUCCESS] == 7
        # A backfill (a burst of uploads) takes one of the two run slots; uploads keep the other.
        queue = instance.run_coordinator.get_run_queue_config()
        assert queue.max_concurrent_runs == 2
        assert [dict(limit) for limit in queue.tag_concurrency_limits] == [
            {"key": "dagster/backfill", "limit": 1}
        ]
