"""``thumbnail``: a file's stored PNG preview, for the CLI and the API alike, made on first request
when its extraction did not make one.

An upload's run makes the preview with the metadata; a backfill's runs (historic files, bursts)
do not, so that they are not slowed down by drawings nobody looks at. The first request of such a
file's preview makes it: the file is extracted again in an isolated worker (``PreviewRenderer``,
the same time and memory limits as a run's), the preview stored in the blob store and named in
``cloud_file_metadata.preview_uri``; when none can be made the reason joins the metadata's
warnings, so that it is not tried on every request.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from extraction_pipeline.persistence.blobs import BlobStore
from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline.service.errors import FileNotFound, ServiceError

if TYPE_CHECKING:
    from extraction_pipeline.extraction.envelope import Envelope
    from extraction_pipeline.extraction.workers import WorkerPool
    from extraction_pipeline.settings import Settings

log = logging.getLogger(__name__)

NO_PREVIEW = "no preview: "


class NoThumbnail(ServiceError):
    """The file exists but has no preview (not extracted yet, no renderer, or nothing to draw)."""

    code = "not_found"

    def __init__(self, file_id: int, reason: str) -> None:
        super().__init__(f"file {file_id} has no preview: {reason}")
        self.file_id = file_id


class PreviewRenderer:
    """Extracts a file with its preview in an isolated worker, started on first use and kept until
    ``close`` (the API keeps one for its lifetime; the CLI one per command)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pool: WorkerPool | None = None
        self._lock = threading.Lock()

    def __call__(self, path: Path, filename: str) -> Envelope:
        with self._lock:
            if self._pool is None:
                from extraction_pipeline.extraction.workers import WorkerPool

                self._pool = WorkerPool.from_settings(self._settings, size=1)
            pool = self._pool
        return pool.extract(path, filename, preview=True)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def __enter__(self) -> PreviewRenderer:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()


def _reason(warnings: list[str] | None) -> str | None:
    found = next((w for w in warnings or [] if str(w).startswith(NO_PREVIEW)), None)
    return found.removeprefix(NO_PREVIEW) if found else None


def load_thumbnail(
    repository: CloudFileRepository,
    store: BlobStore,
    file_id: int,
    *,
    render: PreviewRenderer | None = None,
) -> bytes:
    """The PNG bytes of the file's preview, made now with ``render`` when the file has none yet
    (None: never made here). ``FileNotFound``: no such file; ``NoThumbnail``: it has none; a blob
    store that does not answer raises ``StorageUnavailable``."""
    row = repository.get_file(file_id)
    if row is None:
        raise FileNotFound(file_id)
    stored = repository.metadata_for(file_id)
    if stored is None:
        raise NoThumbnail(file_id, "it has not been extracted")
    if stored.preview_uri is not None:
        try:
            with store.open(stored.preview_uri) as handle:
                return handle.read()
        except FileNotFoundError:
            log.warning("file %s: its preview blob is missing", file_id)
            raise NoThumbnail(file_id, "its stored preview is missing from the blob store") from None
    reason = _reason(stored.warnings)
    if reason is not None:
        raise NoThumbnail(file_id, reason)
    if render is None:
        raise NoThumbnail(file_id, "none was made")
    try:
        with store.local_path(row.storage_uri) as path:
            envelope = render(path, row.filename)
    except FileNotFoundError:
        raise NoThumbnail(file_id, "the file's bytes are missing from the blob store") from None
    if envelope.preview_png is None:
        reason = _reason(envelope.warnings) or (
            f"the file could not be read again ({envelope.error.code})"
            if envelope.error
            else "none could be made"
        )
        if envelope.succeeded:  # a file that no longer reads is not marked: it may read again
            repository.record_preview(file_id, uri=None, warning=NO_PREVIEW + reason)
        raise NoThumbnail(file_id, reason)
    png = base64.b64decode(envelope.preview_png)
    uri = store.put(io.BytesIO(png)).uri
    if not repository.record_preview(file_id, uri=uri):
        store.delete(uri)  # made meanwhile by a re-extraction or another request: that one counts
        return load_thumbnail(repository, store, file_id)
    return png
