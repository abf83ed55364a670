"""``quickstart``: the embedded default end to end, Dagster webserver and daemon included."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click

from extraction_pipeline.cli.common import EXIT_FAILED, fail, load_settings, open_repository, operation_errors
from extraction_pipeline.cli.upload import collect_upload_candidates, upload_candidates
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
    # A backfill (a burst of uploads included) takes one of the two slots: uploads keep the other.
    tag_concurrency_limits:
      - key: dagster/backfill
        limit: 1
run_monitoring:
  enabled: true
  poll_interval_seconds: 30
# Run workers print INFO and up on the terminal (files detected, extracted, failed), not a DEBUG
# line per Dagster event; the event log in the UI keeps every event.
python_logs:
  python_log_level: INFO
# Sensor ticks (one every few seconds, nearly all skipped): skipped ones kept a day, others a week.
retention:
  sensor:
    purge_after_days:
      skipped: 1
      success: 7
      failure: 7
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
    _create_instance_storage(dagster_home)
    return dagster_home


def _create_instance_storage(dagster_home: Path) -> None:
    """Open the instance once here, so that its SQLite databases exist (tables created, migrations
    stamped) before the webserver and the daemon start: both creating them at the same moment
    raced (``UNIQUE constraint failed: alembic_version.version_num``) and the webserver exited."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.get_runs_count()


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class _StopRequests:
    """Counts SIGINT/SIGTERM; the handler only counts, so no exception lands inside ``Popen``."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, signum: int, frame: object) -> None:
        self.count += 1


def _stop_children(children: list[subprocess.Popen[bytes]], requests: _StopRequests, grace_s: float) -> None:
    """One SIGINT each (a graceful stop); SIGKILL after ``grace_s`` or on a second stop request."""
    asked = requests.count
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace_s
    while any(child.poll() is None for child in children):
        if time.monotonic() > deadline or requests.count > asked:
            for child in children:
                if child.poll() is None:
                    child.kill()
            for child in children:
                child.wait()
            return
        time.sleep(0.2)


def supervise(commands: dict[str, list[str]], env: dict[str, str], grace_s: float = 30.0) -> int:
    """Start every command; when one exits or this process is told to stop, stop them all.

    The children get their own process group: a Ctrl-C in the terminal reaches only this process,
    which stops each child with exactly one SIGINT (a second Ctrl-C kills them). Returns 0 after a
    stop request, else 1 (a child ended on its own: the other cannot work alone).
    """
    requests = _StopRequests()
    previous = {sig: signal.signal(sig, requests) for sig in (signal.SIGTERM, signal.SIGINT)}
    children: dict[str, subprocess.Popen[bytes]] = {}
    code = 0
    try:
        for name, command in commands.items():
            if requests.count:
                break
            children[name] = subprocess.Popen(command, env=env, process_group=0)
        while not requests.count:
            ended = [(name, child) for name, child in children.items() if child.poll() is not None]
            if ended:
                name, child = ended[0]
                click.echo(f"error: the {name} stopped (exit code {child.returncode}); stopping", err=True)
                code = EXIT_FAILED
                break
            time.sleep(0.5)
    finally:
        _stop_children(list(children.values()), requests, grace_s)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface the UI binds to.")
@click.option("--port", default=3000, show_default=True, type=int, help="Port of the UI.")
@click.option("--samples/--no-samples", default=True, help="Generate and upload sample files first.")
def quickstart(host: str, port: int, samples: bool) -> None:
    """Create the embedded default, upload sample files and start the Dagster webserver and daemon.

    The daemon is extraction-pipeline daemon (sensors, run queue, backfills within seconds), the
    webserver dagster-webserver; both load the code location extraction_pipeline.definitions.
    Ctrl-C stops both.
    """
    if not _port_is_free(host, port):
        fail(f"{host}:{port} is in use (another webserver?): choose a free port with --port")
    settings = load_settings()
    from extraction_pipeline.cli.doctor import refuse_unless_healthy

    refuse_unless_healthy(settings, "quickstart")  # before anything is created or uploaded
    dagster_home = prepare_quickstart(settings, samples=samples)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "EXTRACTION_HOME": str(settings.home),
        "EXTRACTION_DOCTOR_AT_START": "0",  # just checked, for both children
    }
    location = ["-m", "extraction_pipeline.definitions"]
    # A quiet terminal: Dagster's own chatter (a "checking for new runs" line per sensor tick, code
    # servers' heartbeat notices) at warning level; the runs' own lines (files detected, extracted,
    # failed) still show, and everything is in the UI.
    commands = {
        "daemon": [
            sys.executable,
            "-m",
            "extraction_pipeline",
            "daemon",
            *location,
            "--log-level",
            "warning",
            "--code-server-log-level",
            "error",
        ],
        "webserver": [
            sys.executable,
            "-m",
            "dagster_webserver",
            *location,
            "--host",
            host,
            "--port",
            str(port),
            "--dagster-log-level",
            "warning",
            "--code-server-log-level",
            "error",
        ],
    }
    click.echo(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={dagster_home}); Ctrl-C stops it", err=True)
    sys.exit(supervise(commands, env))


COMMANDS: list[click.Command] = [quickstart]
