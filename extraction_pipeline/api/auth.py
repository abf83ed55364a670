"""Bearer token authentication of every route but ``/healthz`` (and the OpenAPI pages).

A plain ASGI middleware rather than a FastAPI dependency: it answers before anything of the request
is read or validated, so an unauthenticated client learns nothing from a 422 and uploads nothing.
The token is compared in constant time and appears in no log or response.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from extraction_pipeline.api.errors import error_response

# Paths open without a token: the health check for load balancers, the API's own description.
PUBLIC_PATHS = frozenset({"/healthz", "/docs", "/docs/oauth2-redirect", "/openapi.json"})


def bearer_token(header: bytes | None) -> bytes | None:
    if not header:
        return None
    scheme, _, value = header.partition(b" ")
    if scheme.lower() != b"bearer" or not value.strip():
        return None
    return value.strip()


class BearerAuth:
    """Refuse (401) a request to a non-public path without ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization")
        given = bearer_token(header)
        if given is None or not hmac.compare_digest(given, self.token):
            message = "missing bearer token" if given is None else "wrong bearer token"
            response = error_response(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
