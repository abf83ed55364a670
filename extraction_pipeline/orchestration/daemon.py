"""The pipeline's daemon: Dagster's ``dagster-daemon run``, with backfills picked up within seconds
and sensors ticking every second.

Dagster's backfill daemon looks for new backfills every 30 s, and its sensor daemon wakes every 5 s:
constants of Dagster's (1.13), not settings. A 300-file backfill that the runs finish in 16 s then
waited 28.7 s for its first run (``bench/run.py --quick``), and an upload waited 0-5 s (2.5 s on
average) for the sensor tick that requests its run, nearly half of its latency.
``extraction-pipeline daemon`` runs the very same daemon process with one difference: the backfill
daemon pauses ``EXTRACTION_BACKFILL_POLL_S`` between two iterations and the sensor daemon
``EXTRACTION_SENSOR_POLL_S`` (both longer after long work, see :class:`PacedWaits`). Dagster's loops
pause by waiting on the daemon's shutdown event; they get an event whose waits are shorter.
Everything else (what an iteration does, how it submits runs, cancels, retries and heartbeats)
stays Dagster's, and a backfill launched from the UI profits alike. Each sensor still ticks at most
once per its ``minimum_interval_seconds`` (the upload sensor: ``EXTRACTION_SENSOR_INTERVAL_S``).

The run queue, monitoring and run-retry daemons keep their own intervals (``dagster.yaml``). The
Dagster internals this needs (where the loops live, the ``dagster-daemon run`` command) are reached
through ``dagster_internals.py``, like every other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from typing import Any

from extraction_pipeline.orchestration import dagster_internals


class PacedWaits:
    """A shutdown event whose ``wait`` lasts ``poll_s``, or ``busy_factor`` x the last work if longer.

    Dagster's backfill loop iterates, then waits on its shutdown event for 30 s minus the iteration.
    The work of an iteration is either done in the loop (the time between two waits) or, with
    ``backfills: use_threads`` (the default), in a thread pool whose tasks :meth:`timed` measures.
    Pausing ``busy_factor`` times the longest recent work keeps the bookkeeping of a huge backfill
    (seconds per pass) to a fifth of the daemon's time, and never busier than Dagster's own loop
    (a wait never exceeds what Dagster asked for); an idle daemon looks again after ``poll_s``.
    Setting and reading the event act on the real one, so a shutdown still ends a wait at once.
    """

    def __init__(
        self,
        event: threading.Event,
        poll_s: float,
        busy_factor: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._event = event
        self.poll_s = poll_s
        self.busy_factor = busy_factor
        self._clock = clock
        self._lock = threading.Lock()
        self._last_wait_end = clock()  # the loop's first iteration starts now
        self._work_s = 0.0  # longest pool task finished since the last pause

    def record_work(self, seconds: float) -> None:
        with self._lock:
            self._work_s = max(self._work_s, seconds)

    def timed(self, executor: Executor) -> TimedExecutor:
        return TimedExecutor(executor, self)

    def pause_s(self, requested: float | None) -> float:
        """How long the next wait lasts, given what the loop asked for."""
        with self._lock:
            work, self._work_s = self._work_s, 0.0
        iteration = max(0.0, self._clock() - self._last_wait_end)
        pause = max(self.poll_s, self.busy_factor * max(iteration, work))
        return pause if requested is None else min(requested, pause)

    def wait(self, timeout: float | None = None) -> bool:
        try:
            return self._event.wait(self.pause_s(timeout))
        finally:
            self._last_wait_end = self._clock()

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()


class TimedExecutor:
    """The backfill daemon's thread pool, telling :class:`PacedWaits` how long each task took."""

    def __init__(self, executor: Executor, paced: PacedWaits) -> None:
        self._executor = executor
        self._paced = paced

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        clock = self._paced._clock

        def timed_task() -> Any:
            started = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                self._paced.record_work(clock() - started)

        return self._executor.submit(timed_task)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._executor, name)


