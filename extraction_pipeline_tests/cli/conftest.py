"""Fixtures of the CLI tests: a migrated application database the CLI reads (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from extraction_pipeline_tests.orchestration.conftest import App, _app


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_app(
    request: pytest.FixtureRequest, extraction_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[App]:
    """A migrated application database and blob store that the CLI uses (EXTRACTION_* set), no
    Dagster instance (DAGSTER_HOME unset)."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    url = (
        f"sqlite:///{tmp_path / 'app.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    )
    for app in _app(url, tmp_path):
        monkeypatch.setenv("EXTRACTION_DATABASE_URL", app.url)
        monkeypatch.setenv("EXTRACTION_STORAGE_URL", app.storage_url)
        yield app


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance
