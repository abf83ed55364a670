"""The Dagster instance's PostgreSQL storage, for every URL form the contract allows.

dagster-postgres hands ``postgres_url`` to SQLAlchemy as it is. SQLAlchemy 2.1 maps a plain
``postgresql://`` URL to psycopg 3, and with psycopg 3 (server-side parameters) dagster-postgres
0.29's ``NOTIFY run_events, :notify_id`` is a syntax error: every run the sensor creates stays
NOT_STARTED. Users write plain URLs, so the instance's storage connects through psycopg2 (a
dependency of this project, and the driver dagster-postgres is written for) whatever form
``DAGSTER_POSTGRES_URL`` has: ``postgresql://``, ``postgres://``, ``postgresql+psycopg2://`` or
``postgresql+psycopg://``.

The committed ``dagster.yaml`` names this class as its ``storage: custom`` (Dagster's documented
way to plug in a storage class); everything else is dagster-postgres' own ``DagsterPostgresStorage``.
``extraction_pipeline_tests/orchestration/test_instance_storage.py`` fails if an upgrade of
dagster-postgres changes what this relies on.
"""

from __future__ import annotations

from typing import Any

from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

_PSYCOPG2 = "postgresql+psycopg2://"
_OTHER_FORMS = ("postgresql+psycopg://", "postgresql://", "postgres://")


def psycopg2_url(url: str) -> str:
    """The same database, reached through psycopg2 (other schemes are returned unchanged)."""
    for prefix in _OTHER_FORMS:
        if url.startswith(prefix):
            return _PSYCOPG2 + url[len(prefix) :]
    return url


class PostgresStorage(DagsterPostgresStorage):
    """``DagsterPostgresStorage`` that accepts a PostgreSQL URL of any driver form."""

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: Any, config_value: Any
    ) -> PostgresStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=psycopg2_url(pg_url_from_config(config_value)),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
