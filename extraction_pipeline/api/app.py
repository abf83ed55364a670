"""The FastAPI application: one repository and one blob store per process, the routes, the errors.

``create_app`` is what the tests and ``serve`` build; ``app_from_env`` is uvicorn's factory in each
worker process (``serve --workers N``), which reads the same environment as the CLI.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request

from extraction_pipeline import __version__
from extraction_pipeline.api.auth import BearerAuth
from extraction_pipeline.api.errors import install_error_handlers
from extraction_pipeline.persistence.blobs import BlobStore, blob_store_from_url
from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline.service.previews import PreviewRenderer
from extraction_pipeline.settings import Settings

TOKEN_VARIABLE = "EXTRACTION_API_TOKEN"
# Set by `serve --no-auth` (after its loopback check) for the worker processes it starts.
NO_AUTH_VARIABLE = "_EXTRACTION_API_NO_AUTH"


@dataclass
class ApiContext:
    """What the routes share in one process; the engine's pool is shared by the request threads."""

    settings: Settings
    repository: CloudFileRepository
    store: BlobStore
    # Makes a preview that a backfill left for its first request (None: EXTRACTION_PREVIEWS=0).
    previews: PreviewRenderer | None = None


def context(request: Request) -> ApiContext:
    """The routes' dependency: the process's repository and blob store."""
    ctx: ApiContext = request.app.state.ctx
    return ctx


def create_app(settings: Settings, token: str | None) -> FastAPI:
    """The API over ``settings``' database and blob store; ``token`` None: no authentication
    (``serve`` allows that only on a loopback address)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The engine connects lazily: a database that is down at start makes routes answer 503
        # (and /healthz say so) until it is back, instead of the server refusing to start.
        repository = CloudFileRepository.from_url(settings.database_url)
        previews = PreviewRenderer(settings) if settings.previews else None
        app.state.ctx = ApiContext(settings, repository, blob_store_from_url(settings.storage_url), previews)
        try:
            yield
        finally:
            if previews is not None:
                previews.close()
            repository.dispose()

    from extraction_pipeline.api.routes import router
    from extraction_pipeline.api.service_routes import service_router

    app = FastAPI(
        title="extraction-pipeline",
        version=__version__,
        summary="Upload files, follow their metadata extraction, retry, cancel, delete, backfill.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(service_router)
    if token is not None:
        app.add_middleware(BearerAuth, token=token)
        _document_bearer_auth(app)
    return app


def _document_bearer_auth(app: FastAPI) -> None:
    """Name the bearer token in the OpenAPI document, so that /docs offers "Authorize" (the check
    itself is the middleware's)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            for path, operations in schema.get("paths", {}).items():
                if path != "/healthz":
                    for operation in operations.values():
                        operation["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def app_from_env() -> FastAPI:
    """uvicorn's factory (``serve`` checked the settings and the token before it started uvicorn)."""
    settings = Settings.from_env()
    if settings.api_token is None and os.environ.get(NO_AUTH_VARIABLE) != "1":
        raise RuntimeError(f"{TOKEN_VARIABLE} is not set")
    return create_app(settings, settings.api_token)
