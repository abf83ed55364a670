"""``extraction-pipeline daemon``: Dagster's backfill daemon, iterating every EXTRACTION_BACKFILL_POLL_S.

The end-to-end check (a second backfill gets its run within seconds, where ``dagster-daemon run``
takes 30 s) is in ``e2e/test_daemon.py``; here the pieces, in-process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from extraction_pipeline.orchestration import daemon as pipeline_daemon

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def restore_dagster_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a test installs into Dagster's daemon module is undone afterwards."""
    import dagster._daemon.daemon as module

    monkeypatch.setattr(module, "execute_backfill_iteration_loop", module.execute_backfill_iteration_loop)
    monkeypatch.setattr(module, "execute_sensor_iteration_loop", module.execute_sensor_iteration_loop)


def test_paced_waits_return_after_the_poll_interval_and_at_once_on_shutdown() -> None:
    event = threading.Event()
    paced = pipeline_daemon.PacedWaits(event, poll_s=0.2)
    started = time.monotonic()
    assert paced.wait(30) is False
    assert time.monotonic() - started < 5  # the 0.2 s poll, not Dagster's 30 s
    threading.Timer(0.1, paced.set).start()
    started = time.monotonic()
    assert pipeline_daemon.PacedWaits(event, poll_s=60).wait(60) is True  # the real event is set
    assert time.monotonic() - started < 5  # woken by the shutdown, not after 60 s
    assert event.is_set() and paced.is_set()


