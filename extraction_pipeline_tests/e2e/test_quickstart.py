"""The first quick-start command end to end: ``extraction-pipeline quickstart`` on the embedded default.

Started outside the repository, it must create the SQLite default, serve the UI, run the daemon
that extracts the generated samples without a click and picks a backfill up within seconds, and
stop both processes when told to.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import dagster as dg
import psutil
import pytest

from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline_tests.e2e.conftest import wait_for

pytestmark = [pytest.mark.slow]

SAMPLES = {"bracket.step", "building.ifc", "plant-room.dxf", "specification.pdf"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def quickstart_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXTRACTION_", "DAGSTER_"))}
    return {**env, "EXTRACTION_HOME": str(home)}


def command_line(child: psutil.Process) -> str:
    """A child's command line; a run worker may end (or be a zombie) while the tree is read."""
    try:
        return " ".join(child.cmdline())
    except psutil.Error:
        return ""


def ui_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def test_quickstart_extracts_the_samples_serves_the_ui_and_stops_cleanly(tmp_path: Path) -> None:
    home, port, log = tmp_path / "home", free_port(), tmp_path / "quickstart.log"
    env = quickstart_env(home)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "extraction_pipeline", "quickstart", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    repository = None
    try:
        wait_for(lambda: (home / "extraction.db").exists(), "the embedded database", process, log)
        repository = CloudFileRepository.from_url(f"sqlite:///{home / 'extraction.db'}")

        def jobs_succeeded(count: int) -> bool:
            rows = repository.list_files()
            return {r.filename for r in rows} == SAMPLES and all(
                [j.status for j in repository.jobs_for(r.id)] == ["succeeded"] * count for r in rows
            )

        wait_for(lambda: jobs_succeeded(1), "the samples to be extracted", process, log)
        wait_for(lambda: ui_answers(port), "the UI", process, log)
        pdf = next(r for r in repository.list_files() if r.filename == "specification.pdf")
        assert repository.metadata_for(pdf.id).metadata_["page_count"] == 2

        # A backfill of every file, through the quick start's daemon: picked up within seconds.
        dagster_home = home / "dagster"
        backfill = subprocess.run(
            [sys.executable, "-m", "extraction_pipeline", "backfill", "--all", "--json"],
            cwd=tmp_path,
            env={**env, "DAGSTER_HOME": str(dagster_home)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert backfill.returncode == 0, backfill.stderr
        document = json.loads(backfill.stdout)
        assert document["files"] == 4
        wait_for(lambda: jobs_succeeded(2), "the backfill", process, log)
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            created = instance.get_backfill(document["backfill_id"]).backfill_timestamp
            runs = instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": document["backfill_id"]}))
        waited = min(r.create_timestamp.timestamp() for r in runs) - created
        assert waited < 10, f"the daemon picked the backfill up after {waited:.1f} s"

        commands = [command_line(c) for c in psutil.Process(process.pid).children(recursive=True)]
        assert any("extraction_pipeline daemon" in c for c in commands), commands
        assert any("dagster_webserver" in c for c in commands), commands
        children = psutil.Process(process.pid).children(recursive=True)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
        assert process.wait(timeout=90) == 0
        _, alive = psutil.wait_procs(children, timeout=30)
        assert alive == [], f"left running: {[command_line(p) for p in alive]}"
        assert not ui_answers(port)
    finally:
        if repository is not None:
            repository.dispose()
        if process.poll() is None:  # a failed check: kill the whole tree (the children have their own groups)
            for child in psutil.Process(process.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.kill()
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_quickstart_refuses_a_port_in_use_before_creating_anything(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "extraction_pipeline", "quickstart", "--port", str(port)],
            cwd=tmp_path,
            env=quickstart_env(home),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 2
    assert f"127.0.0.1:{port} is in use" in result.stderr
    assert not home.exists()
