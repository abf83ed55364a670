"""``serve``: the HTTP API on uvicorn, over the same database and blob store as the other commands.

FastAPI and uvicorn are imported here and only here (this module is loaded only when ``serve``
runs), so every other command and the Dagster code location start without them.
"""

from __future__ import annotations

import ipaddress
import os

import click

from extraction_pipeline.cli.common import EXIT_FAILED, fail, load_settings, operation_errors
from extraction_pipeline.persistence import migrate
from extraction_pipeline.persistence.database import redact_url
from extraction_pipeline.persistence.errors import DatabaseUnavailable
from extraction_pipeline.settings import Settings

TOKEN_VARIABLE = "EXTRACTION_API_TOKEN"  # read into Settings.api_token


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (``--no-auth`` is refused anywhere else)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_database(settings: Settings) -> None:
    """The embedded default is created and migrated; another database must be migrated already.

    A database that does not answer is reported and the server starts anyway: its routes answer 503
    (and ``/healthz`` says so) until the database is back, as a load balancer expects.
    """
    with operation_errors():
        try:
            if settings.is_embedded:
                migrate.upgrade(settings.database_url)
                return
            current = migrate.is_up_to_date(settings.database_url)
        except DatabaseUnavailable as exc:
            click.echo(f"warning: {exc.message}; serving anyway (503 until it answers)", err=True)
            return
        if not current:
            fail(
                f"the database {redact_url(settings.database_url)} has no current schema: "
                "run `extraction-pipeline db upgrade` first",
                EXIT_FAILED,
            )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Server processes (each with its own database pool); see the README's HTTP API section.",
)
@click.option(
    "--no-auth",
    is_flag=True,
    help="Serve without a token; only on a loopback host (127.0.0.1, ::1, localhost).",
)
def serve(host: str, port: int, workers: int, no_auth: bool) -> None:
    """The HTTP API: upload, status, list, retry, cancel, delete, backfill (OpenAPI at /docs).

    Every route but /healthz requires `Authorization: Bearer $EXTRACTION_API_TOKEN`.
    """
    settings = load_settings()
    token = settings.api_token
    if no_auth:
        if not is_loopback(host):
            fail(f"--no-auth is only allowed on a loopback host (127.0.0.1, ::1, localhost), not {host}")
        token = None
    elif token is None:
        fail(
            f"{TOKEN_VARIABLE} is not set: set it to the token clients must send, or use --no-auth on 127.0.0.1"
        )
    check_database(settings)

    import uvicorn

    from extraction_pipeline.api.app import NO_AUTH_VARIABLE, create_app

    shown = f"[{host}]" if ":" in host else host
    auth = "no authentication (--no-auth)" if token is None else "bearer token required"
    click.echo(f"serving the HTTP API on http://{shown}:{port} ({auth}); OpenAPI at /docs", err=True)
    if workers == 1:
        uvicorn.run(create_app(settings, token), host=host, port=port, log_level="info")
        return
    if token is None:
        os.environ[NO_AUTH_VARIABLE] = "1"  # read by each worker's app_from_env
    uvicorn.run(
        "extraction_pipeline.api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


COMMANDS: list[click.Command] = [serve]
