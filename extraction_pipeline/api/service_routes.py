"""``POST /v1/backfills`` and ``GET /healthz``: the routes about the pipeline rather than one file."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, model_validator
from sqlalchemy import text

from extraction_pipeline.api.app import ApiContext, context
from extraction_pipeline.api.errors import error_schema
from extraction_pipeline.extraction.errors import StorageUnavailable
from extraction_pipeline.persistence.database import translate_db_errors
from extraction_pipeline.persistence.errors import DatabaseUnavailable
from extraction_pipeline.service.errors import NoDagsterInstance
from extraction_pipeline.service.instance import open_instance
from extraction_pipeline.service.operations import (
    BackfillSelection,
    launch_backfill,
    new_backfill_id,
    queue_backfill,
)

log = logging.getLogger("extraction_pipeline.api")
service_router = APIRouter()
Context = Annotated[ApiContext, Depends(context)]


class BackfillRequest(BaseModel):
    """Which files: ``{"all": true}``, ``{"status": "failed"}`` or ``{"uploaded_before": "2025-01-01"}``
    (filters given together must all hold)."""

    model_config = ConfigDict(extra="forbid")

    all: bool = False
    status: Literal["pending", "succeeded", "failed", "cancelled", "skipped"] | None = None
    uploaded_before: date | None = None

    @model_validator(mode="after")
    def _some_files(self) -> BackfillRequest:
        if not (self.all or self.status or self.uploaded_before):
            raise ValueError('choose the files: "all": true, "status" or "uploaded_before"')
        return self


@service_router.post(
    "/v1/backfills",
    tags=["backfills"],
    responses={code: error_schema() for code in (401, 422, 503)},
)
def create_backfill(body: BackfillRequest, ctx: Context) -> dict[str, Any]:
    """A Dagster partition backfill of the chosen files (shown on the UI's backfills page)."""
    before = datetime.combine(body.uploaded_before, time(), tzinfo=UTC) if body.uploaded_before else None
    selection = BackfillSelection(select_all=body.all, status=body.status, uploaded_before=before)
    instance = open_instance(ctx.settings, required=True)
    assert instance is not None  # required: NoDagsterInstance otherwise
    try:
        backfill_id = new_backfill_id()
        keys, matched = queue_backfill(ctx.repository, selection, backfill_id)
        if not keys:
            return {"backfill_id": None, "files": 0, "skipped": matched}
        try:
            launch_backfill(
                instance,
                keys,
                title=f"extraction backfill of {len(keys)} file(s)",
                launched_by="the HTTP API",
                backfill_id=backfill_id,
            )
        except Exception as exc:
            log.error("the backfill could not be created", exc_info=exc)
            raise NoDagsterInstance(f"the backfill could not be created: {type(exc).__name__}") from exc
    finally:
        instance.dispose()
    return {"backfill_id": backfill_id, "files": len(keys), "skipped": matched - len(keys)}


@service_router.get("/healthz", tags=["health"], responses={503: {"description": "a part is unavailable"}})
def healthz(ctx: Context) -> JSONResponse:
    """No authentication. 200 when the database and the blob store answer, else 503; says which."""
    checks: dict[str, str] = {}
    try:
        with translate_db_errors(ctx.repository.url), ctx.repository.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except DatabaseUnavailable:
        checks["database"] = "unavailable"
    except Exception as exc:  # noqa: BLE001 - anything else is as unavailable for a health check
        log.warning("health check of the database: %s", type(exc).__name__)
        checks["database"] = "unavailable"
    try:
        check = getattr(ctx.store, "check", None)
        if check is not None:
            check()
        checks["blob_store"] = "ok"
    except (StorageUnavailable, OSError):
        checks["blob_store"] = "unavailable"
    healthy = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, status_code=200 if healthy else 503
    )
