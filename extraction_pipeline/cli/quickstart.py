"""``quickstart``: the embedded default end to end, Dagster webserver and daemon included."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from extraction_pipeline.cli.common import load_settings, open_repository, operation_errors
from extraction_pipeline.cli.files import collect_upload_candidates, upload_candidates
from extraction_pipeline.settings import Settings

# The embedded instance: SQLite storage in DAGSTER_HOME, a run queue that dequeues every second.
EMBEDDED_INSTANCE_YAML = """\
# Written by `extraction-pipeline quickstart`: the embedded (SQLite) Dagster instance.
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 2
    dequeue_interval_seconds: 1
run_monitoring:
  enabled: true
  poll_interval_seconds: 30
telemetry:
  enabled: false
"""


def prepare_quickstart(settings: Settings, *, samples: bool) -> Path:
    """Schema, sample uploads (first run only) and the embedded Dagster instance; returns DAGSTER_HOME."""
    repository = open_repository(settings)
    if samples and repository.count_files() == 0:
        from extraction_pipeline.samples import write_samples

        folder = settings.home / "samples"
        paths = write_samples(folder)
        candidates = collect_upload_candidates(tuple(map(str, paths)), settings.max_file_bytes)
        with operation_errors():
            uploaded = upload_candidates(candidates, settings, repository, show_progress=False)
        click.echo(f"uploaded {len(uploaded)} sample files from {folder}", err=True)
    repository.dispose()

    dagster_home = Path(os.environ.get("DAGSTER_HOME") or settings.home / "dagster").resolve()
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance_yaml = dagster_home / "dagster.yaml"
    if not instance_yaml.exists():
        instance_yaml.write_text(EMBEDDED_INSTANCE_YAML, encoding="utf-8")
    return dagster_home


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface the UI binds to.")
@click.option("--port", default=3000, show_default=True, type=int, help="Port of the UI.")
@click.option("--samples/--no-samples", default=True, help="Generate and upload sample files first.")
def quickstart(host: str, port: int, samples: bool) -> None:
    """Create the embedded default, upload sample files and start the Dagster webserver and daemon."""
    settings = load_settings()
    dagster_home = prepare_quickstart(settings, samples=samples)
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "EXTRACTION_HOME": str(settings.home)}
    command = [
        sys.executable, "-m", "dagster", "dev",
        "-m", "extraction_pipeline.definitions",
        "--host", host, "--port", str(port),
    ]  # fmt: skip
    click.echo(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={dagster_home}); Ctrl-C stops it", err=True)
    os.execvpe(command[0], command, env)


COMMANDS: list[click.Command] = [quickstart]
