"""A database outage in the middle of a backfill: PostgreSQL stopped for 30 s, then started again.

The test runs its own, private PostgreSQL cluster (initdb + pg_ctl on a free port), so stopping it
disturbs nobody else's tests. 200 small PDFs are uploaded, ``extraction-pipeline backfill`` queues
them and a real ``dagster-daemon`` runs the backfill in batches; once some files are done, the
server is stopped for 30 s and started again. Every file must end ``succeeded`` with exactly one
succeeded job and one metadata row, and nothing may be recorded as a permanent failure.

Twice. ``one_server``: one server holds both the app database and the Dagster instance. Run
workers in flight die on Dagster's own event writes, runs dequeued meanwhile stay STARTING; run
monitoring fails them (start timeout) and run retries re-execute them, and the retried runs skip
the files their parent already finished (run-group bookkeeping), so no file is extracted twice.
``app_database_only``: the Dagster instance stays up; the steps meet ``database_unavailable`` and
their RetryPolicy retries them with exponential backoff until the server is back. Every Dagster run
must have ended before the final count.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from extraction_pipeline.persistence.blobs import blob_store_from_url
from extraction_pipeline.persistence.repository import CloudFileRepository, NewFile
from extraction_pipeline_tests.conftest import create_pg_database, drop_pg_database, require_postgres
from extraction_pipeline_tests.e2e.conftest import (
    cli,
    deployment_env,
    patch_instance_yaml,
    start_daemon,
    stop_daemon,
    wait_for,
)
from extraction_pipeline_tests.orchestration.conftest import make_pdf

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

FILES = 200
OUTAGE_S = 30
DEADLINE_S = 420


def _postgres_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrivatePostgres:
    """A throw-away PostgreSQL cluster that only this test uses (and may stop)."""

    bin: Path
    data: Path
    port: int
    as_user: list[str]

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.as_user, *args], capture_output=True, text=True, timeout=timeout, cwd="/"
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {result.stdout}\n{result.stderr}")
        return result

    def start(self) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k {self.data} -c fsync=off -c max_connections=200"
        self._run(
            str(self.bin / "pg_ctl"), "start", "-w", "-D", str(self.data / "db"),
            "-l", str(self.data / "server.log"), "-o", options,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.data / "db"))

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        engine = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    binaries = _postgres_bin()
    if binaries is None:
        message = "initdb/pg_ctl not found (install the PostgreSQL server package)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    data = Path(tempfile.mkdtemp(prefix="ep-private-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(data, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    server = PrivatePostgres(bin=binaries, data=data, port=_free_port(), as_user=as_user)
    server._run(
        str(binaries / "initdb"), "-D", str(data / "db"), "-U", "postgres", "--auth=trust",
        "--no-sync", "-E", "UTF8",
    )  # fmt: skip
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(RuntimeError):  # already stopped
            server.stop("immediate")
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(params=["one_server", "app_database_only"])
def outage_scope(request: pytest.FixtureRequest) -> str:
    """What the stopped server holds: the app tables and the Dagster instance, or the app tables only."""
    return str(request.param)


@pytest.fixture
def deployment(
    private_postgres: PrivatePostgres, outage_scope: str, tmp_path: Path
) -> Iterator[dict[str, str]]:
    shared_dagster_url = None
    if outage_scope == "one_server":
        dagster_url = private_postgres.create_database("dagster")
    else:  # the Dagster instance stays up on the shared server
        require_postgres()
        dagster_url = shared_dagster_url = create_pg_database("ep_outage_dagster")
    env = deployment_env(tmp_path, private_postgres.create_database("app"), dagster_url)
    env.update(
        # Exponential backoff 1, 2, 4, 8, ... s (+-jitter): the retries span well over 30 s.
        EXTRACTION_RETRY_DELAY_S="1",
        EXTRACTION_MAX_RETRIES="8",
        EXTRACTION_BACKFILL_BATCH_SIZE="25",
    )
    # Runs dequeued during the outage stay STARTING until run monitoring's start timeout fails them
    # (then run retries take over): 30 s here instead of production's 180 s keeps the test short.
    patch_instance_yaml(env, run_monitoring={"start_timeout_seconds": 30, "poll_interval_seconds": 5})
    try:
        yield env
    finally:
        if shared_dagster_url:
            drop_pg_database(shared_dagster_url)


def _tail(path: Path, chars: int = 6000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def _statuses(repository: CloudFileRepository) -> dict[int, str]:
    """Status of every file, or {} while the database is unreachable."""
    try:
        return {
            row.id: (row.extraction_status or {}).get("status", "pending") for row in repository.list_files()
        }
    except Exception:  # noqa: BLE001 - the server is down on purpose
        return {}


def test_a_30_second_database_outage_during_a_backfill_loses_nothing(
    deployment: dict[str, str],
    private_postgres: PrivatePostgres,
    outage_scope: str,
    tmp_path: Path,
) -> None:
    upgrade = cli(deployment, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    repository = CloudFileRepository.from_url(deployment["EXTRACTION_DATABASE_URL"])
    store = blob_store_from_url(deployment["EXTRACTION_STORAGE_URL"])
    pages: dict[int, int] = {}
    for number in range(FILES):  # historic files, uploaded before the pipeline ran
        blob = store.put(io.BytesIO(make_pdf(pages=1 + number % 3, text=f"file {number}")))
        row = repository.add_file(
            NewFile(
                filename=f"historic {number}.pdf",
                size_bytes=blob.size_bytes,
                sha256=blob.sha256,
                storage_uri=blob.uri,
            )
        )
        pages[row.id] = 1 + number % 3
    launched = cli(deployment, "backfill", "--status", "pending", "--json")
    assert launched.returncode == 0, launched.stderr
    assert json.loads(launched.stdout)["files"] == FILES

    log = tmp_path / "daemon.log"
    process = start_daemon(deployment, log)

    def wait(predicate: Callable[[], Any], what: str) -> Any:
        return wait_for(predicate, what, process, log, timeout_s=DEADLINE_S, interval_s=0.5)

    try:
        # Stop the server in the middle: some files finished, most still to do.
        done_before = wait(
            lambda: sum(s == "succeeded" for s in _statuses(repository).values()) >= 20 or None,
            "the backfill to get going",
        )
        assert done_before
        before = _summary(_statuses(repository))
        private_postgres.stop("fast")
        outage_started = time.monotonic()
        time.sleep(OUTAGE_S)
        private_postgres.start()
        outage_s = time.monotonic() - outage_started
        assert outage_s >= OUTAGE_S

        states = wait(
            lambda: (
                (s := _statuses(repository))
                and all(v in ("succeeded", "failed", "cancelled") for v in s.values())
                and s
            ),
            "every file to finish after the outage",
        )
        assert process.poll() is None  # the daemon survived the outage
        # Runs failed by the outage are retried by Dagster (run retries): let them all end, then check
        # that no retried run extracted a file a second time.
        dagster_db = sa.create_engine(deployment["DAGSTER_POSTGRES_URL"])

        def runs_settled() -> bool:
            active = "('QUEUED', 'NOT_STARTED', 'STARTING', 'STARTED', 'CANCELING')"
            with dagster_db.connect() as conn:
                return not conn.execute(
                    sa.text(f"SELECT count(*) FROM runs WHERE status IN {active}")
                ).scalar()

        wait(runs_settled, "the Dagster runs to end")
        with dagster_db.connect() as conn:
            retried_runs = conn.execute(
                sa.text("SELECT count(*) FROM run_tags WHERE key = 'dagster/parent_run_id'")
            ).scalar()
        dagster_db.dispose()
        states = _statuses(repository)
        print(f"before the outage: {before}; after: {_summary(states)}; outage {outage_s:.1f} s")
        assert len(states) == FILES
        assert _summary(states) == {"succeeded": FILES}, _tail(log)

        engine = sa.create_engine(deployment["EXTRACTION_DATABASE_URL"])
        with engine.connect() as conn:
            jobs = conn.execute(
                sa.text("SELECT cloud_file_id, status, error_kind, error_code FROM extraction_jobs")
            ).all()
            metadata = dict(
                conn.execute(
                    sa.text("SELECT cloud_file_id, (metadata->>'page_count')::int FROM cloud_file_metadata")
                ).all()
            )
        engine.dispose()
        succeeded: dict[int, int] = {}
        for file_id, status, _, _ in jobs:
            if status == "succeeded":
                succeeded[file_id] = succeeded.get(file_id, 0) + 1
        assert succeeded == {file_id: 1 for file_id in pages}  # every file extracted once, none twice
        assert metadata == pages  # no metadata row lost, each with the right figures
        errors = {(status, kind, code) for _, status, kind, code in jobs if kind is not None}
        assert all(kind == "transient" for _, kind, _ in errors), errors  # nothing recorded as permanent
        assert not [
            job for job in jobs if job[1] in ("running", "retrying", "extracted")
        ]  # no dangling attempt

        # What the outage did to Dagster: failed/retried runs and step retries (printed for the README).
        engine = sa.create_engine(deployment["DAGSTER_POSTGRES_URL"])
        with engine.connect() as conn:
            runs = dict(conn.execute(sa.text("SELECT status, count(*) FROM runs GROUP BY status")).all())
            events = dict(
                conn.execute(
                    sa.text(
                        "SELECT dagster_event_type, count(*) FROM event_logs WHERE dagster_event_type IN "
                        "('STEP_UP_FOR_RETRY', 'RUN_FAILURE', 'STEP_FAILURE') GROUP BY dagster_event_type"
                    )
                ).all()
            )
        engine.dispose()
        attempts: dict[str, int] = {}
        for _, status, _, code in jobs:
            attempts[f"{status}/{code}" if code else status] = (
                attempts.get(f"{status}/{code}" if code else status, 0) + 1
            )
        print(f"job rows: {attempts}; dagster runs: {runs} ({retried_runs} retried); events: {events}")
        if outage_scope == "one_server":
            # Run workers die on Dagster's own event writes: Dagster's run retries take over.
            assert retried_runs >= 1
        else:
            # The steps meet database_unavailable and their RetryPolicy retries them with backoff
            # until the server is back: no run has to fail and be retried as a whole.
            assert events.get("STEP_UP_FOR_RETRY", 0) >= 1
            assert retried_runs == 0 and runs.get("FAILURE", 0) == 0, runs
    finally:
        stop_daemon(process)
        repository.dispose()


def _summary(states: dict[int, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state in states.values():
        counts[state] = counts.get(state, 0) + 1
    return counts
