"""``/v1/files``: upload, status, list, retry, cancel, delete, thumbnail; ``/v1/search``.

Routes only parse and map: the work is ``extraction_pipeline.service``'s, shared with the CLI.
Every route that touches the database or the blob store is a plain ``def`` (FastAPI runs it in its
thread pool) or awaits a thread, so no request blocks the event loop and the others with it.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from extraction_pipeline.api.app import ApiContext, context
from extraction_pipeline.api.errors import ApiError, error_response, error_schema
from extraction_pipeline.api.uploads import FIELD, receive_upload
from extraction_pipeline.extraction import format_table
from extraction_pipeline.persistence.state import STATUSES
from extraction_pipeline.service.deletion import delete_files
from extraction_pipeline.service.documents import list_page, load_status_document
from extraction_pipeline.service.errors import FileNotFound, WrongState
from extraction_pipeline.service.instance import open_instance
from extraction_pipeline.service.operations import cancel_files, retry_files
from extraction_pipeline.service.previews import load_thumbnail
from extraction_pipeline.service.uploads import register_upload

router = APIRouter(prefix="/v1", tags=["files"], responses={code: error_schema() for code in (401, 503)})
Context = Annotated[ApiContext, Depends(context)]

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FIELD],
                    "properties": {FIELD: {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


def _require_file(ctx: ApiContext, file_id: int) -> None:
    if ctx.repository.get_file(file_id) is None:
        raise FileNotFound(file_id)


@router.post(
    "/files",
    status_code=201,
    openapi_extra=_UPLOAD_BODY,
    responses={code: error_schema() for code in (400, 413, 415, 422)},
)
async def upload_file(request: Request, ctx: Context) -> Any:
    """Store the multipart field `file` (streamed, size-limited) and register it for extraction."""
    try:
        received = await receive_upload(request, ctx.store, ctx.settings.max_file_bytes)
    except ClientDisconnect:  # nobody reads the answer; nothing was kept
        return error_response(400, "client_disconnected", "the client went away during the upload")
    return await run_in_threadpool(
        register_upload, received.blob, received.filename, received.content_type, ctx.store, ctx.repository
    )


@router.get("/files/{file_id}", responses={404: error_schema()})
def file_status(file_id: int, ctx: Context) -> dict[str, Any]:
    """What `extraction-pipeline status ID --json` prints: state, attempts and metadata."""
    return load_status_document(ctx.repository, file_id)


@router.get("/files", responses={400: error_schema()})
def list_files(
    ctx: Context,
    status: str | None = None,
    format: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Files in id order, `limit` per page; pass `next_cursor` as `cursor` for the next page."""
    if status is not None and status not in STATUSES:
        raise ApiError(400, f"status must be one of {', '.join(STATUSES)}")
    formats = format_table.format_names(unknown=True)
    if format is not None and format not in formats:
        raise ApiError(400, f"format must be one of {', '.join(formats)}")
    after_id = None
    if cursor is not None:
        if not cursor.isdigit():
            raise ApiError(400, "cursor must be the next_cursor of a previous page")
        after_id = int(cursor)
    items, next_id = list_page(ctx.repository, status=status, fmt=format, limit=limit, after_id=after_id)
    return {"items": items, "next_cursor": str(next_id) if next_id is not None else None}


@router.get("/search", tags=["search"], responses={400: error_schema()})
def search_files(
    ctx: Context,
    q: str,
    format: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> list[dict[str, Any]]:
    """Files whose text matches `q`, best first, as `search --json`: words, "phrases", -word, or."""
    formats = format_table.format_names(unknown=False)
    if format is not None and format not in formats:
        raise ApiError(400, f"format must be one of {', '.join(formats)}")
    return [asdict(hit) for hit in ctx.repository.search(q, fmt=format, limit=limit)]


@router.post("/files/{file_id}/retry", responses={code: error_schema() for code in (404, 409)})
def retry_file(file_id: int, ctx: Context, force: bool = False) -> dict[str, Any]:
    """Queue a failed or cancelled file again (`force`: also a succeeded or skipped one)."""
    outcome = retry_files(ctx.repository, [file_id], force=force)
    if outcome.not_found:
        raise FileNotFound(file_id)
    if not outcome.requeued:
        raise WrongState(
            f"file {file_id} is {outcome.reasons.get(file_id, 'in a state retry does not take')}"
        )
    return load_status_document(ctx.repository, file_id)


@router.post("/files/{file_id}/cancel", responses={code: error_schema() for code in (404, 409)})
def cancel_file(file_id: int, ctx: Context) -> dict[str, Any]:
    """Stop a pending, queued or running extraction; the file ends cancelled."""
    _require_file(ctx, file_id)  # before the Dagster instance is opened (a few hundred ms)
    instance = open_instance(ctx.settings, required=False)
    try:
        outcome = cancel_files(ctx.repository, instance, [file_id], by="the HTTP API")
    finally:
        if instance is not None:
            instance.dispose()
    if outcome.not_found:
        raise FileNotFound(file_id)
    if not outcome.cancelled:
        raise WrongState(f"file {file_id} is {outcome.finished[file_id]}: nothing to cancel")
    return load_status_document(ctx.repository, file_id)


@router.get(
    "/files/{file_id}/thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 404: error_schema()},
)
def file_thumbnail(file_id: int, ctx: Context) -> Response:
    """The file's PNG preview (512 px); `404` when there is no such file or it has no preview. A
    file extracted by a backfill gets its preview now, on the first request (a second or so)."""
    png = load_thumbnail(ctx.repository, ctx.store, file_id, render=ctx.previews)
    # Immutable for a given extraction, but a re-extraction replaces it: revalidate, never cache blind.
    return Response(content=png, media_type="image/png", headers={"Cache-Control": "private, no-cache"})


@router.delete("/files/{file_id}", status_code=204, responses={404: error_schema()})
def delete_file(file_id: int, ctx: Context) -> Response:
    """Remove the file: row, attempts, metadata, text, blob, preview and dynamic partition (a run is
    cancelled first)."""
    _require_file(ctx, file_id)
    instance = open_instance(ctx.settings, required=False)
    try:
        outcome = delete_files(ctx.repository, ctx.store, instance, [file_id], by="the HTTP API")
    finally:
        if instance is not None:
            instance.dispose()
    if not outcome.deleted:
        raise FileNotFound(file_id)
    return Response(status_code=204)
