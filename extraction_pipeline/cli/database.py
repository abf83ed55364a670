"""``db upgrade`` / ``db downgrade``: apply the shipped Alembic migrations."""

from __future__ import annotations

import click

from extraction_pipeline.cli.common import load_settings, operation_errors
from extraction_pipeline.persistence import migrate
from extraction_pipeline.persistence.database import redact_url


@click.group()
def db() -> None:
    """Manage the database schema."""


@db.command()
def upgrade() -> None:
    """Create or update the schema of EXTRACTION_DATABASE_URL (idempotent)."""
    settings = load_settings()
    with operation_errors():
        migrate.upgrade(settings.database_url)
    click.echo(
        f"database {redact_url(settings.database_url)} is at revision {migrate.head_revision()}", err=True
    )


@db.command()
@click.option("--revision", default="base", show_default=True, help="Target revision.")
@click.confirmation_option(prompt="This drops the extraction tables and their data. Continue?")
def downgrade(revision: str) -> None:
    """Revert the schema (to base: drop every table of this project)."""
    settings = load_settings()
    with operation_errors():
        migrate.downgrade(settings.database_url, revision)
    click.echo(f"database {redact_url(settings.database_url)} downgraded to {revision}", err=True)


COMMANDS: list[click.Command] = [db]
