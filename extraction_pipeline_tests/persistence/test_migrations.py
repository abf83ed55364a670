"""The shipped migrations: idempotent, reversible, the same schema on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import sqlalchemy as sa

from extraction_pipeline.persistence import migrate
from extraction_pipeline.persistence.models import Base

TABLES = {"cloud_files", "extraction_jobs", "cloud_file_metadata", "cloud_file_text"}
# The full-text index of cloud_file_text differs by backend (SQLite: an FTS5 table and its shadow
# tables; PostgreSQL: a generated tsvector column and its GIN index); the models do not declare it.
# The schema comparisons leave it out; test_the_full_text_index_exists_on_each_backend checks it.
FTS_TABLE = "cloud_file_text_fts"
PG_FTS_COLUMN, PG_FTS_INDEX = "tsv", "ix_cloud_file_text_tsv"


def _schema(url: str) -> dict[str, object]:
    """Tables -> columns (name, generic type, nullability), indexes and foreign keys, backend-neutral."""
    engine = sa.create_engine(url)
    inspector = sa.inspect(engine)
    schema: dict[str, object] = {}
    tables = {name for name in inspector.get_table_names() if not name.startswith(FTS_TABLE)}
    for table in sorted(tables - {"alembic_version"}):
        columns = [
            (c["name"], _generic_type(c["type"]), c["nullable"])
            for c in inspector.get_columns(table)
            if (table, c["name"]) != ("cloud_file_text", PG_FTS_COLUMN)
        ]
        indexes = sorted(item for item in _indexes(engine, inspector, table) if item[0] != PG_FTS_INDEX)
        foreign_keys = sorted(
            (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
            for fk in inspector.get_foreign_keys(table)
        )
        primary_key = tuple(inspector.get_pk_constraint(table)["constrained_columns"])
        schema[table] = {
            "columns": sorted(columns),
            "indexes": indexes,
            "fks": foreign_keys,
            "pk": primary_key,
        }
    engine.dispose()
    return schema


def _indexes(engine: sa.Engine, inspector: sa.Inspector, table: str) -> list[tuple[object, ...]]:
    """(name, columns, unique) per index; an expression index has the columns ``(None,)``.

    SQLAlchemy does not reflect SQLite's expression indexes (it warns and skips them), PostgreSQL's
    it does: on SQLite they are read from ``PRAGMA index_list`` so both backends list them.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        found = [
            (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table)
        ]
    if engine.dialect.name == "sqlite":
        known = {item[0] for item in found}
        with engine.connect() as conn:
            for _, name, unique, origin, *_ in conn.exec_driver_sql(f'PRAGMA index_list("{table}")'):
                if origin == "c" and name not in known:
                    found.append((name, (None,), bool(unique)))
    return found


def _generic_type(column_type: sa.types.TypeEngine) -> str:
    name = type(column_type).__name__.upper()
    if name in ("JSON", "JSONB"):
        return "JSON"
    if name in ("INTEGER", "BIGINT", "SMALLINT"):
        return "INTEGER"
    if name in ("VARCHAR", "STRING"):
        return f"VARCHAR({column_type.length})"  # type: ignore[attr-defined]
    if name in ("DATETIME", "TIMESTAMP"):
        return "DATETIME"
    return name


def test_upgrade_is_idempotent_and_downgrade_returns_to_an_empty_database(db_url: str) -> None:
    migrate.upgrade(db_url)
    first = _schema(db_url)
    migrate.upgrade(db_url)  # a second run changes nothing
    assert _schema(db_url) == first
    assert set(first) == TABLES
    assert migrate.is_up_to_date(db_url)

    migrate.downgrade(db_url)
    assert _schema(db_url) == {}
    assert not migrate.is_up_to_date(db_url)


def test_sqlite_and_postgresql_get_the_same_schema(sqlite_url: str, pg_url: str) -> None:
    migrate.upgrade(sqlite_url)
    migrate.upgrade(pg_url)
    assert _schema(sqlite_url) == _schema(pg_url)


def test_migrations_match_the_models(sqlite_url: str, tmp_path: Path) -> None:
    """What Alembic creates is what the ORM models declare (no drift between the two)."""
    migrate.upgrade(sqlite_url)
    from_models = f"sqlite:///{tmp_path / 'models.db'}"
    engine = sa.create_engine(from_models)
    Base.metadata.create_all(engine)
    engine.dispose()
    assert _schema(sqlite_url) == _schema(from_models)


