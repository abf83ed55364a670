"""Create cloud_file_text, a file's plain text, with a full-text index on each backend.

- PostgreSQL: a generated ``tsv`` column (``tsvector``, the ``simple`` configuration: drawings are
  written in every language, and part numbers must not be stemmed) with a GIN index. A tsvector holds
  at most 1 MB; ``extraction_text_tsvector`` indexes the longest prefix of the text that fits (the
  whole text but for texts of hundreds of thousands of distinct words), so an insert never fails.
- SQLite: the FTS5 table ``cloud_file_text_fts`` over the text (external content: the text is stored
  once, in ``cloud_file_text``), kept in step by triggers on insert, update and delete.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

POSTGRES_UP = [
    """
    CREATE FUNCTION extraction_text_tsvector(body text) RETURNS tsvector
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
    DECLARE
        keep integer := length(body);
    BEGIN
        LOOP
            BEGIN
                RETURN to_tsvector('simple'::regconfig, left(body, keep));
            EXCEPTION WHEN program_limit_exceeded THEN
                keep := keep / 2;  -- "string is too long for tsvector": index a shorter prefix
            END;
        END LOOP;
    END
    $$
    """,
    "ALTER TABLE cloud_file_text ADD COLUMN tsv tsvector "
    "GENERATED ALWAYS AS (extraction_text_tsvector(text)) STORED",
    "CREATE INDEX ix_cloud_file_text_tsv ON cloud_file_text USING GIN (tsv)",
]
POSTGRES_DOWN = [
    "DROP INDEX IF EXISTS ix_cloud_file_text_tsv",
    "ALTER TABLE cloud_file_text DROP COLUMN IF EXISTS tsv",
    "DROP FUNCTION IF EXISTS extraction_text_tsvector(text)",
]
SQLITE_UP = [
    "CREATE VIRTUAL TABLE cloud_file_text_fts USING fts5("
    "text, content='cloud_file_text', content_rowid='cloud_file_id')",
    "CREATE TRIGGER cloud_file_text_fts_insert AFTER INSERT ON cloud_file_text BEGIN "
    "INSERT INTO cloud_file_text_fts(rowid, text) VALUES (new.cloud_file_id, new.text); END",
    "CREATE TRIGGER cloud_file_text_fts_delete AFTER DELETE ON cloud_file_text BEGIN "
    "INSERT INTO cloud_file_text_fts(cloud_file_text_fts, rowid, text) "
    "VALUES ('delete', old.cloud_file_id, old.text); END",
    "CREATE TRIGGER cloud_file_text_fts_update AFTER UPDATE ON cloud_file_text BEGIN "
    "INSERT INTO cloud_file_text_fts(cloud_file_text_fts, rowid, text) "
    "VALUES ('delete', old.cloud_file_id, old.text); "
    "INSERT INTO cloud_file_text_fts(rowid, text) VALUES (new.cloud_file_id, new.text); END",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS cloud_file_text_fts_update",
    "DROP TRIGGER IF EXISTS cloud_file_text_fts_delete",
    "DROP TRIGGER IF EXISTS cloud_file_text_fts_insert",
    "DROP TABLE IF EXISTS cloud_file_text_fts",
]


def upgrade() -> None:
    op.create_table(
        "cloud_file_text",
        sa.Column(
            "cloud_file_id",
            BigId,
            sa.ForeignKey("cloud_files.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("char_count", sa.Integer(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    for statement in _statements(up=True):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(up=False):
        op.execute(statement)
    op.drop_table("cloud_file_text")


def _statements(*, up: bool) -> list[str]:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        return POSTGRES_UP if up else POSTGRES_DOWN
    if dialect == "sqlite":
        return SQLITE_UP if up else SQLITE_DOWN
    return []  # another backend: the text is stored, search is not available
