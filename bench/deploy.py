"""The deployment the pipeline benchmark runs on: two fresh PostgreSQL databases (the application's
and the Dagster instance's), a ``DAGSTER_HOME`` with the committed ``dagster.yaml``, a blob store,
the daemon; and uploads into it as ``extraction-pipeline upload`` makes them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import REPO, log
from bench.generate import Template

PG_ADMIN_URL = os.environ.get(
    "EXTRACTION_BENCH_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


def _admin_engine() -> Any:
    import sqlalchemy as sa

    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})


def create_database(prefix: str) -> str:
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    import sqlalchemy as sa

    engine = _admin_engine()
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    engine.dispose()


@dataclass
class Deployment:
    """A production-like deployment in a temporary folder: two databases, DAGSTER_HOME, a blob store."""

    root: Path
    app_url: str
    dagster_url: str
    env: dict[str, str]
    daemon: subprocess.Popen[bytes] | None = None
    daemon_log: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def storage_url(self) -> str:
        return self.env["EXTRACTION_STORAGE_URL"]

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "extraction_pipeline", *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start_daemon(self) -> None:
        self.daemon_log = self.root / "daemon.log"
        self.daemon = subprocess.Popen(
            [sys.executable, "-m", "extraction_pipeline", "daemon", "-w", "workspace.yaml"],
            cwd=REPO,
            env=self.env,
            stdout=self.daemon_log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop_daemon(self) -> None:
        process, self.daemon = self.daemon, None
        if process is None:
            return
        if process.poll() is None:  # SIGTERM to the daemon alone: it stops its code servers itself
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):  # whatever is left of its process group
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def check_daemon(self) -> None:
        if self.daemon is not None and self.daemon.poll() is not None:
            tail = self.daemon_log.read_text(errors="replace")[-3000:] if self.daemon_log else ""
            raise RuntimeError(f"dagster-daemon exited ({self.daemon.returncode}):\n{tail}")

    @contextmanager
    def instance(self) -> Iterator[Any]:
        import dagster as dg

        saved = os.environ.get("DAGSTER_POSTGRES_URL")
        os.environ["DAGSTER_POSTGRES_URL"] = self.dagster_url
        try:
            with dg.DagsterInstance.from_config(str(self.home)) as instance:
                yield instance
        finally:
            if saved is None:
                os.environ.pop("DAGSTER_POSTGRES_URL", None)
            else:
                os.environ["DAGSTER_POSTGRES_URL"] = saved


@contextmanager
def deployment(root: Path, overrides: dict[str, str]) -> Iterator[Deployment]:
    from extraction_pipeline.persistence import migrate

    app_url = create_database("ep_bench_app")
    dagster_url = create_database("ep_bench_dagster")
    try:
        home = root / "dagster_home"
        home.mkdir()
        shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")  # the committed production file
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EXTRACTION_", "DAGSTER_"))}
        env.update(
            DAGSTER_HOME=str(home),
            DAGSTER_POSTGRES_URL=dagster_url,
            EXTRACTION_HOME=str(root / "extraction"),
            EXTRACTION_DATABASE_URL=app_url,
            EXTRACTION_STORAGE_URL=(root / "blobs").as_uri(),
            # The backfill and the uploads cycle through a few templates: with deduplication most
            # files would have their metadata copied, not extracted, and the ratios against the raw
            # loop (which reads every file) would compare unequal work.
            EXTRACTION_DEDUPLICATE="0",
        )
        env.update(overrides)
        migrate.upgrade(app_url)
        deploy = Deployment(root, app_url, dagster_url, env, extra=overrides)
        try:
            yield deploy
        finally:
            deploy.stop_daemon()
    finally:
        from extraction_pipeline.orchestration.resources import dispose_shared_repositories

        dispose_shared_repositories()
        drop_database(app_url)
        drop_database(dagster_url)


def upload(deploy: Deployment, repository: Any, path: Path) -> int:
    """What ``extraction-pipeline upload`` does: blob first, then the row (committed on return)."""
    from extraction_pipeline.persistence.blobs import blob_store_from_url
    from extraction_pipeline.persistence.repository import NewFile

    with path.open("rb") as source:
        blob = blob_store_from_url(deploy.storage_url).put(source)
    row = repository.add_file(
        NewFile(filename=path.name, size_bytes=blob.size_bytes, sha256=blob.sha256, storage_uri=blob.uri)
    )
    return row.id


def statuses(repository: Any, ids: list[int]) -> dict[int, dict[str, Any]]:
    return {row.id: row.extraction_status or {} for row in repository.list_files(ids=ids)}


def completed_at(status: dict[str, Any]) -> float:
    return datetime.fromisoformat(status["completed_at"]).timestamp()


FINAL_STATUSES = ("succeeded", "failed", "cancelled", "skipped")


def wait_until_final(
    deploy: Deployment, repository: Any, ids: list[int], timeout_s: float, what: str
) -> dict[int, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    last_report = 0.0
    while True:
        deploy.check_daemon()
        states = statuses(repository, ids)
        done = [s for s in states.values() if s.get("status") in FINAL_STATUSES]
        if len(done) == len(ids):
            return states
        if time.monotonic() - last_report > 15:
            last_report = time.monotonic()
            log(f"{what}: {len(done)}/{len(ids)} finished")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: only {len(done)}/{len(ids)} finished after {timeout_s:.0f} s")
        time.sleep(0.5)


def upload_historic(deploy: Deployment, repository: Any, mix: list[Template]) -> list[int]:
    """Rows + blobs of ``mix``, then queued at once for a backfill (what ``backfill`` does first).

    The rows are committed in one transaction and queued right after, so the running upload
    sensor (which only takes files whose status is still null) almost never sees them; any it does
    take are extracted through the sensor path and counted in ``taken_by_sensor``.
    """
    from extraction_pipeline.persistence.blobs import blob_store_from_url
    from extraction_pipeline.persistence.models import CloudFile

    store = blob_store_from_url(deploy.storage_url)
    rows = []
    for template in mix:
        with template.path.open("rb") as source:
            blob = store.put(source)
        rows.append(
            CloudFile(
                filename=template.path.name,
                size_bytes=blob.size_bytes,
                sha256=blob.sha256,
                storage_uri=blob.uri,
            )
        )
    with repository.sessions.begin() as session:
        session.add_all(rows)
        session.flush()
        ids = [row.id for row in rows]
    return ids
