"""Fixtures of the orchestration tests: migrated databases, a blob store, uploads, a Dagster instance.

The fresh PostgreSQL database comes from the top-level ``pg_url`` fixture (extraction_pipeline_tests/conftest.py).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest

from extraction_pipeline.orchestration.assets import build_extraction_asset
from extraction_pipeline.orchestration.resources import ExtractionResource, dispose_shared_repositories
from extraction_pipeline.persistence import migrate
from extraction_pipeline.persistence.blobs import blob_store_from_url
from extraction_pipeline.persistence.repository import CloudFileRepository, NewFile
from extraction_pipeline.samples import pdf_bytes
from extraction_pipeline.settings import Settings


def make_pdf(pages: int = 1, text: str = "hello") -> bytes:
    """``pages`` pages reading "<text> 1", "<text> 2", ...: no outline, PyMuPDF's own metadata."""
    return pdf_bytes(
        pages, text=lambda number: f"{text} {number}", at=(72, 72), fontsize=11, outline=(), metadata=None
    )


@dataclass
class App:
    """An application database + blob store, as the host application would have them."""

    url: str
    storage_url: str
    repository: CloudFileRepository

    def upload(self, name: str, data: bytes) -> int:
        blob = blob_store_from_url(self.storage_url).put(io.BytesIO(data))
        row = self.repository.add_file(
            NewFile(filename=name, size_bytes=blob.size_bytes, sha256=blob.sha256, storage_uri=blob.uri)
        )
        return row.id

    def status(self, file_id: int) -> dict:
        row = self.repository.get_file(file_id)
        assert row is not None
        return row.extraction_status or {}

    def resource(self, **overrides: object) -> ExtractionResource:
        fields: dict[str, object] = {"database_url": self.url, "storage_url": self.storage_url}
        fields.update(overrides)
        return ExtractionResource(**fields)

    def settings(self, **overrides: object) -> Settings:
        from dataclasses import replace

        base = Settings.from_env(
            {"EXTRACTION_DATABASE_URL": self.url, "EXTRACTION_STORAGE_URL": self.storage_url}
        )
        return replace(base, **overrides)


def _app(url: str, tmp_path: Path) -> Iterator[App]:
    migrate.upgrade(url)
    repository = CloudFileRepository.from_url(url)
    try:
        yield App(url=url, storage_url=(tmp_path / "blobs").as_uri(), repository=repository)
    finally:
        repository.dispose()
        dispose_shared_repositories()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    """SQLite application database with the schema applied."""
    yield from _app(f"sqlite:///{tmp_path / 'app.db'}", tmp_path)


@pytest.fixture
def pg_app(pg_url: str, tmp_path: Path) -> Iterator[App]:
    """A fresh PostgreSQL application database with the schema applied."""
    yield from _app(pg_url, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_app(request: pytest.FixtureRequest) -> App:
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def run(
    app: App,
    instance: dg.DagsterInstance,
    ids: list[int],
    *,
    settings: Settings | None = None,
    resource: ExtractionResource | None = None,
) -> dg.ExecuteInProcessResult:
    """Files ``ids`` through the asset in one in-process run: one partition, or a range (a batch).

    Without ``settings``: no retries; without ``resource``: the app's, with the same retries.
    """
    settings = settings or app.settings(max_retries=0, retry_delay_s=0.0)
    keys = [str(i) for i in ids]
    instance.add_dynamic_partitions("cloud_files", keys)
    if len(keys) == 1:
        target: dict[str, object] = {"partition_key": keys[0]}
    else:
        target = {
            "tags": {
                "dagster/asset_partition_range_start": keys[0],
                "dagster/asset_partition_range_end": keys[-1],
            }
        }
    return dg.materialize(
        [build_extraction_asset(settings)],
        instance=instance,
        resources={"extraction": resource or app.resource(max_retries=settings.max_retries)},
        raise_on_error=False,
        **target,
    )


@contextmanager
def webhook_receiver() -> Iterator[tuple[int, list[dict]]]:
    """A local HTTP server recording every POST (JSON body, content type, credentials, path)."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(
                {
                    "body": json.loads(body),
                    "content_type": self.headers["Content-Type"],
                    "authorization": self.headers["Authorization"],
                    "path": self.path,
                }
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_port, received
    finally:
        server.shutdown()
        server.server_close()
