"""The first quick-start command end to end: ``extraction-pipeline quickstart`` on the embedded default.

Started outside the repository with nothing exported, it must create the SQLite default in
``./.extraction``, serve the UI, run the daemon that extracts the generated samples (one per format,
DWG included) without a click, keep its terminal quiet, and stop both processes when told to. A
second terminal in the same folder, again with nothing exported, must reach the same instance:
``backfill --all`` (picked up within seconds), ``cancel`` and ``retry``.
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

SAMPLES = {"bracket.step", "building.ifc", "plant-room.dxf", "plant-room.dwg", "specification.pdf"}
# What must not fill a newcomer's terminal (Dagster's DEBUG events, a line per sensor tick, code
# server heartbeats, OpenCascade's transfer banner).
NOISE = (" - DEBUG - ", "Checking for new runs", "No heartbeat received", "Statistics on Transfer", "*****")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def quickstart_env(home: Path | None = None) -> dict[str, str]:
    """The environment of a new user: no EXTRACTION_* or DAGSTER_* variable (but EXTRACTION_HOME if given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXTRACTION_", "DAGSTER_"))}
    return env if home is None else {**env, "EXTRACTION_HOME": str(home)}


def second_terminal(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A command typed in another terminal in the quick start's folder, nothing exported."""
    return subprocess.run(
        [sys.executable, "-m", "extraction_pipeline", *args],
        cwd=folder,
        env=quickstart_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


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
    home, port, log = tmp_path / ".extraction", free_port(), tmp_path / "quickstart.log"
    # The only variable set: fault injection, so that a file that hangs can be cancelled below.
    env = {**quickstart_env(), "EXTRACTION_FAULT_INJECTION": "1"}
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

        def samples_succeeded(count: int) -> bool:
            rows = [r for r in repository.list_files() if r.filename in SAMPLES]
            return {r.filename for r in rows} == SAMPLES and all(
                [j.status for j in repository.jobs_for(r.id)] == ["succeeded"] * count for r in rows
            )

        wait_for(lambda: samples_succeeded(1), "the samples to be extracted", process, log)
        wait_for(lambda: ui_answers(port), "the UI", process, log)
        by_name = {r.filename: r for r in repository.list_files()}
        assert repository.metadata_for(by_name["specification.pdf"].id).metadata_["page_count"] == 2
        dwg = repository.metadata_for(by_name["plant-room.dwg"].id).metadata_
        assert dwg["content_readable"] and {"WALLS", "EQUIPMENT", "TITLE"} <= set(dwg["layer_names"])

        # A second terminal, nothing exported: a backfill of every file through the quick start's
        # daemon, picked up within seconds.
        backfill = second_terminal(tmp_path, "backfill", "--all", "--json")
        assert backfill.returncode == 0, backfill.stderr
        document = json.loads(backfill.stdout)
        assert document["files"] == len(SAMPLES)
        wait_for(lambda: samples_succeeded(2), "the backfill", process, log)
        with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
            created = instance.get_backfill(document["backfill_id"]).backfill_timestamp
            runs = instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": document["backfill_id"]}))
        waited = min(r.create_timestamp.timestamp() for r in runs) - created
        assert waited < 10, f"the daemon picked the backfill up after {waited:.1f} s"

        # Cancel a file while it is extracted (it hangs), then queue it again: same terminal.
        hang = tmp_path / "hangs.pdf"
        hang.write_bytes(b"EXTRACTION-FAULT:hang\n%PDF-1.4\n")
        uploaded = second_terminal(tmp_path, "upload", str(hang), "--json")
        assert uploaded.returncode == 0, uploaded.stderr
        hang_id = json.loads(uploaded.stdout)[0]["id"]

        def state(file_id: int) -> str | None:
            row = repository.get_file(file_id)
            return (row.extraction_status or {}).get("status") if row is not None else None

        wait_for(lambda: state(hang_id) == "running", "the hanging file to run", process, log)
        cancelled = second_terminal(tmp_path, "cancel", str(hang_id), "--json")
        assert cancelled.returncode == 0, cancelled.stderr
        assert json.loads(cancelled.stdout)["terminated_runs"], cancelled.stdout
        wait_for(lambda: state(hang_id) == "cancelled", "the file to end cancelled", process, log)
        retried = second_terminal(tmp_path, "retry", str(hang_id), "--json")
        assert retried.returncode == 0, retried.stderr
        assert json.loads(retried.stdout)["requeued"] == [hang_id]
        wait_for(lambda: state(hang_id) == "running", "the retried file to run again", process, log)
        assert second_terminal(tmp_path, "cancel", str(hang_id)).returncode == 0
        wait_for(lambda: state(hang_id) == "cancelled", "the file to be cancelled again", process, log)

        # A quiet terminal: the runs' own lines, not Dagster's chatter.
        output = log.read_text(errors="replace")
        assert "extracted 1 file(s)" in output
        assert [line for line in output.splitlines() if any(n in line for n in NOISE)] == []

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