def test_postgresql_uses_jsonb_and_indexes_jobs(pg_url: str) -> None:
    migrate.upgrade(pg_url)
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        kinds = dict(
            conn.execute(
                sa.text(
                    "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                    "WHERE column_name IN ('extraction_status', 'metadata', 'result', 'warnings')"
                )
            ).all()
        )
        indexes = {
            row[0]: row[1]
            for row in conn.execute(
                sa.text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('extraction_jobs', 'cloud_files')"
                )
            )
        }
    engine.dispose()
    assert kinds["cloud_files.extraction_status"] == "jsonb"
    assert kinds["cloud_file_metadata.metadata"] == "jsonb"
    assert kinds["extraction_jobs.result"] == "jsonb"
    assert "(status, next_retry_at)" in indexes["ix_extraction_jobs_status_next_retry_at"]
    assert "(cloud_file_id)" in indexes["ix_extraction_jobs_cloud_file_id"]
    assert "WHERE (extraction_status IS NULL)" in indexes["ix_cloud_files_pending"]
    assert "((extraction_status ->> 'run_id'::text))" in indexes["ix_cloud_files_run_id"]
    assert "(sha256)" in indexes["ix_cloud_files_sha256"]


def test_the_deduplication_migration_goes_down_to_0003_and_up_again(db_url: str) -> None:
    """0004 (sha256 and storage_uri indexes, ``extraction_force``) reverts to exactly what 0003 created: on SQLite the
    column is dropped without rebuilding the table, so its expression and partial indexes stay."""
    migrate.upgrade(db_url)
    head = _schema(db_url)
    assert ("ix_cloud_files_sha256", ("sha256",), False) in head["cloud_files"]["indexes"]
    assert ("ix_cloud_files_storage_uri", ("storage_uri",), False) in head["cloud_files"]["indexes"]
    assert ("extraction_force", "BOOLEAN", False) in head["cloud_files"]["columns"]
    migrate.downgrade(db_url, "0003")
    reverted = _schema(db_url)
    names = {index[0] for index in reverted["cloud_files"]["indexes"]}
    assert names == {"ix_cloud_files_pending", "ix_cloud_files_uploaded_at", "ix_cloud_files_run_id"}
    assert "extraction_force" not in {c[0] for c in reverted["cloud_files"]["columns"]}
    migrate.upgrade(db_url)
    assert _schema(db_url) == head


def test_the_files_of_a_run_are_found_through_the_run_id_index(db_url: str) -> None:
    """``files_of_run`` (the sensors' query per run) uses ``ix_cloud_files_run_id`` on both backends."""
    from extraction_pipeline.persistence.repository import CloudFileRepository

    migrate.upgrade(db_url)
    repository = CloudFileRepository.from_url(db_url)
    query = repository.files_of_run_query("some-run")
    with repository.engine.connect() as conn:
        sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")  # an empty table: make the index the only way
            plan = " ".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))
        else:
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    repository.dispose()
    assert "ix_cloud_files_run_id" in plan, plan


def test_migrations_run_from_any_working_directory(tmp_path: Path) -> None:
    """The migration scripts ship inside the package: no alembic.ini or cwd needed."""
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    code = f"from extraction_pipeline.persistence import migrate; migrate.upgrade({url!r})"
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, capture_output=True)
    assert set(_schema(url)) == TABLES


def test_the_full_text_index_exists_on_each_backend_and_goes_with_the_downgrade(db_url: str) -> None:
    migrate.upgrade(db_url)
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            column = conn.execute(
                sa.text(
                    "SELECT data_type, is_generated FROM information_schema.columns "
                    "WHERE table_name = 'cloud_file_text' AND column_name = 'tsv'"
                )
            ).one()
            index = conn.execute(
                sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_cloud_file_text_tsv'")
            ).scalar_one()
            assert tuple(column) == ("tsvector", "ALWAYS") and "USING gin (tsv)" in index
        else:
            names = set(
                conn.execute(
                    sa.text("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")
                ).scalars()
            )
            assert {FTS_TABLE, f"{FTS_TABLE}_insert", f"{FTS_TABLE}_delete", f"{FTS_TABLE}_update"} <= names
    engine.dispose()
    migrate.downgrade(db_url)
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            functions = conn.execute(
                sa.text("SELECT count(*) FROM pg_proc WHERE proname = 'extraction_text_tsvector'")
            ).scalar_one()
            assert functions == 0
        else:
            left = conn.execute(
                sa.text("SELECT name FROM sqlite_master WHERE name LIKE 'cloud_file_text%'")
            ).all()
            assert left == []
    engine.dispose()