class RecordingEvent(threading.Event):
    """A real event that remembers how long each wait was asked to last (and returns at once)."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.timeouts.append(timeout)
        return False


def test_a_long_iteration_gets_a_proportionally_longer_pause_never_longer_than_dagsters() -> None:
    now = [1000.0]
    event = RecordingEvent()
    paced = pipeline_daemon.PacedWaits(event, poll_s=2, busy_factor=4, clock=lambda: now[0])
    for iteration_s in (3.0, 0.01, 0.5, 10.0, 0.01):
        now[0] += iteration_s
        paced.wait(max(0.0, 30 - iteration_s))  # what Dagster's loop asks for after an iteration
    # the first iteration counts too; idle: the poll interval; 0.5 s: still 2 s; 10 s: Dagster's 20 s
    assert event.timeouts == [12.0, 2, 2, 20.0, 2]


def test_work_done_in_the_backfill_thread_pool_lengthens_the_next_pause() -> None:
    """With ``backfills: use_threads`` (dagster.yaml) an iteration only hands backfills to a pool."""
    from concurrent.futures import ThreadPoolExecutor

    now = [1000.0]
    event = RecordingEvent()
    paced = pipeline_daemon.PacedWaits(event, poll_s=2, busy_factor=4, clock=lambda: now[0])

    def bookkeeping(seconds: float) -> str:
        now[0] += seconds
        return "done"

    with ThreadPoolExecutor(max_workers=1) as pool:
        timed = paced.timed(pool)
        assert timed.submit(bookkeeping, 5.0).result() == "done"
        paced.wait(30)  # after 5 s of pool work: 20 s
        paced.wait(30)  # nothing ran since: the poll interval
        assert timed.submit(bookkeeping, 9.0).result() == "done"
        paced.wait(25)  # never longer than Dagster asked
    assert event.timeouts == [20.0, 2, 25]


def iterations_within(seconds: float, daemon_class_name: str = "BackfillDaemon") -> int:
    """How many iterations the backfill (or sensor) daemon of this process starts in ``seconds``."""
    import dagster._daemon.daemon as daemons
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.workspace.load_target import EmptyWorkspaceTarget
    from dagster._daemon.daemon import SpanMarker

    daemon_class = getattr(daemons, daemon_class_name)
    shutdown = threading.Event()
    timer = threading.Timer(seconds, shutdown.set)
    count = 0
    with (
        dg.instance_for_test() as instance,
        create_test_daemon_workspace_context(EmptyWorkspaceTarget(), instance) as context,
        daemon_class(settings={"use_threads": True, "num_workers": 2}) as daemon,  # dagster.yaml
    ):
        loop = daemon.core_loop(context, shutdown)
        timer.start()
        try:
            while not shutdown.is_set():
                if next(loop) is SpanMarker.START_SPAN:
                    count += 1
        finally:
            timer.cancel()
            loop.close()
    return count


def test_the_backfill_daemon_iterates_every_poll_interval(restore_dagster_loop: None) -> None:
    assert pipeline_daemon.install_backfill_poll(0.3) is True
    assert pipeline_daemon.installed_poll_s() == 0.3
    # Dagster's own loop iterates once, then waits 30 s; ours again after each 0.3 s pause.
    assert iterations_within(3.0) >= 3


def test_the_sensor_daemon_wakes_every_poll_interval(restore_dagster_loop: None) -> None:
    # Dagster's own sensor loop: one iteration per 5 s, so at most 2 in 6 s.
    assert iterations_within(6.0, "SensorDaemon") <= 2
    assert pipeline_daemon.install_sensor_poll(0.5) is True
    assert pipeline_daemon.installed_pace_s("execute_sensor_iteration_loop") == 0.5
    assert iterations_within(6.0, "SensorDaemon") >= 6


def test_installing_twice_wraps_dagster_loop_once(restore_dagster_loop: None) -> None:
    import dagster._daemon.daemon as module

    original = module.execute_backfill_iteration_loop
    pipeline_daemon.install_backfill_poll(5)
    pipeline_daemon.install_backfill_poll(1)
    assert module.execute_backfill_iteration_loop.dagster_loop is original
    assert pipeline_daemon.installed_poll_s() == 1


def run_daemon_command(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("EXTRACTION_", "DAGSTER_HOME"))}
    return subprocess.run(
        [sys.executable, "-m", "extraction_pipeline", "daemon", *args],
        env={**environ, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_daemon_command_needs_a_dagster_home(tmp_path: Path) -> None:
    # No DAGSTER_HOME and no quick start instance ($EXTRACTION_HOME/dagster) to fall back on.
    result = run_daemon_command("-w", "workspace.yaml", EXTRACTION_HOME=str(tmp_path / "no-quickstart"))
    assert result.returncode == 2
    assert "DAGSTER_HOME is not set" in result.stderr and "export DAGSTER_HOME=" in result.stderr


def test_daemon_command_rejects_a_bad_option_or_dagster_home_in_one_line(tmp_path: Path) -> None:
    result = run_daemon_command("--no-such-option", DAGSTER_HOME=str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == "error: No such option '--no-such-option'."
    result = run_daemon_command("-w", "workspace.yaml", DAGSTER_HOME=str(tmp_path / "missing"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: DAGSTER_HOME=") and "is not a folder" in result.stderr


def test_daemon_command_rejects_a_bad_poll_interval(tmp_path: Path) -> None:
    result = run_daemon_command(
        "-w", "workspace.yaml", DAGSTER_HOME=str(tmp_path), EXTRACTION_BACKFILL_POLL_S="0"
    )
    assert result.returncode == 2
    assert result.stderr == (
        "error: bad settings: EXTRACTION_BACKFILL_POLL_S must be a finite number from 0.5 to 30, got '0'\n"
    )
    for value in ("soon", "31", "nan"):
        result = run_daemon_command(DAGSTER_HOME=str(tmp_path), EXTRACTION_BACKFILL_POLL_S=value)
        assert result.returncode == 2
        expected = f"EXTRACTION_BACKFILL_POLL_S must be a finite number from 0.5 to 30, got {value!r}"
        assert expected in result.stderr


def test_daemon_command_help_names_the_poll_setting_and_dagster_options() -> None:
    result = run_daemon_command("--help")
    assert result.returncode == 0, result.stderr
    assert "EXTRACTION_BACKFILL_POLL_S" in result.stdout
    assert "--workspace" in result.stdout  # dagster-daemon run's own options follow
