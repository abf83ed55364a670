"""Shared plumbing of the CLI: settings, the repository, JSON output and error exits."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click
from sqlalchemy.exc import SQLAlchemyError

from extraction_pipeline.extraction.errors import ExtractionError
from extraction_pipeline.persistence import migrate
from extraction_pipeline.persistence.database import redact_url
from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline.settings import Settings, SettingsError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """One line on stderr, then exit with ``code`` (2: bad input, 1: the operation failed)."""
    click.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(code)


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        fail(str(exc))


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, ensure_ascii=False, default=str))


@contextmanager
def operation_errors() -> Iterator[None]:
    """Environment failures (database or storage down) end the command with exit code 1."""
    try:
        yield
    except ExtractionError as exc:
        fail(exc.message, EXIT_FAILED)
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        fail(f"database error: {type(reason).__name__}: {reason}", EXIT_FAILED)


def open_repository(settings: Settings) -> CloudFileRepository:
    """The repository, with the schema created on first use of the embedded default."""
    with operation_errors():
        if not migrate.is_up_to_date(settings.database_url):
            if not settings.is_embedded:
                fail(
                    f"the database {redact_url(settings.database_url)} has no current schema: "
                    "run `extraction-pipeline db upgrade` first",
                    EXIT_FAILED,
                )
            migrate.upgrade(settings.database_url)
        return CloudFileRepository.from_url(settings.database_url)
