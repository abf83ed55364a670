"""Which Dagster instance the commands that need one use (``backfill``, ``cancel``, ``daemon``).

``DAGSTER_HOME`` when it is set; else the quick start's instance, ``$EXTRACTION_HOME/dagster``, when
``extraction-pipeline quickstart`` created it (a folder holding a ``dagster.yaml``), so that a second
terminal in the same folder works without exporting anything; else nothing, and the caller fails
with a line that says what to export. Dagster itself is imported only when an instance is opened.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, overload

import click

from extraction_pipeline.cli.common import EXIT_FAILED, fail
from extraction_pipeline.service.errors import NoDagsterInstance
from extraction_pipeline.service.instance import INSTANCE_FILE, find_dagster_home, quickstart_instance_dir
from extraction_pipeline.settings import Settings


def missing_instance_message(settings: Settings) -> str:
    """One line: no DAGSTER_HOME, no quick start instance, and what to export."""
    return (
        f"DAGSTER_HOME is not set and there is no quick start instance in "
        f"{quickstart_instance_dir(settings)}: export DAGSTER_HOME=/path/to/instance (the folder that "
        f"holds its {INSTANCE_FILE}; for a quick start run in another folder: "
        f"export DAGSTER_HOME=<that folder>/.extraction/dagster)"
    )


@overload
def resolve_dagster_home(settings: Settings, *, required: Literal[True] = ...) -> Path: ...


@overload
def resolve_dagster_home(settings: Settings, *, required: bool) -> Path | None: ...


def resolve_dagster_home(settings: Settings, *, required: bool = True) -> Path | None:
    """The Dagster instance folder, as an absolute path.

    1. ``DAGSTER_HOME`` when set (it must be an existing folder: exit 2 otherwise);
    2. else ``$EXTRACTION_HOME/dagster`` when it holds a ``dagster.yaml`` (the quick start's);
    3. else exit 2 with a line that says what to export, or None when not ``required``.
    """
    try:
        home = find_dagster_home(settings)
    except NoDagsterInstance as exc:
        fail(str(exc))
    if home is None and required:
        fail(missing_instance_message(settings))
    return home


def announce_fallback(home: Path) -> None:
    """Say on stderr that the quick start's instance is used (DAGSTER_HOME is not set)."""
    if not os.environ.get("DAGSTER_HOME", "").strip():
        click.echo(f"DAGSTER_HOME is not set: using the quick start's Dagster instance in {home}", err=True)


def open_dagster_instance(settings: Settings, *, required: bool = True) -> Any:
    """The Dagster instance of :func:`resolve_dagster_home` (None when there is none and not required).

    An instance that cannot be opened (a broken ``dagster.yaml``, an unreachable instance database)
    ends the command with exit code 1.
    """
    home = resolve_dagster_home(settings, required=required)
    if home is None:
        return None
    announce_fallback(home)
    import dagster as dg

    try:
        return dg.DagsterInstance.from_config(str(home))
    except Exception as exc:  # noqa: BLE001 - any failure to open it is reported in one line
        fail(f"the Dagster instance in {home} cannot be opened: {type(exc).__name__}: {exc}", EXIT_FAILED)
