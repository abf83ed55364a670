"""The pipeline's daemon: Dagster's ``dagster-daemon run``, with backfills picked up within seconds.

Dagster's backfill daemon looks for new backfills every 30 s, a constant of Dagster's (1.13), not a
setting. A 300-file backfill that the runs finish in 16 s then waited 28.7 s for its first run
(``bench/run.py --quick``). ``extraction-pipeline daemon`` runs the very same daemon process with one
difference: the backfill daemon's pause between two iterations is
``EXTRACTION_BACKFILL_POLL_S`` (longer after a long iteration, see :class:`PacedWaits`). Dagster's
loop pauses by waiting on the daemon's shutdown event; it gets an event whose waits are shorter. Everything else (what an iteration does, how it submits
runs, cancels, retries and heartbeats) stays Dagster's, and a backfill launched from the UI profits
alike.

Only the backfill loop changes: the sensor, run queue, monitoring and run-retry daemons keep their
own intervals (``dagster.yaml``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

# Where Dagster's BackfillDaemon finds its loop function (``BackfillDaemon.core_loop``).
_LOOP_MODULE = "dagster._daemon.daemon"
_LOOP_NAME = "execute_backfill_iteration_loop"


class PacedWaits:
    """A shutdown event whose ``wait`` lasts at most ``poll_s``, or ``busy_factor`` x the last iteration.

    The backfill loop iterates, then waits on its shutdown event (Dagster asks for 30 s minus the
    iteration). The time between two waits is what the iteration took; pausing at least
    ``busy_factor`` times that keeps the daemon's bookkeeping of a huge backfill (seconds per
    iteration) to a fifth of its time, never busier than Dagster's own loop, while an idle daemon
    (milliseconds per iteration) looks again after ``poll_s``. Setting and reading it act on the
    real event, so a shutdown still ends a wait at once.
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
        self._last_wait_end: float | None = None

    def pause_s(self, requested: float | None) -> float:
        """How long the next wait lasts, given what the loop asked for."""
        busy = 0.0 if self._last_wait_end is None else max(0.0, self._clock() - self._last_wait_end)
        pause = max(self.poll_s, self.busy_factor * busy)
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


def install_backfill_poll(poll_s: float) -> bool:
    """Make this process's backfill daemon iterate every ``poll_s`` seconds (plus the iteration).

    Returns False, changing nothing, when this Dagster has no such loop to wrap (another version):
    the daemon then runs with Dagster's own pause.
    """
    import importlib

    module = importlib.import_module(_LOOP_MODULE)
    loop: Callable[..., Any] | None = getattr(module, _LOOP_NAME, None)
    if loop is None:
        return False
    original = getattr(loop, "dagster_loop", loop)

    def backfill_loop(context: Any, logger: Any, shutdown_event: Any, *args: Any, **kwargs: Any) -> Any:
        return original(context, logger, PacedWaits(shutdown_event, poll_s), *args, **kwargs)

    backfill_loop.dagster_loop = original  # type: ignore[attr-defined]  # installing twice wraps once
    backfill_loop.poll_s = poll_s  # type: ignore[attr-defined]
    setattr(module, _LOOP_NAME, backfill_loop)
    return True


def installed_poll_s() -> float | None:
    """The pause installed by :func:`install_backfill_poll` in this process, None for Dagster's own."""
    import importlib

    loop = getattr(importlib.import_module(_LOOP_MODULE), _LOOP_NAME, None)
    return getattr(loop, "poll_s", None)


def run_dagster_daemon(args: Sequence[str], poll_s: float) -> Any:
    """``dagster-daemon run ARGS`` in this process, its backfill daemon polling every ``poll_s`` s."""
    from dagster._daemon.cli import run_command

    if not install_backfill_poll(poll_s):
        import logging

        logging.getLogger(__name__).warning(
            "this Dagster version has no %s.%s: backfills are picked up at Dagster's own pace",
            _LOOP_MODULE,
            _LOOP_NAME,
        )
    return run_command.main(args=list(args), prog_name="extraction-pipeline daemon")
