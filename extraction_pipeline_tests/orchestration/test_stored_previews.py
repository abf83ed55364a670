"""Through the asset: each file's preview is stored in the blob store, shared by duplicates, removed
with its file, kept by housekeeping while a file names it, and served by ``load_thumbnail``."""

from __future__ import annotations

import base64
import io
import os
import time
from pathlib import Path

import dagster as dg
import pymupdf
import pytest
from sqlalchemy import delete

from extraction_pipeline.persistence import housekeeping
from extraction_pipeline.persistence.blobs import FileBlobStore, blob_store_from_url
from extraction_pipeline.persistence.models import CloudFile, CloudFileMetadata, ExtractionJob
from extraction_pipeline.samples import pdf_bytes
from extraction_pipeline.service.deletion import delete_files
from extraction_pipeline.service.errors import FileNotFound
from extraction_pipeline.service.previews import NoThumbnail, load_thumbnail
from extraction_pipeline_tests.orchestration.conftest import App, run


def drawing(tmp_path: Path, *, lines: int) -> bytes:
    import ezdxf

    doc = ezdxf.new("R2018")
    for number in range(lines):
        doc.modelspace().add_line((0, number), (100, number * 2), dxfattribs={"color": 1})
    path = tmp_path / f"lines-{lines}.dxf"
    doc.saveas(path)
    return path.read_bytes()


def png_picture(data: bytes) -> pymupdf.Pixmap:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    pixmap = pymupdf.Pixmap(data)
    assert max(pixmap.width, pixmap.height) == 512 and pixmap.color_count() > 1
    return pixmap


def metadata_of_event(instance: dg.DagsterInstance, file_id: int) -> dict:
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("cloud_file_metadata"), asset_partitions=[str(file_id)]),
        limit=1,
    ).records
    return dict(record.asset_materialization.metadata)  # type: ignore[union-attr]


