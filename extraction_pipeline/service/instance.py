"""The Dagster instance of a long-running front door (the API), found as the CLI finds it.

``DAGSTER_HOME`` when set, else the quick start's ``$EXTRACTION_HOME/dagster`` when it holds a
``dagster.yaml``. Unlike the CLI's ``cli.instance`` this never exits the process: a server answers
each request on its own (``NoDagsterInstance`` for the routes that need an instance).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from extraction_pipeline.service.errors import NoDagsterInstance
from extraction_pipeline.settings import Settings

INSTANCE_FILE = "dagster.yaml"


def quickstart_instance_dir(settings: Settings) -> Path:
    """Where ``extraction-pipeline quickstart`` puts its instance when DAGSTER_HOME is not set."""
    return settings.home / "dagster"


def find_dagster_home(settings: Settings) -> Path | None:
    """The instance folder, absolute: ``DAGSTER_HOME`` when set (``NoDagsterInstance`` when it is not
    a folder), else the quick start's when it holds a ``dagster.yaml``, else None."""
    value = os.environ.get("DAGSTER_HOME", "").strip()
    if value:
        home = Path(value).expanduser()
        if not home.is_dir():
            raise NoDagsterInstance(
                f"DAGSTER_HOME={value} is not a folder: create it and put the instance's {INSTANCE_FILE} there"
            )
        return home.resolve()
    candidate = quickstart_instance_dir(settings)
    return candidate.resolve() if (candidate / INSTANCE_FILE).is_file() else None


def open_instance(settings: Settings, *, required: bool) -> Any | None:
    """The instance (the caller disposes it), or None when there is none and it is not ``required``."""
    try:
        home = find_dagster_home(settings)
    except NoDagsterInstance:
        if required:
            raise
        return None
    if home is None:
        if required:
            raise NoDagsterInstance(
                "no Dagster instance: set DAGSTER_HOME to the folder that holds its dagster.yaml"
            )
        return None
    import dagster as dg

    try:
        return dg.DagsterInstance.from_config(str(home))
    except Exception as exc:
        raise NoDagsterInstance(f"the Dagster instance cannot be opened: {type(exc).__name__}") from exc
