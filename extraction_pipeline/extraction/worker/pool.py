"""The pool: a fixed number of warm workers, each file served by an idle one (see ``extraction.workers``)."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import subprocess
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Only light modules at import time: the envelope machinery (pydantic, detection, the registry) is
# imported where it is used, so a caller can start a worker first and load the rest while the
# worker starts (``WorkerPool.prestart``; a one-file `extract` saves about 0.2 s that way).
from extraction_pipeline.extraction.errors import (
    WORKER_FAILURE_CODES,
    extractor_fault_message,
    worker_failure_kind,
)
from extraction_pipeline.extraction.limits import DEFAULT_MAX_FILE_BYTES
from extraction_pipeline.extraction.worker.boundary import (
    receive_message,
    send_message,
)
from extraction_pipeline.extraction.worker.diagnosis import OomBaseline, describe_death, oom_killed_since
from extraction_pipeline.extraction.worker.faults import fault_injection_enabled
from extraction_pipeline.extraction.worker.process import Worker, WorkerStartFailed

if TYPE_CHECKING:
    from extraction_pipeline.extraction.envelope import Envelope, ErrorInfo
    from extraction_pipeline.settings import Settings

# The logger of the former single module, so that logging settings keep applying.
log = logging.getLogger("extraction_pipeline.extraction.workers")

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MEMORY_BYTES = 2 * 1024 * 1024 * 1024
# How long a fresh worker may take to import the extraction core and say it is ready.
DEFAULT_STARTUP_TIMEOUT_S = 60.0


class WorkerPoolClosed(RuntimeError):
    """``extract`` was called on a closed pool."""


@dataclass(frozen=True)
class WorkerResult:
    """An envelope plus what happened to the worker that produced it."""

    envelope: Envelope
    # The worker that served the file (None when none could be started).
    worker_pid: int | None
    # The worker's peak resident memory as last seen (None when it died before telling).
    peak_rss_bytes: int | None
    # True when the worker ended with this file (crash, timeout, out of memory, recycling).
    worker_replaced: bool


class WorkerPool:
    """A fixed number of warm worker processes that extract files in isolation.

    ``size`` workers (started lazily, on first use); each extraction may take ``timeout_s``
    seconds of wall-clock time and ``memory_bytes`` of address space (None or 0: no limit).
    ``max_bytes`` is handed to ``extract_file``. A worker is recycled after ``max_files_per_worker``
    files or once its resident memory exceeds ``max_rss_bytes`` (None: never). ``preload`` names
    modules every worker imports at start (e.g. ``("pymupdf",)``) so that no file pays for them.
    ``fault_injection`` defaults to ``EXTRACTION_FAULT_INJECTION=1`` in the environment when the
    pool is created (see ``extraction.workers``).
    """

    def __init__(
        self,
        size: int = 1,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        memory_bytes: int | None = DEFAULT_MEMORY_BYTES,
        max_bytes: int = DEFAULT_MAX_FILE_BYTES,
        max_files_per_worker: int | None = None,
        max_rss_bytes: int | None = None,
        preload: Iterable[str] = (),
        startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S,
        fault_injection: bool | None = None,
    ) -> None:
        if size < 1:
            raise ValueError(f"a worker pool needs at least one worker, got {size}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.size = size
        self.timeout_s = float(timeout_s)
        self.memory_bytes = memory_bytes or None
        self.max_bytes = max_bytes
        self.max_files_per_worker = max_files_per_worker
        self.max_rss_bytes = max_rss_bytes
        self.preload = tuple(preload)
        self.startup_timeout_s = startup_timeout_s
        # Read once, so that every worker of the pool, replacements included, behaves alike.
        self.fault_injection = fault_injection_enabled() if fault_injection is None else fault_injection
        self._owner_pid = os.getpid()
        self._cond = threading.Condition()
        self._slots: list[_Slot] = [_Slot() for _ in range(size)]
        # LIFO: the most recently used, warm worker serves the next file.
        self._idle: list[_Slot] = list(reversed(self._slots))
        self._closed = False
        self._peak_rss = 0
        self._oom_baseline = OomBaseline()
        _live_pools.add(self)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> WorkerPool:
        """A pool sized and limited by ``EXTRACTION_WORKERS``, ``EXTRACTION_TIMEOUT_S``, ..."""
        options: dict[str, Any] = {
            "size": settings.extraction_workers,
            "timeout_s": settings.extraction_timeout_s,
            "memory_bytes": settings.extraction_memory_bytes,
            "max_bytes": settings.max_file_bytes,
        }
        options.update(overrides)
        return cls(**options)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- public API ------------------------------------------------------------------------

    def extract(
        self,
        path: str | Path,
        filename: str | None = None,
        *,
        attempt: int = 1,
        max_attempts: int = 1,
        max_text_chars: int | None = None,
        preview: bool = False,
    ) -> Envelope:
        """Extract ``path`` in a worker; failures of any kind come back as a failed envelope.

        ``max_text_chars``: the worker also gathers the file's text; ``preview``: it also renders the
        PNG preview into ``preview_png`` (both as ``extract_file`` does).
        Raises ``OSError`` when the file cannot be read at all (as ``extract_file`` does) and
        ``WorkerPoolClosed`` after ``close()``.
        """
        return self.run(
            path,
            filename,
            attempt=attempt,
            max_attempts=max_attempts,
            max_text_chars=max_text_chars,
            preview=preview,
        ).envelope

    def run(
        self,
        path: str | Path,
        filename: str | None = None,
        *,
        attempt: int = 1,
        max_attempts: int = 1,
        max_text_chars: int | None = None,
        preview: bool = False,
    ) -> WorkerResult:
        """Like ``extract``, and also tell which worker served the file and what became of it."""
        if os.getpid() != self._owner_pid:
            raise RuntimeError("a WorkerPool cannot be used in a forked child; create one there")
        from extraction_pipeline.extraction.extract import printable_name

        path = Path(path)
        name = printable_name(filename if filename is not None else path.name)
        with path.open("rb"):  # fail early, in the caller, on a missing, unreadable file or a folder
            pass
        slot = self._acquire()
        try:
            options: dict[str, Any] = {}
            if max_text_chars is not None:
                options["max_text_chars"] = max_text_chars
            if preview:
                options["preview"] = True
            return self._run_on(slot, path, name, attempt, max_attempts, options)
        finally:
            self._release(slot)

    def prestart(self) -> None:
        """Start one worker now, in the background, so that it boots while the caller does other
        work (imports, listing files); the first ``extract`` waits for it. A worker that cannot
        start is left for ``extract`` to report (it tries again and builds the failure envelope)."""

        def start(slot: _Slot) -> None:
            try:
                if slot.worker is None or not slot.worker.alive():
                    slot.worker = Worker(self)
            except WorkerStartFailed as exc:
                log.debug("prestarting an extraction worker failed: %s", exc)
            finally:
                self._release(slot)

        with self._cond:
            if self._closed or not self._idle:
                return
            slot = self._idle.pop()
        threading.Thread(target=start, args=(slot,), name="worker-prestart", daemon=True).start()

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (a fresh pool has none until its first file)."""
        with self._cond:
            workers = [slot.worker for slot in self._slots if slot.worker is not None]
        return [w.pid for w in workers if w.pid is not None and w.alive()]

    def peak_rss_bytes(self) -> int:
        """The highest resident memory (bytes) any worker of this pool has reached so far."""
        with self._cond:
            peak = self._peak_rss
            workers = [slot.worker for slot in self._slots if slot.worker is not None]
        for worker in workers:
            value = worker.live_peak_rss_bytes()
            if value is not None:
                peak = max(peak, value)
        return peak

    def close(self) -> None:
        """Stop the idle workers now; a worker still busy in another thread stops when it is done."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for slot in idle:
            slot.retire()

    def terminate(self) -> None:
        """Close the pool and kill every worker at once, busy or not (a busy call gets ``crashed``)."""
        with self._cond:
            self._closed = True
            self._idle = []
            self._cond.notify_all()
            workers = [slot.worker for slot in self._slots if slot.worker is not None]
        for worker in workers:
            worker.kill()

    # -- internals -------------------------------------------------------------------------

    def _acquire(self) -> _Slot:
        with self._cond:
            while True:
                if self._closed:
                    raise WorkerPoolClosed("the worker pool is closed")
                if self._idle:
                    return self._idle.pop()
                self._cond.wait()

    def _release(self, slot: _Slot) -> None:
        with self._cond:
            if not self._closed:
                self._idle.append(slot)
                self._cond.notify()
                return
        slot.retire()

    def _note_peak(self, value: int | None) -> None:
        if value is not None:
            with self._cond:
                self._peak_rss = max(self._peak_rss, value)

    def _run_on(
        self, slot: _Slot, path: Path, name: str, attempt: int, max_attempts: int, options: dict[str, Any]
    ) -> WorkerResult:
        worker = slot.worker
        for _ in range(2):
            if worker is None or not worker.alive():
                if worker is not None:
                    worker.kill()
                    slot.worker = None
                started = time.monotonic()
                try:
                    worker = slot.worker = Worker(self)
                except WorkerStartFailed as exc:
                    message = f"the extraction worker could not start: {exc}"
                    if exc.code == "extractor_error":
                        message += (
                            " (the installation is at fault, not the file: run `extraction-pipeline doctor`)"
                        )
                    log.error("%s", message)
                    envelope = self._failure(path, name, exc.code, message, attempt, max_attempts, started)
                    return WorkerResult(envelope, None, None, True)
            started = time.monotonic()
            oom_before = self._oom_baseline.counts()
            try:
                request: list[Any] = [str(path), name]
                if options:  # text, preview: what the caller wants besides the metadata
                    request.append(options)
                send_message(worker.conn, request)
                break
            except (OSError, ValueError):  # it died while idle and never saw the file: start afresh
                log.warning("extraction worker %s was gone; starting another", worker.pid)
                worker.kill()
        else:
            slot.worker = None
            message = "the extraction worker died before it could take the file"
            envelope = self._failure(path, name, "crashed", message, attempt, max_attempts, started)
            return WorkerResult(envelope, None, None, True)

        try:
            ready = worker.wait_readable(self.timeout_s)
            reply: Any = None
            if ready and worker.conn.poll():
                with contextlib.suppress(EOFError, OSError, ValueError):
                    reply = receive_message(worker.conn)
        except BaseException:
            # Interrupted (KeyboardInterrupt, a cancelled run): the worker still has our request.
            worker.kill()
            slot.worker = None
            raise
        pid = worker.pid

        if isinstance(reply, dict):
            worker.note_memory(reply)
            self._note_peak(worker.peak_rss_bytes)
            if "os_error" in reply:  # the file vanished or became unreadable: as extract_file raises it
                error = reply["os_error"]
                raise OSError(error.get("errno"), error.get("strerror"), error.get("filename"))
            if "failure" in reply:  # an exception that escaped extract_file: our code, not the file
                message = extractor_fault_message(str(reply["failure"]))
                envelope = self._failure(
                    path, name, "extractor_error", message, attempt, max_attempts, started
                )
                return WorkerResult(envelope, pid, worker.peak_rss_bytes, False)
            if "memory_error" in reply:
                worker.kill()
                slot.worker = None
                envelope = self._failure(
                    path, name, "out_of_memory", reply["memory_error"], attempt, max_attempts, started
                )
                return WorkerResult(envelope, pid, worker.peak_rss_bytes, True)
            from extraction_pipeline.extraction.envelope import Envelope

            envelope = Envelope.model_validate(reply["envelope"])
            if envelope.error is not None and envelope.error.code in WORKER_FAILURE_CODES:
                envelope.error.kind = worker_failure_kind(attempt, max_attempts)
            worker.files += 1
            retire = self._should_retire(worker, envelope)
            if retire:
                log.info("recycling extraction worker %s after %d file(s)", pid, worker.files)
                worker.stop()
                slot.worker = None
            return WorkerResult(envelope, pid, worker.peak_rss_bytes, retire)

        if not ready:
            worker.kill()
            code, message = "timeout", f"the extraction took longer than {self.timeout_s:g} s and was stopped"
        else:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(5)
            exitcode = worker.exitcode
            worker.kill()
            code, message = describe_death(exitcode, oom_killed_since(oom_before))
        slot.worker = None
        log.warning("extraction of %s failed in worker %s: %s: %s", name, pid, code, message)
        envelope = self._failure(path, name, code, message, attempt, max_attempts, started)
        return WorkerResult(envelope, pid, worker.peak_rss_bytes, True)

    def _should_retire(self, worker: Worker, envelope: Envelope) -> bool:
        if envelope.error is not None and envelope.error.code == "out_of_memory":
            return True  # the heap may be left fragmented and huge
        if self.max_files_per_worker is not None and worker.files >= self.max_files_per_worker:
            return True
        return self.max_rss_bytes is not None and (worker.rss_bytes or 0) > self.max_rss_bytes

    def _failure(
        self, path: Path, name: str, code: str, message: str, attempt: int, max_attempts: int, started: float
    ) -> Envelope:
        from extraction_pipeline.extraction.envelope import ErrorInfo

        return failure_envelope(
            path,
            name,
            ErrorInfo(
                kind="permanent" if code == "extractor_error" else worker_failure_kind(attempt, max_attempts),
                code=code,
                message=message,
            ),
            duration_ms=int((time.monotonic() - started) * 1000),
            max_bytes=self.max_bytes,
        )


class _Slot:
    """A place for one worker in the pool; the worker inside is replaced as needed."""

    def __init__(self) -> None:
        self.worker: Worker | None = None

    def retire(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.stop()


def failure_envelope(
    path: Path, name: str, error: ErrorInfo, *, duration_ms: int, max_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> Envelope:
    """A failed envelope built in the parent: size, sha256 and detection are cheap to redo here."""
    from extraction_pipeline.extraction.detect import Detection, Format, detect_format
    from extraction_pipeline.extraction.envelope import ExtractorInfo
    from extraction_pipeline.extraction.extract import DETECTOR, failed_envelope, file_info
    from extraction_pipeline.extraction.registry import extractor_for

    info = file_info(path, name)
    detection = Detection(Format.UNKNOWN, extension_matches=False)
    if 0 < info.size_bytes <= max_bytes:
        with contextlib.suppress(Exception):
            detection = detect_format(path, name)
    module = extractor_for(detection.format)
    extractor = ExtractorInfo(name=module.NAME, version=module.VERSION) if module is not None else DETECTOR
    return failed_envelope(
        info, detection, extractor, error, warnings=list(detection.warnings), duration_ms=duration_ms
    )


# Every pool of this process, so that no worker outlives an interpreter that forgot to close one.
_live_pools: weakref.WeakSet[WorkerPool] = weakref.WeakSet()


def _close_all_pools() -> None:
    for pool in list(_live_pools):
        if pool._owner_pid == os.getpid():
            pool.terminate()


atexit.register(_close_all_pools)