def backdate(path: Path, seconds: float = 3600) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_a_run_stores_each_files_preview_and_a_duplicate_shares_it(
    any_app: App, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    store = blob_store_from_url(any_app.storage_url)
    assert isinstance(store, FileBlobStore)
    report = pdf_bytes(2, text="Pump housing", outline=())
    pdf = any_app.upload("report.pdf", report)
    dxf = any_app.upload("plan.dxf", drawing(tmp_path, lines=5))
    empty = any_app.upload("empty.dxf", drawing(tmp_path, lines=0))
    assert run(any_app, instance, [pdf, dxf, empty], resource=any_app.resource(max_retries=0)).success

    repository = any_app.repository
    previews = {}
    for file_id in (pdf, dxf):
        stored = repository.metadata_for(file_id)
        assert stored is not None and stored.preview_uri is not None
        # A blob of its own in the same store, not the file's bytes.
        assert store.path_of(stored.preview_uri).is_file()
        assert stored.preview_uri != repository.get_file(file_id).storage_uri  # type: ignore[union-attr]
        png_picture(load_thumbnail(repository, store, file_id))
        previews[file_id] = stored.preview_uri
    # The UI shows a smaller copy inline on each materialization (Markdown with a data URI).
    for file_id in (pdf, dxf):
        shown = metadata_of_event(instance, file_id)["preview"]
        assert isinstance(shown, dg.MarkdownMetadataValue)
        prefix = "![preview](data:image/png;base64,"
        assert shown.md_str.startswith(prefix) and shown.md_str.endswith(")")
        small = pymupdf.Pixmap(base64.b64decode(shown.md_str[len(prefix) : -1]))
        assert max(small.width, small.height) == 256 and small.color_count() > 1
    assert "preview" not in metadata_of_event(instance, empty)
    # The status document says whether one is stored (never where: blob URIs are internal).
    from extraction_pipeline.service.documents import load_status_document

    assert load_status_document(repository, pdf)["metadata"]["preview_stored"] is True
    assert load_status_document(repository, empty)["metadata"]["preview_stored"] is False
    assert previews[pdf] not in str(load_status_document(repository, pdf))
    # The attempt's summary does not carry the picture; the status document does not either.
    [job] = repository.jobs_for(pdf)
    assert "preview_png" not in (job.result or {})
    # An empty drawing: no preview, and the reason.
    with pytest.raises(NoThumbnail, match="the drawing has no entities to draw"):
        load_thumbnail(repository, store, empty)
    with pytest.raises(FileNotFound):
        load_thumbnail(repository, store, 999_999)

    # The same bytes again: deduplicated at detection; the copy shows the source's preview.
    copy = any_app.upload("report (copy).pdf", report)
    repository.queue_files([copy])  # as the sensor does
    assert run(any_app, instance, [copy]).success
    assert any_app.status(copy)["deduplicated_from"] == pdf
    assert load_thumbnail(repository, store, copy) == load_thumbnail(repository, store, pdf)

    # Deleting the source keeps the preview the copy still shows; deleting the copy removes it.
    assert delete_files(repository, store, None, [pdf], by="a test").leftovers == []
    assert store.path_of(previews[pdf]).is_file()
    png_picture(load_thumbnail(repository, store, copy))
    assert delete_files(repository, store, None, [copy, dxf], by="a test").leftovers == []
    assert not store.path_of(previews[pdf]).exists()
    assert not store.path_of(previews[dxf]).exists()


def test_no_preview_is_made_when_previews_are_off(
    app: App, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXTRACTION_PREVIEWS", "off")  # read by the resource, as in a deployment
    pdf = app.upload("a.pdf", pdf_bytes(1, text="no picture", outline=()))
    assert run(app, instance, [pdf], resource=app.resource(isolated=False, max_retries=0)).success
    stored = app.repository.metadata_for(pdf)
    assert stored is not None and stored.preview_uri is None and stored.metadata_["page_count"] == 1
    with pytest.raises(NoThumbnail, match="none was made"):
        load_thumbnail(app.repository, blob_store_from_url(app.storage_url), pdf)


def test_housekeeping_keeps_previews_that_a_file_or_a_waiting_attempt_names(
    any_app: App, instance: dg.DagsterInstance
) -> None:
    store = blob_store_from_url(any_app.storage_url)
    assert isinstance(store, FileBlobStore)
    kept = any_app.upload("kept.pdf", pdf_bytes(1, text="kept", outline=()))
    gone = any_app.upload("gone.pdf", pdf_bytes(1, text="gone", outline=()))
    assert run(any_app, instance, [kept, gone], resource=any_app.resource(max_retries=0)).success
    repository = any_app.repository
    uris = {file_id: repository.metadata_for(file_id).preview_uri for file_id in (kept, gone)}  # type: ignore[union-attr]
    # A preview stored by an extraction whose materialize has not run yet: only its attempt names it.
    waiting = store.put(io.BytesIO(b"\x89PNG waiting")).uri
    job_id = repository.start_attempt(kept, run_id="r-waiting", attempt=1, max_attempts=1)
    assert job_id is not None
    repository.finish_attempt(job_id, "extracted", result={"format": "pdf", "preview_uri": waiting})
    # The host deletes a row directly (its metadata row goes with it where foreign keys cascade).
    with repository.sessions.begin() as session:
        session.execute(delete(ExtractionJob).where(ExtractionJob.cloud_file_id == gone))
        session.execute(delete(CloudFileMetadata).where(CloudFileMetadata.cloud_file_id == gone))
        session.execute(delete(CloudFile).where(CloudFile.id == gone))
    for path in store.root.glob("??/*"):  # all written an hour ago: past the grace period
        backdate(path)

    sweep = housekeeping.sweep_blobs(repository, store, now=time.time())
    assert uris[gone] in sweep.deleted and not store.path_of(uris[gone]).exists()
    assert store.path_of(uris[kept]).is_file() and store.path_of(waiting).is_file()
    assert store.path_of(repository.get_file(kept).storage_uri).is_file()  # type: ignore[union-attr]


def test_a_backfill_leaves_the_preview_for_its_first_request(
    any_app: App, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """Runs of a backfill extract metadata and text only; the first request of a preview makes it in
    an isolated worker and stores it, or records why there is none."""
    from extraction_pipeline.orchestration.assets import build_extraction_asset
    from extraction_pipeline.service.previews import PreviewRenderer

    store = blob_store_from_url(any_app.storage_url)
    plan = any_app.upload("plan.dxf", drawing(tmp_path, lines=5))
    empty = any_app.upload("empty.dxf", drawing(tmp_path, lines=0))
    instance.add_dynamic_partitions("cloud_files", [str(plan), str(empty)])
    for file_id in (plan, empty):
        result = dg.materialize(
            [build_extraction_asset(any_app.settings(max_retries=0))],
            instance=instance,
            resources={"extraction": any_app.resource(max_retries=0)},
            partition_key=str(file_id),
            tags={"dagster/backfill": "abcdefgh"},  # what Dagster puts on a backfill's runs
        )
        assert result.success
    repository = any_app.repository
    assert repository.metadata_for(plan).preview_uri is None  # type: ignore[union-attr]
    assert "preview" not in metadata_of_event(instance, plan)
    with pytest.raises(NoThumbnail, match="none was made"):  # nothing makes it without a renderer
        load_thumbnail(repository, store, plan)

    settings = any_app.settings()
    with PreviewRenderer(settings) as render:
        made = load_thumbnail(repository, store, plan, render=render)
        png_picture(made)
        stored = repository.metadata_for(plan)
        assert stored is not None and store.path_of(stored.preview_uri).read_bytes() == made  # type: ignore[arg-type]
        with pytest.raises(NoThumbnail, match="the drawing has no entities to draw"):
            load_thumbnail(repository, store, empty, render=render)
    # Stored: served without a renderer from now on, and the reason is remembered.
    assert load_thumbnail(repository, store, plan) == made
    with pytest.raises(NoThumbnail, match="the drawing has no entities to draw"):
        load_thumbnail(repository, store, empty)
    assert "no preview: the drawing has no entities to draw" in repository.metadata_for(empty).warnings  # type: ignore[union-attr]


def test_a_file_whose_bytes_are_gone_gets_no_preview_and_a_clear_reason(app: App, tmp_path: Path) -> None:
    from extraction_pipeline.service.previews import PreviewRenderer

    store = blob_store_from_url(app.storage_url)
    assert isinstance(store, FileBlobStore)
    file_id = app.upload("gone.pdf", pdf_bytes(1, text="gone", outline=()))
    envelope = {"format": "pdf", "extractor": {"version": "1.1.0"}, "metadata": {"page_count": 1}}
    assert app.repository.materialize_many([(file_id, 0, envelope, {})]) == {file_id}
    store.path_of(app.repository.get_file(file_id).storage_uri).unlink()  # type: ignore[union-attr]
    with PreviewRenderer(app.settings()) as render, pytest.raises(NoThumbnail, match="bytes are missing"):
        load_thumbnail(app.repository, store, file_id, render=render)
    assert app.repository.metadata_for(file_id).warnings == []  # type: ignore[union-attr]  # not remembered
