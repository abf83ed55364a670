"""A real ``extraction-pipeline serve`` on a free port, talked to over HTTP with httpx.

One server per test module (starting one costs about two seconds), on the embedded SQLite default
or on PostgreSQL with a real Dagster instance (the committed dagster.yaml, as in production).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from extraction_pipeline_tests.conftest import run_cli
from extraction_pipeline_tests.e2e.conftest import REPO_ROOT, fresh_deployment

TOKEN = "test-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def isolated_env(home: Path) -> dict[str, str]:
    """The process environment without EXTRACTION_*/DAGSTER_*, with EXTRACTION_HOME in ``home``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("EXTRACTION_", "DAGSTER_")) or key == "EXTRACTION_TEST_PG_ADMIN_URL"
    }
    env["EXTRACTION_HOME"] = str(home)
    return env


@dataclass
class Server:
    """A running ``serve``: its URL, environment and an authenticated client."""

    process: subprocess.Popen[bytes]
    url: str
    env: dict[str, str]
    log: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The CLI on the same database, blob store and instance as the server."""
        return run_cli(self.env, *args, cwd=REPO_ROOT, timeout=120)

    def blob_files(self) -> list[Path]:
        root = Path(self.env["EXTRACTION_STORAGE_URL"].removeprefix("file://"))
        return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def _python() -> list[str]:
    """The interpreter for ``serve``: under coverage when the tests measure it (pytest --cov), so the
    server's code counts; its data file lands beside the test run's, which combines it."""
    try:
        import coverage
    except ImportError:
        return [sys.executable]
    if coverage.Coverage.current() is None:
        return [sys.executable]
    return [sys.executable, "-m", "coverage", "run", "--parallel-mode", f"--rcfile={REPO_ROOT / 'pyproject.toml'}"]


def start_server(env: dict[str, str], log: Path, *extra: str, wait: bool = True) -> Server:
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*_python(), "-m", "extraction_pipeline", "serve", "--port", str(port), *extra],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process=process, url=f"http://127.0.0.1:{port}", env=env, log=log)
    if wait:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"serve exited ({process.returncode}):\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"{server.url}/healthz", timeout=2)
                break
            if time.monotonic() > deadline:
                stop_server(server)
                pytest.fail(f"serve did not answer within 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
    return server


def stop_server(server: Server) -> None:
    server.client.close()
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait()


@contextlib.contextmanager
def running_server(env: dict[str, str], log: Path, *extra: str) -> Iterator[Server]:
    server = start_server(env, log, *extra)
    try:
        yield server
    finally:
        stop_server(server)


def sqlite_env(folder: Path, **extra: str) -> dict[str, str]:
    """The embedded default (SQLite, file:// blobs) in ``folder``, no Dagster instance."""
    env = isolated_env(folder / "home")
    env.update(
        EXTRACTION_STORAGE_URL=(folder / "blobs").as_uri(),
        EXTRACTION_API_TOKEN=TOKEN,
        **extra,
    )
    return env


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per module and backend, with a 1 MiB upload limit (EXTRACTION_MAX_FILE_MB=1).

    SQLite: the embedded default, no Dagster instance. PostgreSQL: fresh app and Dagster
    databases, DAGSTER_HOME holding the committed dagster.yaml (cancel, delete and backfills use it).
    """
    folder = tmp_path_factory.mktemp(f"api_{request.param}")
    if request.param == "sqlite":
        with running_server(sqlite_env(folder, EXTRACTION_MAX_FILE_MB="1"), folder / "serve.log") as running:
            yield running
        return
    with fresh_deployment(folder, "ep_api") as env:
        env.update(EXTRACTION_API_TOKEN=TOKEN, EXTRACTION_MAX_FILE_MB="1")
        upgrade = run_cli(env, "db", "upgrade", cwd=REPO_ROOT)
        assert upgrade.returncode == 0, upgrade.stderr
        with running_server(env, folder / "serve.log") as running:
            yield running
