"""Shared fixtures: fresh SQLite and PostgreSQL databases, an isolated EXTRACTION_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

if TYPE_CHECKING:
    from extraction_pipeline.persistence.repository import CloudFileRepository

# The PostgreSQL server CI provides; each test run creates its own databases on it.
PG_ADMIN_URL = os.environ.get(
    "EXTRACTION_TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI (CI set) the corpus must be there: its tests skip locally without it, never in CI."""
    from extraction_pipeline_tests.corpus import CORPUS_DIR

    if os.environ.get("CI") and not (CORPUS_DIR / "expected.json").is_file():
        raise pytest.UsageError(
            f"CI is set but the corpus is missing at {CORPUS_DIR} (EXTRACTION_CORPUS_DIR)"
        )


def _admin_engine() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})


def postgres_available() -> tuple[bool, str]:
    try:
        engine = _admin_engine()
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True, ""
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return False, f"{type(exc).__name__}: {exc}".splitlines()[0]


def require_postgres() -> None:
    """Skip when PostgreSQL is unreachable, except in CI (CI set), where that is a failure."""
    ok, reason = postgres_available()
    if ok:
        return
    message = f"PostgreSQL at {PG_ADMIN_URL.split('@')[-1]} is not reachable ({reason})"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def create_pg_database(prefix: str = "ep_test") -> str:
    """A brand-new empty database; returns its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    require_postgres()
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'app.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def extraction_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated embedded default: EXTRACTION_HOME in tmp_path, nothing inherited."""
    home = tmp_path / "home"
    for name in list(os.environ):
        if name.startswith("EXTRACTION_") and name not in (
            "EXTRACTION_TEST_PG_ADMIN_URL",
            "EXTRACTION_CORPUS_DIR",
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("EXTRACTION_HOME", str(home))
    return home


@pytest.fixture
def repository(db_url: str) -> Iterator[CloudFileRepository]:
    """A migrated application database (SQLite, then PostgreSQL) behind its repository."""
    from extraction_pipeline.persistence import migrate
    from extraction_pipeline.persistence.repository import CloudFileRepository

    migrate.upgrade(db_url)
    repository = CloudFileRepository.from_url(db_url)
    try:
        yield repository
    finally:
        repository.dispose()


def add_file_row(repository: CloudFileRepository, name: str) -> int:
    """A cloud_files row whose blob is never read (the tests that use it do not extract)."""
    from extraction_pipeline.persistence.repository import NewFile

    new = NewFile(filename=name, size_bytes=1, sha256="0" * 64, storage_uri=f"mem://{name}")
    return repository.add_file(new).id


def run_cli(
    env: dict[str, str], *args: str, cwd: Path, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``extraction-pipeline ARGS`` in a fresh process (``python -m``), as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "extraction_pipeline", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
