"""Every error the API answers, as ``{"error": {"code", "message"}}``, with its HTTP status.

Messages are written here or taken from the project's own exceptions (which hide passwords); an
exception nobody expected becomes a generic 500, never a stack trace or a URL in a response.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from extraction_pipeline.extraction.errors import StorageUnavailable, TooLarge
from extraction_pipeline.persistence.errors import DatabaseUnavailable
from extraction_pipeline.service.errors import (
    BadRequest,
    FileNotFound,
    NoDagsterInstance,
    ServiceError,
    WrongState,
)

log = logging.getLogger("extraction_pipeline.api")

_CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


class ApiError(Exception):
    """Raised by a route for an answer that is not a use case's (a malformed upload, a bad query)."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _CODES_BY_STATUS.get(status, "error")


def _service_status(exc: ServiceError) -> int:
    if isinstance(exc, FileNotFound) or exc.code == "not_found":  # no such file, or no such part of it
        return 404
    if isinstance(exc, WrongState):
        return 409
    if isinstance(exc, BadRequest):
        return 400
    if isinstance(exc, NoDagsterInstance):
        return 503
    return 400


def _validation_message(exc: RequestValidationError) -> str:
    """``body.status: Input should be ...``, without echoing the input (it may be anything)."""
    parts = []
    for error in exc.errors()[:5]:
        loc = () if error.get("type") == "json_invalid" else error.get("loc", ())
        where = ".".join(str(item) for item in loc if item != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is malformed"


def install_error_handlers(app: FastAPI) -> None:
    """Map the project's exceptions (and FastAPI's own) to the error document."""

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(ServiceError)
    async def service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(_service_status(exc), exc.code, exc.message)

    @app.exception_handler(TooLarge)
    async def too_large(_request: Request, exc: TooLarge) -> JSONResponse:
        return error_response(413, "too_large", exc.message)

    @app.exception_handler(DatabaseUnavailable)
    async def database_unavailable(_request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        log.warning("%s", exc.message)  # the URL in it has its password hidden
        return error_response(503, "database_unavailable", "the database is unavailable; try again later")

    @app.exception_handler(StorageUnavailable)
    async def storage_unavailable(_request: Request, exc: StorageUnavailable) -> JSONResponse:
        log.warning("%s", exc.message)
        return error_response(503, "storage_unavailable", "the blob store is unavailable; try again later")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        return error_response(
            exc.status_code, _CODES_BY_STATUS.get(exc.status_code, "error"), message, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error: %s", type(exc).__name__, exc_info=exc)
        return error_response(500, "internal_error", "internal error; the server log has the details")


def error_schema() -> dict[str, Any]:
    """The error document for OpenAPI's ``responses``."""
    return {
        "description": "error",
        "content": {
            "application/json": {"example": {"error": {"code": "not_found", "message": "no file with id 7"}}}
        },
    }