# How much longer than the last work a loop pauses (``PacedWaits.busy_factor``). The backfill loop's
# bookkeeping of a huge backfill takes seconds: it gets at most a fifth of the daemon's time. A sensor
# tick that took 1 s (the alert sensors' first ticks, a burst of uploads) must not hold the next
# upload's tick back for 4 s: the sensor loop pauses as long as the work took, at least ``poll_s``.
BUSY_FACTORS = {
    dagster_internals.BACKFILL_LOOP_NAME: 4.0,
    dagster_internals.SENSOR_LOOP_NAME: 1.0,
}


def install_loop_pace(name: str, poll_s: float) -> bool:
    """Make this process's daemon loop ``name`` (``dagster_internals.DAEMON_LOOP_NAMES``) pause
    ``poll_s`` seconds between iterations (see :class:`PacedWaits` and ``BUSY_FACTORS``).

    Returns False, changing nothing, when this Dagster has no such loop to wrap (another version):
    the daemon then runs with Dagster's own pause.
    """
    loop = dagster_internals.daemon_loop(name)
    if loop is None:
        return False
    original = getattr(loop, "dagster_loop", loop)

    def paced_loop(context: Any, logger: Any, shutdown_event: Any, *args: Any, **kwargs: Any) -> Any:
        paced = PacedWaits(shutdown_event, poll_s, busy_factor=BUSY_FACTORS.get(name, 4.0))
        if kwargs.get("threadpool_executor") is not None:
            kwargs["threadpool_executor"] = paced.timed(kwargs["threadpool_executor"])
        return original(context, logger, paced, *args, **kwargs)

    paced_loop.dagster_loop = original  # type: ignore[attr-defined]  # installing twice wraps once
    paced_loop.poll_s = poll_s  # type: ignore[attr-defined]
    return dagster_internals.replace_daemon_loop(name, paced_loop)


def installed_pace_s(name: str) -> float | None:
    """The pause installed by :func:`install_loop_pace` for loop ``name``, None for Dagster's own."""
    return getattr(dagster_internals.daemon_loop(name), "poll_s", None)


def install_backfill_poll(poll_s: float) -> bool:
    """The backfill daemon looks for new backfills every ``poll_s`` s (Dagster: 30 s)."""
    return install_loop_pace(dagster_internals.BACKFILL_LOOP_NAME, poll_s)


def install_sensor_poll(poll_s: float) -> bool:
    """The sensor daemon wakes every ``poll_s`` s (Dagster: 5 s); each sensor still ticks at most
    once per its ``minimum_interval_seconds``."""
    return install_loop_pace(dagster_internals.SENSOR_LOOP_NAME, poll_s)


def installed_poll_s() -> float | None:
    """The backfill daemon's installed pause (None: Dagster's own)."""
    return installed_pace_s(dagster_internals.BACKFILL_LOOP_NAME)


def check_dagster_daemon_args(args: Sequence[str]) -> None:
    """Parse ``dagster-daemon run ARGS`` without running it: a bad option raises ``click.UsageError``
    before anything slow (the doctor's checks) happens."""
    run_command = dagster_internals.dagster_daemon_run_command()
    run_command.make_context("extraction-pipeline daemon", list(args))


def run_dagster_daemon(args: Sequence[str], poll_s: float, sensor_poll_s: float | None = None) -> int:
    """``dagster-daemon run ARGS`` in this process, its backfill daemon polling every ``poll_s`` s
    and its sensor daemon every ``sensor_poll_s`` s (None: Dagster's 5 s).

    Returns the exit code; a bad option raises ``click.UsageError`` (the caller reports it).
    """
    import logging

    run_command = dagster_internals.dagster_daemon_run_command()
    paces = {dagster_internals.BACKFILL_LOOP_NAME: ("backfills are picked up", poll_s)}
    if sensor_poll_s is not None:
        paces[dagster_internals.SENSOR_LOOP_NAME] = ("sensors tick", sensor_poll_s)
    for name, (what, seconds) in paces.items():
        if not install_loop_pace(name, seconds):
            logging.getLogger(__name__).warning(
                "this Dagster version has no %s.%s: %s at Dagster's own pace",
                dagster_internals.DAEMON_LOOP_MODULE,
                name,
                what,
            )
    result = run_command.main(args=list(args), prog_name="extraction-pipeline daemon", standalone_mode=False)
    return result if isinstance(result, int) else 0
