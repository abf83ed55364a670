"""The second terminal of the quick start: commands that need the Dagster instance find it alone.

``extraction-pipeline quickstart`` keeps its instance in ``$EXTRACTION_HOME/dagster``. In another
terminal in the same folder, with no DAGSTER_HOME exported, ``backfill``, ``cancel``, ``retry`` and
``daemon`` use that instance; DAGSTER_HOME still wins when set; without either they say what to
export. Real processes, real SQLite (app and instance), no mocks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from extraction_pipeline.cli.quickstart import prepare_quickstart
from extraction_pipeline.settings import Settings
from extraction_pipeline_tests.e2e.conftest import stop_daemon

KEEP = ("EXTRACTION_TEST_PG_ADMIN_URL", "EXTRACTION_CORPUS_DIR")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh terminal: nothing of this project's or Dagster's exported."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("EXTRACTION_", "DAGSTER_")) or key in KEEP
    }
    return env | extra


def terminal(folder: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "extraction_pipeline", *args],
        cwd=folder,
        env=clean_env(**extra),
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def quickstart_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder where the quick start ran: ./.extraction with the database and the instance."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    folder = tmp_path / "project"
    folder.mkdir()
    settings = Settings.from_env({"EXTRACTION_HOME": str(folder / ".extraction")})
    assert prepare_quickstart(settings, samples=False) == folder / ".extraction" / "dagster"
    return folder


def upload(folder: Path, tmp_path: Path, *names: str) -> dict[str, int]:
    for name in names:
        (tmp_path / name).write_bytes(b"%PDF-1.4\n%" + name.encode() + b"\n")
    done = terminal(folder, "upload", *(str(tmp_path / name) for name in names), "--json")
    assert done.returncode == 0, done.stderr
    return {item["filename"]: item["id"] for item in json.loads(done.stdout)}


def test_backfill_cancel_and_retry_use_the_quick_start_instance(
    quickstart_folder: Path, tmp_path: Path
) -> None:
    home = quickstart_folder / ".extraction" / "dagster"
    ids = upload(quickstart_folder, tmp_path, "a.pdf", "b.pdf")

    launched = terminal(quickstart_folder, "backfill", "--all", "--json")
    assert launched.returncode == 0, launched.stderr
    document = json.loads(launched.stdout)
    assert document["files"] == 2
    assert f"DAGSTER_HOME is not set: using the quick start's Dagster instance in {home}" in launched.stderr
    # The queued files carry the backfill's id: should the daemon never run them (the backfill
    # ended or was cancelled first), the upload sensor finds them again.
    shown = terminal(quickstart_folder, "status", str(ids["b.pdf"]), "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["extraction_status"]["backfill_id"] == document["backfill_id"], status
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_backfill(document["backfill_id"]) is not None
        assert sorted(instance.get_dynamic_partitions("cloud_files")) == sorted(str(i) for i in ids.values())
        # A run of file a that has not started yet (the daemon would launch it).
        from extraction_pipeline.definitions import defs
        from extraction_pipeline.orchestration.assets import JOB_NAME

        waiting_run = instance.create_run_for_job(
            defs.resolve_job_def(JOB_NAME), tags={"dagster/partition": str(ids["a.pdf"])}
        )

    cancelled = terminal(quickstart_folder, "cancel", str(ids["a.pdf"]), "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    result = json.loads(cancelled.stdout)
    assert result["cancelled"] == [ids["a.pdf"]]
    assert result["terminated_runs"] == [waiting_run.run_id]  # through the quick start's instance
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_run_by_id(waiting_run.run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.CANCELED

    again = terminal(quickstart_folder, "cancel", str(ids["a.pdf"]))
    assert again.returncode == 1
    assert again.stderr.strip().endswith(f"file {ids['a.pdf']} is cancelled: nothing to cancel")

    retried = terminal(quickstart_folder, "retry", str(ids["a.pdf"]), "--json")
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["requeued"] == [ids["a.pdf"]]


def test_dagster_home_wins_over_the_quick_start_instance(quickstart_folder: Path, tmp_path: Path) -> None:
    upload(quickstart_folder, tmp_path, "a.pdf")
    other = tmp_path / "other-instance"
    other.mkdir()
    launched = terminal(quickstart_folder, "backfill", "--all", "--json", DAGSTER_HOME=str(other))
    assert launched.returncode == 0, launched.stderr
    backfill_id = json.loads(launched.stdout)["backfill_id"]
    assert "quick start" not in launched.stderr
    with dg.DagsterInstance.from_config(str(other)) as instance:
        assert instance.get_backfill(backfill_id) is not None
    with dg.DagsterInstance.from_config(str(quickstart_folder / ".extraction" / "dagster")) as instance:
        assert instance.get_backfill(backfill_id) is None


@pytest.mark.parametrize(
    "command", [["backfill", "--all"], ["daemon", "-m", "extraction_pipeline.definitions"]]
)
def test_without_any_instance_the_command_says_what_to_export(tmp_path: Path, command: list[str]) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = terminal(elsewhere, *command)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: DAGSTER_HOME is not set")
    assert str(elsewhere / ".extraction" / "dagster") in lines[0]
    assert "export DAGSTER_HOME=" in lines[0]
    assert not (elsewhere / ".extraction" / "dagster").exists()


def test_a_quick_start_folder_without_its_dagster_yaml_is_no_instance(quickstart_folder: Path) -> None:
    (quickstart_folder / ".extraction" / "dagster" / "dagster.yaml").unlink()
    done = terminal(quickstart_folder, "backfill", "--all")
    assert done.returncode == 2 and "export DAGSTER_HOME=" in done.stderr


@pytest.mark.slow
def test_the_daemon_runs_on_the_quick_start_instance(quickstart_folder: Path, tmp_path: Path) -> None:
    home = quickstart_folder / ".extraction" / "dagster"
    log = tmp_path / "daemon.log"
    with log.open("wb") as output:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "extraction_pipeline", "daemon", "-m", "extraction_pipeline.definitions"],
            cwd=quickstart_folder,
            env=clean_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        beating: dict = {}
        # Each of Dagster's daemons writes its own heartbeat, a few seconds apart: wait for ours.
        while time.monotonic() < deadline and not {"BACKFILL", "SENSOR"} <= set(beating):
            assert daemon.poll() is None, log.read_text()[-4000:]
            with dg.DagsterInstance.from_config(str(home)) as instance:
                beating = instance.get_daemon_heartbeats()
            time.sleep(1)
        assert beating, f"no daemon heartbeat in {home}:\n{log.read_text()[-4000:]}"
        assert "BACKFILL" in beating and "SENSOR" in beating
    finally:
        stop_daemon(daemon)
    assert f"DAGSTER_HOME is not set: using the quick start's Dagster instance in {home}" in log.read_text()
