"""``thumbnail``: a file's stored PNG preview, for the CLI and the API alike."""

from __future__ import annotations

import logging

from extraction_pipeline.persistence.blobs import BlobStore
from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline.service.errors import FileNotFound, ServiceError

log = logging.getLogger(__name__)


class NoThumbnail(ServiceError):
    """The file exists but has no preview (not extracted yet, no renderer, or nothing to draw)."""

    code = "not_found"

    def __init__(self, file_id: int, reason: str) -> None:
        super().__init__(f"file {file_id} has no preview: {reason}")
        self.file_id = file_id


def load_thumbnail(repository: CloudFileRepository, store: BlobStore, file_id: int) -> bytes:
    """The PNG bytes of the file's preview. ``FileNotFound``: no such file; ``NoThumbnail``: it has
    none; a blob store that does not answer raises ``StorageUnavailable``."""
    if repository.get_file(file_id) is None:
        raise FileNotFound(file_id)
    stored = repository.metadata_for(file_id)
    if stored is None:
        raise NoThumbnail(file_id, "it has not been extracted")
    if stored.preview_uri is None:
        warning = next((w for w in stored.warnings or [] if str(w).startswith("no preview: ")), None)
        reason = warning.removeprefix("no preview: ") if warning else "none was made"
        raise NoThumbnail(file_id, reason)
    try:
        with store.open(stored.preview_uri) as handle:
            return handle.read()
    except FileNotFoundError:
        log.warning("file %s: its preview blob is missing", file_id)
        raise NoThumbnail(file_id, "its stored preview is missing from the blob store") from None
