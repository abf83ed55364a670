"""Resources: the settings, the repository, the blob store and the warm worker pool, as one object.

Tests swap them by passing another ``ExtractionResource`` (e.g. another database URL) to
``dg.materialize`` or ``dg.build_sensor_context``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import PrivateAttr

from extraction_pipeline.settings import Settings, normalize_database_url

if TYPE_CHECKING:
    from extraction_pipeline.extraction.envelope import Envelope
    from extraction_pipeline.extraction.workers import WorkerPool
    from extraction_pipeline.persistence.blobs import BlobStore
    from extraction_pipeline.persistence.repository import CloudFileRepository

# One engine per database URL and process: sensor ticks run in a long-lived code server process.
_repositories: dict[str, CloudFileRepository] = {}
_repositories_lock = threading.Lock()
# Guards the first build of a resource's settings (the environment is read once per instance).
_settings_lock = threading.Lock()


def shared_repository(url: str) -> CloudFileRepository:
    from extraction_pipeline.persistence.repository import CloudFileRepository

    with _repositories_lock:
        repository = _repositories.get(url)
        if repository is None:
            repository = _repositories[url] = CloudFileRepository.from_url(url)
        return repository


def dispose_shared_repositories() -> None:
    with _repositories_lock:
        for repository in _repositories.values():
            repository.dispose()
        _repositories.clear()


class ExtractionResource(dg.ConfigurableResource):
    """Everything a run or a sensor needs from layers 1 and 2.

    Unset fields come from the environment (``Settings.from_env``), read once per resource instance
    (the first time ``settings`` is used; Dagster builds a new instance for each run), so secrets
    never end up in Dagster's run configuration.
    """

    database_url: str | None = None
    storage_url: str | None = None
    # Extract in isolated child processes (the default); False runs extract_file in-process.
    isolated: bool = True
    max_retries: int | None = None
    retry_delay_s: float | None = None

    _settings: Any = PrivateAttr(default=None)
    _pool: Any = PrivateAttr(default=None)
    _pool_lock: Any = PrivateAttr(default=None)

    @property
    def settings(self) -> Settings:
        """The environment's settings with this resource's fields on top, built on first use."""
        settings = self._settings
        if settings is None:
            with _settings_lock:
                settings = self._settings
                if settings is None:
                    settings = self._settings = self._read_settings()
        return settings

    def _read_settings(self) -> Settings:
        settings = Settings.from_env()
        overrides: dict[str, Any] = {}
        if self.database_url:
            overrides["database_url"] = normalize_database_url(self.database_url)
        if self.storage_url:
            overrides["storage_url"] = self.storage_url
        if self.max_retries is not None:
            overrides["max_retries"] = self.max_retries
        if self.retry_delay_s is not None:
            overrides["retry_delay_s"] = self.retry_delay_s
        return replace(settings, **overrides) if overrides else settings

    @property
    def repository(self) -> CloudFileRepository:
        return shared_repository(self.settings.database_url)

    @property
    def blob_store(self) -> BlobStore:
        from extraction_pipeline.persistence.blobs import blob_store_from_url

        return blob_store_from_url(self.settings.storage_url)

    @contextmanager
    def local_path(self, storage_uri: str) -> Iterator[Path]:
        with self.blob_store.local_path(storage_uri) as path:
            yield path

    def extract(
        self, path: Path, filename: str, *, attempt: int, max_attempts: int, preview: bool = True
    ) -> Envelope:
        """Extract one file: in a warm isolated worker (kept for the whole run) or in-process.
        The text too (for search), unless EXTRACTION_MAX_TEXT_CHARS is 0; with ``preview`` the
        preview too, unless EXTRACTION_PREVIEWS is off."""
        text_chars = self.settings.max_text_chars or None
        preview = preview and self.settings.previews
        if not self.isolated:
            from extraction_pipeline.extraction.extract import extract_file

            return extract_file(
                path,
                filename,
                max_bytes=self.settings.max_file_bytes,
                max_text_chars=text_chars,
                preview=preview,
            )
        return self._worker_pool().extract(
            path,
            filename,
            attempt=attempt,
            max_attempts=max_attempts,
            max_text_chars=text_chars,
            preview=preview,
        )

    def store_preview(self, envelope: Envelope) -> Envelope:
        """Move the envelope's PNG preview into the blob store (``preview_uri``). A preview that
        cannot be stored is a warning: the file's metadata never waits on it."""
        if envelope.preview_png is None:
            return envelope
        import base64
        import io

        png = base64.b64decode(envelope.preview_png)
        envelope.preview_png = None
        try:
            envelope.preview_uri = self.blob_store.put(io.BytesIO(png)).uri
        except Exception as exc:  # noqa: BLE001 - the preview is an extra, the metadata is the point
            envelope.warnings.append(f"no preview: the blob store did not take it ({type(exc).__name__})")
        return envelope

    def prestart_worker(self) -> None:
        """Boot an isolated worker in the background now: the run's first ``extract`` finds it warm
        instead of waiting for its process start and imports (0.2-0.4 s of a small file's run)."""
        if self.isolated:
            self._worker_pool().prestart()

    def _worker_pool(self) -> WorkerPool:
        if self._pool_lock is None:
            self._pool_lock = threading.Lock()
        with self._pool_lock:
            if self._pool is None or self._pool.closed:
                from extraction_pipeline.extraction.workers import WorkerPool

                self._pool = WorkerPool.from_settings(self.settings)
            return self._pool

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
