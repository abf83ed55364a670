"""Helpers of the tests that run the real thing: a dagster-daemon on a PostgreSQL instance, the CLI.

Shared by e2e/test_daemon.py and the reliability tests (import them from here).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from extraction_pipeline_tests.conftest import create_pg_database, drop_pg_database, require_postgres, run_cli

REPO_ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 240


def deployment_env(tmp_path: Path, app_url: str, dagster_url: str) -> dict[str, str]:
    """Environment of a production-like deployment: PostgreSQL for the app and for Dagster.

    DAGSTER_HOME (in ``tmp_path``) holds a copy of the committed production dagster.yaml.
    """
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")  # the committed production file
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("EXTRACTION_", "DAGSTER_")) or key in ("EXTRACTION_TEST_PG_ADMIN_URL",)
    }
    env.update(
        DAGSTER_HOME=str(home),
        DAGSTER_POSTGRES_URL=dagster_url,
        EXTRACTION_HOME=str(tmp_path / "extraction"),
        EXTRACTION_DATABASE_URL=app_url,
        EXTRACTION_STORAGE_URL=(tmp_path / "blobs").as_uri(),
        EXTRACTION_SENSOR_INTERVAL_S="1",
        EXTRACTION_RETRY_DELAY_S="0.5",
        EXTRACTION_MAX_RETRIES="1",
        EXTRACTION_BACKFILL_BATCH_SIZE="3",
        EXTRACTION_TIMEOUT_S="60",
        # `extraction-pipeline daemon` checks the installation first (5-10 s per start); that
        # check has its own test (cli/test_doctor.py), these deployments start many daemons.
        EXTRACTION_DOCTOR_AT_START="0",
    )
    return env


def patch_instance_yaml(env: dict[str, str], **sections: dict[str, Any]) -> None:
    """Merge ``sections`` into the deployment's dagster.yaml (e.g. a faster run monitoring poll)."""
    path = Path(env["DAGSTER_HOME"]) / "dagster.yaml"
    config = yaml.safe_load(path.read_text())
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(config))


@contextmanager
def fresh_deployment(tmp_path: Path, prefix: str) -> Iterator[dict[str, str]]:
    """A deployment on two fresh PostgreSQL databases (app and Dagster instance), dropped afterwards."""
    require_postgres()
    app_url = create_pg_database(f"{prefix}_app")
    dagster_url = create_pg_database(f"{prefix}_dagster")
    try:
        yield deployment_env(tmp_path, app_url, dagster_url)
    finally:
        drop_pg_database(app_url)
        drop_pg_database(dagster_url)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, str]]:
    with fresh_deployment(tmp_path, "ep_e2e") as env:
        yield env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(env, *args, cwd=REPO_ROOT, timeout=120)


# The pipeline's daemon (backfills picked up within seconds), and Dagster's own, as INTERFACE.md's
# production start names it.
PIPELINE_DAEMON = (sys.executable, "-m", "extraction_pipeline", "daemon")
DAGSTER_DAEMON = (str(Path(sys.executable).with_name("dagster-daemon")), "run")


def start_daemon(
    env: dict[str, str], log_path: Path, command: tuple[str, ...] = PIPELINE_DAEMON
) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [*command, "-w", "workspace.yaml"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_daemon(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the daemon alone, as a service manager sends it: it stops its code servers itself
    (a SIGTERM to the whole group left them behind). Whatever is left of the group is killed."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextmanager
def daemon_running(
    env: dict[str, str], log_path: Path, command: tuple[str, ...] = PIPELINE_DAEMON
) -> Iterator[subprocess.Popen[bytes]]:
    """``start_daemon`` for the length of a ``with`` block (``stop_daemon`` at its end)."""
    process = start_daemon(env, log_path, command)
    try:
        yield process
    finally:
        stop_daemon(process)


@pytest.fixture
def daemon(deployment: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``extraction-pipeline daemon`` of the deployment; its output goes to ``tmp_path / "daemon.log"``."""
    with daemon_running(deployment, tmp_path / "daemon.log") as process:
        yield process


@pytest.fixture
def dagster_daemon(deployment: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Plain ``dagster-daemon run`` (the contract's production start) of the test module's
    ``deployment`` (a module may override that fixture); output in ``tmp_path / "daemon.log"``."""
    with daemon_running(deployment, tmp_path / "daemon.log", DAGSTER_DAEMON) as process:
        yield process


def wait_for(
    predicate: Callable[[], Any],
    what: str,
    daemon: subprocess.Popen[bytes],
    log: Path,
    timeout_s: float = DEADLINE_S,
    interval_s: float = 1.0,
) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            command = " ".join(map(str, daemon.args[-5:]))
            pytest.fail(f"`{command}` exited ({daemon.returncode}):\n{log.read_text()[-4000:]}")
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-4000:]}")
