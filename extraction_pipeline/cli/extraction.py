"""``extract`` and ``schema``: the extraction core on local files, no database, no Dagster."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
