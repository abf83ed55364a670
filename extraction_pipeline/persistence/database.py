"""Engines and sessions for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from extraction_pipeline.persistence.errors import DatabaseUnavailable


def redact_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<database url>"


def create_db_engine(url: str) -> Engine:
    """An engine with sane defaults: WAL and foreign keys on SQLite, liveness checks on PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


class Store:
    """An engine, its URL (for error messages) and its sessions: what every group of queries uses
    (``files``, ``queueing``, ``attempts``; ``repository.CloudFileRepository`` has them all)."""

    def __init__(self, engine: Engine, url: str | None = None) -> None:
        self.engine = engine
        self.url = url or engine.url.render_as_string(hide_password=False)
        self.sessions: sessionmaker[Session] = session_factory(engine)

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls(create_db_engine(url), url)

    def dispose(self) -> None:
        self.engine.dispose()


def is_connection_error(exc: BaseException) -> bool:
    """True for errors that mean the server is unreachable rather than the query being wrong."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


@contextmanager
def translate_db_errors(url: str) -> Iterator[None]:
    """Turn 'server unreachable' into the transient ``database_unavailable`` error, password hidden."""
    try:
        yield
    except DBAPIError as exc:
        if is_connection_error(exc):
            raise DatabaseUnavailable(
                f"database {redact_url(url)} is unavailable: {type(exc.orig).__name__}"
            ) from exc
        raise
