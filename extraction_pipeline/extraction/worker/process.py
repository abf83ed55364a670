"""The parent's handle on one worker process: start it, wait for it, stop or kill it."""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import subprocess
import sys
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any

from extraction_pipeline.extraction.worker.boundary import child_environment, receive_message, send_message
from extraction_pipeline.extraction.worker.child import CHILD_PROGRAM
from extraction_pipeline.extraction.worker.diagnosis import describe_death, proc_status_kib

if TYPE_CHECKING:
    from extraction_pipeline.extraction.worker.pool import WorkerPool

# The logger of the former single module, so that logging settings keep applying.
log = logging.getLogger("extraction_pipeline.extraction.workers")


class WorkerStartFailed(Exception):
    """No worker: ``code`` is ``crashed`` when the machine refused a process (no memory, no pids),
    ``extractor_error`` when the worker program itself died or hung at start (a broken install)."""

    def __init__(self, message: str, code: str = "extractor_error") -> None:
        super().__init__(message)
        self.code = code


class Worker:
    """One child process and the pipe to it; used by one thread at a time."""

    def __init__(self, pool: WorkerPool) -> None:
        parent_conn, child_conn = multiprocessing.Pipe(duplex=True)  # a socket pair
        config = {
            "fd": child_conn.fileno(),
            "memory_bytes": pool.memory_bytes,
            "max_bytes": pool.max_bytes,
            "preload": list(pool.preload),
            "fault_injection": pool.fault_injection,
        }
        env = child_environment(os.environ)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", CHILD_PROGRAM, json.dumps(sys.path), json.dumps(config)],
                stdin=subprocess.DEVNULL,
                pass_fds=(child_conn.fileno(),),
                env=env,
            )
        except OSError as exc:  # no more processes, no memory for one, ...
            parent_conn.close()
            raise WorkerStartFailed(f"{type(exc).__name__}: {exc}", code="crashed") from exc
        finally:
            child_conn.close()
        self.conn = parent_conn
        # Readable when the process ends, even if a grandchild still holds the socket open.
        self.sentinel: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self.sentinel = os.pidfd_open(self.process.pid)
        self.files = 0
        self.peak_rss_bytes: int | None = None
        self.rss_bytes: int | None = None
        ready = self.wait_readable(pool.startup_timeout_s)
        message = None
        if ready:
            with contextlib.suppress(EOFError, OSError, ValueError):
                message = receive_message(self.conn)
        if not isinstance(message, dict) or not message.get("ready"):
            timed_out = self.alive() and not ready
            if not timed_out:  # it closed the pipe: let it finish dying, so its own status shows
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(5)
            self.kill()
            if timed_out:
                raise WorkerStartFailed(f"it did not start within {pool.startup_timeout_s:g} s")
            raise WorkerStartFailed(describe_death(self.exitcode, False)[1])
        self.note_memory(message)
        log.debug("extraction worker %s started", self.pid)

    def wait_readable(self, timeout: float) -> bool:
        """Wait until the worker answered or ended; False after ``timeout`` seconds of neither."""
        watched: list[Any] = [self.conn] if self.sentinel is None else [self.conn, self.sentinel]
        return bool(wait(watched, timeout))

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def exitcode(self) -> int | None:
        """The exit status, or minus the signal number that ended it (None while it runs)."""
        return self.process.poll()

    def alive(self) -> bool:
        return self.process.poll() is None

    def note_memory(self, message: dict[str, Any]) -> None:
        """Keep the memory figures a worker's message carries."""
        if isinstance(message.get("peak_rss_bytes"), int):
            self.peak_rss_bytes = message["peak_rss_bytes"]
        if isinstance(message.get("rss_bytes"), int):
            self.rss_bytes = message["rss_bytes"]

    def live_peak_rss_bytes(self) -> int | None:
        if self.alive():
            peak = proc_status_kib(self.pid, "VmHWM")
            if peak is not None:
                return peak * 1024
        return self.peak_rss_bytes

    def stop(self, grace_s: float = 5.0) -> None:
        """Ask the worker to finish, kill it if it does not."""
        if self.alive():
            with contextlib.suppress(OSError, ValueError):
                send_message(self.conn, None)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace_s)
        self.kill()

    def kill(self) -> None:
        if self.alive():
            with contextlib.suppress(OSError):
                self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        with contextlib.suppress(OSError):
            self.conn.close()
        if self.sentinel is not None:
            with contextlib.suppress(OSError):
                os.close(self.sentinel)
            self.sentinel = None
