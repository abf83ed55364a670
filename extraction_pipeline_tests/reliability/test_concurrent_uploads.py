"""Concurrent uploads: 8 uploaders x 250 files, commits out of id order, each file extracted exactly once.

Every uploader thread inserts its ``cloud_files`` row (after storing the blob), then keeps the
transaction open for a random delay before committing, so ids commit out of order: a file with a
lower id often becomes visible after a higher one was already requested. Meanwhile the upload sensor
ticks every 0.2 s and its run requests are executed as they come.

The sensor's tick function and the runs are driven in-process (the real sensor definition and the
real asset job on a real PostgreSQL app database and a Dagster instance), not through a daemon:
2000 one-file runs launched by a daemon would each start a Python process, about an hour on a
2-core machine. The guarantee under test is the sensor's: no late commit missed, no file requested
twice; each tick's requests are executed as one batched run (what a ``BackfillPolicy`` batch does).
"""

from __future__ import annotations

import io
import queue
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from extraction_pipeline.definitions import build_definitions
from extraction_pipeline.orchestration.assets import build_extraction_asset
from extraction_pipeline.orchestration.sensors import SENSOR_NAME
from extraction_pipeline.persistence.blobs import blob_store_from_url
from extraction_pipeline.persistence.models import CloudFile
from extraction_pipeline_tests.orchestration.conftest import App, _app, make_pdf

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

UPLOADERS = 8
FILES_EACH = 250
TICK_INTERVAL_S = 0.2
DEADLINE_S = 600  # a hang guard; the test takes about 3 minutes on 2 cores


@pytest.fixture
def pg_app(pg_url: str, tmp_path: Path) -> Iterator[App]:
    yield from _app(pg_url, tmp_path)


def test_8_uploaders_x_250_files_with_late_commits_are_each_extracted_exactly_once(
    pg_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXTRACTION_SENSOR_BATCH_SIZE", "500")
    # Four distinct PDFs among 2,000 uploads: with deduplication the sensor would copy most of them
    # without a run; this test is about every upload being requested exactly once.
    monkeypatch.setenv("EXTRACTION_DEDUPLICATE", "0")
    started = time.monotonic()
    samples = {pages: make_pdf(pages=pages, text="upload") for pages in (1, 2, 3, 4)}
    store = blob_store_from_url(pg_app.storage_url)
    uploader_engine = sa.create_engine(pg_app.url, pool_size=UPLOADERS, max_overflow=2)
    sessions = sessionmaker(uploader_engine, expire_on_commit=False)
    expected_pages: dict[int, int] = {}
    lock = threading.Lock()
    uploads_done = threading.Event()
    errors: list[BaseException] = []

    def uploader(number: int) -> None:
        rng = random.Random(number)
        try:
            for index in range(FILES_EACH):
                pages = rng.randint(1, 4)
                blob = store.put(io.BytesIO(samples[pages]))
                with sessions.begin() as session:
                    row = CloudFile(
                        filename=f"uploader {number} file {index}.pdf",
                        size_bytes=blob.size_bytes,
                        sha256=blob.sha256,
                        storage_uri=blob.uri,
                    )
                    session.add(row)
                    session.flush()  # the id is taken now ...
                    with lock:
                        expected_pages[row.id] = pages
                    # ... and committed later: mostly short delays, sometimes long ones spanning ticks.
                    time.sleep(rng.uniform(0.3, 0.8) if rng.random() < 0.03 else rng.uniform(0, 0.03))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    settings = pg_app.settings(sensor_batch_size=500, max_retries=0, retry_delay_s=0.0, deduplicate=False)
    resource = pg_app.resource(isolated=False, max_retries=0, retry_delay_s=0.0)
    sensor = build_definitions(settings, resource).get_sensor_def(SENSOR_NAME)
    batches: queue.Queue[list[dg.RunRequest] | None] = queue.Queue()
    requested_keys: list[str] = []
    requested_files: list[int] = []
    late_commits: list[int] = []  # files requested after a file with a higher id had been requested

    def ticker(instance: dg.DagsterInstance) -> None:
        cursor: str | None = None
        highest = 0
        try:
            while True:
                final = uploads_done.is_set()  # every upload committed before this tick started
                with dg.build_sensor_context(
                    instance=instance, cursor=cursor, resources={"extraction": resource}
                ) as context:
                    result = sensor(context)
                cursor = result.cursor
                requests = list(result.run_requests or [])
                if requests:
                    ids = [int(r.partition_key) for r in requests]
                    late_commits.extend(i for i in ids if i < highest)
                    highest = max(highest, *ids)
                    requested_keys.extend(r.run_key for r in requests)
                    requested_files.extend(ids)
                    batches.put(requests)
                elif final:
                    return
                time.sleep(TICK_INTERVAL_S)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            batches.put(None)

    asset = build_extraction_asset(settings)
    runs = 0
    with dg.instance_for_test() as instance:
        threads = [threading.Thread(target=uploader, args=(n,)) for n in range(UPLOADERS)]
        sensor_thread = threading.Thread(target=ticker, args=(instance,))
        for thread in threads:
            thread.start()
        sensor_thread.start()

        def wait_uploads() -> None:
            for thread in threads:
                thread.join()
            uploads_done.set()

        threading.Thread(target=wait_uploads, daemon=True).start()
        # Runs execute while uploads and ticks go on (their status writes race with the sensor's query).
        while (requests := batches.get(timeout=DEADLINE_S)) is not None:
            assert time.monotonic() - started < DEADLINE_S, "the runs do not keep up"
            keys = [r.partition_key for r in requests]
            instance.add_dynamic_partitions("cloud_files", keys)
            if len(keys) == 1:
                extra: dict[str, object] = {"partition_key": keys[0]}
            else:
                extra = {
                    "tags": {
                        "dagster/asset_partition_range_start": keys[0],
                        "dagster/asset_partition_range_end": keys[-1],
                    }
                }
            result = dg.materialize(
                [asset], instance=instance, resources={"extraction": resource}, raise_on_error=False, **extra
            )
            assert result.success, [e.message for e in result.all_events if e.is_failure]
            runs += 1
        sensor_thread.join()
    uploader_engine.dispose()
    assert not errors, errors
    elapsed = time.monotonic() - started

    uploaded = set(expected_pages)
    assert len(uploaded) == UPLOADERS * FILES_EACH
    # The sensor: every file requested, none twice, one run key per file.
    assert sorted(requested_files) == sorted(uploaded)
    assert len(set(requested_keys)) == len(requested_keys) == len(uploaded)
    assert late_commits, "no commit arrived out of id order: the test did not exercise late commits"

    engine = sa.create_engine(pg_app.url)
    with engine.connect() as conn:
        statuses = dict(
            conn.execute(sa.text("SELECT id, extraction_status->>'status' FROM cloud_files")).all()
        )
        jobs = conn.execute(sa.text("SELECT cloud_file_id, status FROM extraction_jobs")).all()
        pages = dict(
            conn.execute(
                sa.text("SELECT cloud_file_id, (metadata->>'page_count')::int FROM cloud_file_metadata")
            ).all()
        )
    engine.dispose()
    assert set(statuses.values()) == {"succeeded"} and set(statuses) == uploaded
    assert sorted(file_id for file_id, status in jobs if status == "succeeded") == sorted(uploaded)
    assert len(jobs) == len(uploaded)  # exactly one attempt per file: nothing extracted twice
    assert pages == expected_pages  # every file's own metadata, none missed
    print(
        f"{len(uploaded)} files from {UPLOADERS} uploaders, {len(late_commits)} late commits picked up, "
        f"{runs} runs, {elapsed:.0f} s"
    )
