"""Isolated warm workers: run ``extract_file`` in child processes with a time and a memory limit.

Native parsers (MuPDF, OpenCascade, IfcOpenShell, ...) can segfault, hang or eat all memory on a
hostile file. ``WorkerPool`` runs every extraction in a child process, so such a file ends only that
child and becomes a failed envelope instead of a dead caller:

- ``crashed``: the child died from a signal (the message names it, e.g. ``SIGSEGV``) or exited;
- ``out_of_memory``: the child hit its address-space limit (``RLIMIT_AS``, a ``MemoryError`` in
  Python or a native allocation failure translated to one) or was killed by the kernel's
  out-of-memory killer (a ``SIGKILL`` we did not send while the kernel's ``oom_kill`` counter rose);
- ``timeout``: the file took longer than the wall-clock limit; the child is killed.

These three are ``transient`` while attempts remain and ``permanent`` at the last one
(``errors.worker_failure_kind``). The failure envelope still carries the file's size and sha256,
its detected format, variant and ``extension_matches`` (computed in the parent) and ``duration_ms``.

Workers are warm: a child serves many files in turn, so the heavy imports of the format libraries
are paid once per worker. A worker is replaced after a crash, a timeout or an out-of-memory, and
optionally after ``max_files_per_worker`` files or once its resident memory exceeds
``max_rss_bytes`` (recycling). A worker is a fresh interpreter started with ``subprocess`` (exec,
never a bare ``fork``: the parent may be a multithreaded Dagster process; and unlike
multiprocessing's "spawn" it does not re-run the caller's ``__main__``); it talks to the parent
in JSON documents over a socket pair (never pickle: nothing a worker that parsed a hostile file
sends is unpickled, and no exception object crosses), ignores SIGINT (the parent decides) and
discards what native libraries print on stdout, so a ``--json`` stdout stays clean. It starts with
a scrubbed environment (``child_environment``): no database URL, Dagster setting, webhook or
credential reaches the process that runs native parsers on untrusted bytes.

Usage::

    with WorkerPool(size=2, timeout_s=60, memory_bytes=1 << 30) as pool:
        envelope = pool.extract("drawing.dxf", attempt=1, max_attempts=3)

    envelope = extract_isolated("drawing.dxf", timeout_s=60)   # a shared pool per set of limits

A pool is thread-safe: several threads may call ``extract`` at once; each call waits for an idle
worker. ``pool.worker_pids()`` lists the live workers and ``pool.peak_rss_bytes()`` the highest
resident memory any worker of the pool reached (for benchmarks).

Fault injection (tests only)
----------------------------
When the environment variable ``EXTRACTION_FAULT_INJECTION=1`` is set in the process at the moment
it creates the pool (or ``WorkerPool(fault_injection=True)``; ``extract_isolated`` keeps a separate
shared pool per setting), its workers treat a file whose content starts with one of

- ``EXTRACTION-FAULT:segfault``: the worker really segfaults (reads address 0) -> ``crashed``, SIGSEGV;
- ``EXTRACTION-FAULT:hang``: the worker sleeps forever -> ``timeout``;
- ``EXTRACTION-FAULT:oom``: the worker allocates until ``MemoryError`` under its ``RLIMIT_AS``
  -> ``out_of_memory`` (without a memory limit it raises ``MemoryError`` at once instead of
  eating the machine's memory);
- ``EXTRACTION-FAULT:exit``: the worker calls ``os._exit(3)`` -> ``crashed``, exit status 3;

as an order to misbehave instead of extracting it. Without the setting such a file is an ordinary
file of unknown format (``unsupported_format``). Bytes after the marker's line are free, e.g.
``b"EXTRACTION-FAULT:segfault\\n%PDF-1.7\\n"`` is detected as a PDF for the failure envelope.
Example for another test suite::

    monkeypatch.setenv("EXTRACTION_FAULT_INJECTION", "1")      # before the pool is created
    (tmp_path / "boom.pdf").write_bytes(b"EXTRACTION-FAULT:segfault\\n")
    envelope = WorkerPool(timeout_s=2).extract(tmp_path / "boom.pdf")   # error.code == "crashed"
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Only light modules at import time: the envelope machinery (pydantic, detection, the registry) is
# imported where it is used, so a caller can start a worker first and load the rest while the
# worker starts (``WorkerPool.prestart``; a one-file `extract` saves about 0.2 s that way).
from extraction_pipeline.extraction.errors import WORKER_FAILURE_CODES, worker_failure_kind
from extraction_pipeline.extraction.limits import DEFAULT_MAX_FILE_BYTES

if TYPE_CHECKING:
    from extraction_pipeline.extraction.envelope import Envelope, ErrorInfo
    from extraction_pipeline.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MEMORY_BYTES = 2 * 1024 * 1024 * 1024
# How long a fresh worker may take to import the extraction core and say it is ready.
DEFAULT_STARTUP_TIMEOUT_S = 60.0

FAULT_INJECTION_ENV = "EXTRACTION_FAULT_INJECTION"
FAULT_PREFIX = b"EXTRACTION-FAULT:"


def fault_injection_enabled() -> bool:
    """True when ``EXTRACTION_FAULT_INJECTION=1`` is set (tests only)."""
    return os.environ.get(FAULT_INJECTION_ENV) == "1"


class WorkerPoolClosed(RuntimeError):
    """``extract`` was called on a closed pool."""


class _WorkerStartFailed(Exception):
    """No worker: ``code`` is ``crashed`` when the machine refused a process (no memory, no pids),
    ``extractor_error`` when the worker program itself died or hung at start (a broken install)."""

    def __init__(self, message: str, code: str = "extractor_error") -> None:
        super().__init__(message)
        self.code = code


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


# --------------------------------------------------------------------------------------------
# The boundary: JSON messages and a scrubbed environment
# --------------------------------------------------------------------------------------------

# The worker parses untrusted files with native code; it gets only what it needs to run: no
# database URL, no Dagster instance, no webhook, no cloud or other credentials. Allowed by name...
_CHILD_ENV_NAMES = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP", "LD_LIBRARY_PATH"}
)
# ... and by prefix: locale, the interpreter's own settings (PYTHONPATH, ...), OpenCascade's
# resource and memory settings, math library threads, glibc malloc, and test coverage of workers.
_CHILD_ENV_PREFIXES = (
    "LC_",
    "PYTHON",
    "CSF_",
    "MMGT_",
    "OMP_",
    "OPENBLAS_",
    "MKL_",
    "MALLOC_",
    "COV_CORE_",
    "COVERAGE_",
)


def child_environment(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """The environment an extraction worker starts with: ``environ`` less everything not allowed."""
    env = {
        key: value
        for key, value in environ.items()
        if key in _CHILD_ENV_NAMES or key.startswith(_CHILD_ENV_PREFIXES)
    }
    # glibc reserves 64 MiB of address space per thread arena: keep RLIMIT_AS about real use.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    return env


def send_message(conn: Connection, message: Any) -> None:
    """One JSON document over the pipe (never pickle: the parent must not unpickle what a worker
    that parsed a hostile file sends)."""
    conn.send_bytes(json.dumps(message).encode("utf-8"))


def receive_message(conn: Connection) -> Any:
    return json.loads(conn.recv_bytes().decode("utf-8"))


def extractor_fault_message_of(failure: str) -> str:
    return (
        f"the extractor failed, not the file ({failure}); run `extraction-pipeline doctor` and "
        "report it if the installation is sound"
    )[:2000]


# --------------------------------------------------------------------------------------------
# The child side
# --------------------------------------------------------------------------------------------


# The worker is a fresh interpreter (``python -c``), never a fork of the caller, and unlike
# multiprocessing's "spawn" it does not re-import the caller's ``__main__`` (a script without an
# ``if __name__ == "__main__"`` guard would otherwise run again in every worker).
_CHILD_PROGRAM = """\
import json, sys
for entry in reversed(json.loads(sys.argv[1])):
    if entry not in sys.path:
        sys.path.insert(0, entry)
from extraction_pipeline.extraction.workers import _child_entry
_child_entry(json.loads(sys.argv[2]))
"""


def _child_entry(config: dict[str, Any]) -> None:  # pragma: no cover - runs in the worker process
    conn = Connection(config["fd"])
    _worker_main(
        conn, config["memory_bytes"], config["max_bytes"], config["preload"], config["fault_injection"]
    )


def _worker_main(
    conn: Connection, memory_bytes: int | None, max_bytes: int, preload: Sequence[str], fault_injection: bool
) -> None:  # pragma: no cover - runs in the worker process
    """The loop of one worker process: receive ``(path, name)``, answer with a reply dict."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_memory_limit(memory_bytes)
    # Native libraries print banners and statistics on fd 1 (OpenCascade's transfer report, for
    # one); the parent's stdout may be a JSON document and its terminal is a person's: discard it.
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    # The libraries' own log records (ezdxf warns about every oddity of a drawing) would land on
    # the parent's stderr, in the middle of `extract`'s output; what matters reaches the envelope.
    logging.getLogger().addHandler(logging.NullHandler())
    _watch_parent(os.getppid())

    from extraction_pipeline.extraction.extract import extract_file

    for module in preload:
        __import__(module)
    send_message(conn, {"ready": True, "pid": os.getpid(), **_own_memory()})

    while True:
        try:
            request = receive_message(conn)
        except (EOFError, OSError, ValueError):
            return
        if request is None:
            return
        path, name = request
        reply: dict[str, Any]
        try:
            if fault_injection:
                _inject_fault(path)
            envelope = extract_file(path, name, max_bytes=max_bytes)
            reply = {"envelope": envelope.model_dump(mode="json")}
        except MemoryError:
            reply = {"memory_error": "the extraction ran out of memory"}
        except BaseException as exc:  # everything goes back to the parent
            reply = _describe_exception(exc)
        try:
            reply.update(_own_memory())
            send_message(conn, reply)
        except MemoryError:
            os._exit(70)
        except (OSError, ValueError):
            return


def _set_memory_limit(memory_bytes: int | None) -> None:  # pragma: no cover - worker process
    if not memory_bytes:
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _watch_parent(parent_pid: int) -> None:  # pragma: no cover - worker process
    """End the worker when its parent is gone (an idle worker notices by EOF, a busy one here)."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _own_memory() -> dict[str, int]:  # pragma: no cover - worker process
    # VmHWM belongs to this program's address space. ru_maxrss would not do: Linux carries it
    # over exec, so a worker started from a big parent would report the parent's peak.
    hwm = _proc_status_kib(os.getpid(), "VmHWM")
    peak = hwm * 1024 if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rss = _proc_status_kib(os.getpid(), "VmRSS")
    return {"peak_rss_bytes": peak, "rss_bytes": rss * 1024 if rss is not None else peak}


def _describe_exception(exc: BaseException) -> dict[str, Any]:  # pragma: no cover - worker process
    """What the parent learns of an exception that escaped ``extract_file``: plain data, never the
    exception object (the parent rebuilds an ``OSError`` itself; anything else is our fault)."""
    if isinstance(exc, OSError):
        return {
            "os_error": {"errno": exc.errno, "strerror": exc.strerror or str(exc), "filename": exc.filename}
        }
    return {"failure": f"{type(exc).__name__}: {exc}"[:2000]}


def _inject_fault(path: str) -> None:  # pragma: no cover - worker process
    with open(path, "rb") as handle:
        head = handle.read(len(FAULT_PREFIX) + 16)
    if not head.startswith(FAULT_PREFIX):
        return
    fault = (
        head[len(FAULT_PREFIX) :].split()[0].decode("ascii", "replace") if head[len(FAULT_PREFIX) :] else ""
    )
    if fault == "segfault":
        import ctypes

        ctypes.string_at(0)
    elif fault == "hang":
        while True:
            time.sleep(3600)
    elif fault == "oom":
        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            raise MemoryError("fault injection: no memory limit is set, out of memory simulated")
        hoard = []
        while True:  # ends in MemoryError once the address space is used up
            hoard.append(bytearray(32 * 1024 * 1024))
    elif fault == "exit":
        os._exit(3)


# --------------------------------------------------------------------------------------------
# The parent side
# --------------------------------------------------------------------------------------------


def _proc_status_kib(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


_OOM_COUNTERS = (
    ("/sys/fs/cgroup/memory.events", "oom_kill"),  # cgroup v2
    ("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill"),  # cgroup v1
    ("/proc/vmstat", "oom_kill"),  # the whole machine
)


def _oom_kill_counts() -> tuple[int | None, ...]:
    """The kernel's out-of-memory kill counters this process can see (None where unreadable)."""
    counts: list[int | None] = []
    for path, key in _OOM_COUNTERS:
        value = None
        try:
            with open(path, encoding="ascii") as handle:
                for line in handle:
                    parts = line.split()
                    if len(parts) == 2 and parts[0] == key:
                        value = int(parts[1])
                        break
        except (OSError, ValueError):
            pass
        counts.append(value)
    return tuple(counts)


def _oom_killed_since(before: tuple[int | None, ...]) -> bool:
    after = _oom_kill_counts()
    return any(b is not None and a is not None and a > b for b, a in zip(before, after, strict=True))


def _describe_death(exitcode: int | None, oom_killed: bool) -> tuple[str, str]:
    """(code, message) for a worker that died without answering."""
    if exitcode is None:
        return "crashed", "the extraction worker stopped answering"
    if exitcode < 0:
        number = -exitcode
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        description = signal.strsignal(number) or name
        if number == signal.SIGKILL and oom_killed:
            return (
                "out_of_memory",
                f"the extraction worker was killed by the kernel's out-of-memory killer ({name})",
            )
        return "crashed", f"the extraction worker was killed by {name} ({description})"
    return "crashed", f"the extraction worker exited unexpectedly with status {exitcode}"


class _Worker:
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
                [sys.executable, "-c", _CHILD_PROGRAM, json.dumps(sys.path), json.dumps(config)],
                stdin=subprocess.DEVNULL,
                pass_fds=(child_conn.fileno(),),
                env=env,
            )
        except OSError as exc:  # no more processes, no memory for one, ...
            parent_conn.close()
            raise _WorkerStartFailed(f"{type(exc).__name__}: {exc}", code="crashed") from exc
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
                raise _WorkerStartFailed(f"it did not start within {pool.startup_timeout_s:g} s")
            raise _WorkerStartFailed(_describe_death(self.exitcode, False)[1])
        self._note_memory(message)
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

    def _note_memory(self, message: dict[str, Any]) -> None:
        if isinstance(message.get("peak_rss_bytes"), int):
            self.peak_rss_bytes = message["peak_rss_bytes"]
        if isinstance(message.get("rss_bytes"), int):
            self.rss_bytes = message["rss_bytes"]

    def live_peak_rss_bytes(self) -> int | None:
        if self.alive():
            peak = _proc_status_kib(self.pid, "VmHWM")
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


class WorkerPool:
    """A fixed number of warm worker processes that extract files in isolation.

    ``size`` workers (started lazily, on first use); each extraction may take ``timeout_s``
    seconds of wall-clock time and ``memory_bytes`` of address space (None or 0: no limit).
    ``max_bytes`` is handed to ``extract_file``. A worker is recycled after ``max_files_per_worker``
    files or once its resident memory exceeds ``max_rss_bytes`` (None: never). ``preload`` names
    modules every worker imports at start (e.g. ``("pymupdf",)``) so that no file pays for them.
    ``fault_injection`` defaults to ``EXTRACTION_FAULT_INJECTION=1`` in the environment when the
    pool is created (see the module docstring).
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
        self, path: str | Path, filename: str | None = None, *, attempt: int = 1, max_attempts: int = 1
    ) -> Envelope:
        """Extract ``path`` in a worker; failures of any kind come back as a failed envelope.

        Raises ``OSError`` when the file cannot be read at all (as ``extract_file`` does) and
        ``WorkerPoolClosed`` after ``close()``.
        """
        return self.run(path, filename, attempt=attempt, max_attempts=max_attempts).envelope

    def run(
        self, path: str | Path, filename: str | None = None, *, attempt: int = 1, max_attempts: int = 1
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
            return self._run_on(slot, path, name, attempt, max_attempts)
        finally:
            self._release(slot)

    def prestart(self) -> None:
        """Start one worker now, in the background, so that it boots while the caller does other
        work (imports, listing files); the first ``extract`` waits for it. A worker that cannot
        start is left for ``extract`` to report (it tries again and builds the failure envelope)."""

        def start(slot: _Slot) -> None:
            try:
                if slot.worker is None or not slot.worker.alive():
                    slot.worker = _Worker(self)
            except _WorkerStartFailed as exc:
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

    def _run_on(self, slot: _Slot, path: Path, name: str, attempt: int, max_attempts: int) -> WorkerResult:
        worker = slot.worker
        for _ in range(2):
            if worker is None or not worker.alive():
                if worker is not None:
                    worker.kill()
                    slot.worker = None
                started = time.monotonic()
                try:
                    worker = slot.worker = _Worker(self)
                except _WorkerStartFailed as exc:
                    message = f"the extraction worker could not start: {exc}"
                    if exc.code == "extractor_error":
                        message += (
                            " (the installation is at fault, not the file: run `extraction-pipeline doctor`)"
                        )
                    log.error("%s", message)
                    envelope = self._failure(path, name, exc.code, message, attempt, max_attempts, started)
                    return WorkerResult(envelope, None, None, True)
            started = time.monotonic()
            oom_before = _oom_kill_counts()
            try:
                send_message(worker.conn, [str(path), name])
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
            worker._note_memory(reply)
            self._note_peak(worker.peak_rss_bytes)
            if "os_error" in reply:  # the file vanished or became unreadable: as extract_file raises it
                error = reply["os_error"]
                raise OSError(error.get("errno"), error.get("strerror"), error.get("filename"))
            if "failure" in reply:  # an exception that escaped extract_file: our code, not the file
                message = extractor_fault_message_of(reply["failure"])
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
            code, message = _describe_death(exitcode, _oom_killed_since(oom_before))
        slot.worker = None
        log.warning("extraction of %s failed in worker %s: %s: %s", name, pid, code, message)
        envelope = self._failure(path, name, code, message, attempt, max_attempts, started)
        return WorkerResult(envelope, pid, worker.peak_rss_bytes, True)

    def _should_retire(self, worker: _Worker, envelope: Envelope) -> bool:
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
        self.worker: _Worker | None = None

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


# --------------------------------------------------------------------------------------------
# A shared pool per set of limits
# --------------------------------------------------------------------------------------------

_shared_lock = threading.Lock()
_shared_pools: dict[tuple[Any, ...], WorkerPool] = {}


def shared_pool(**limits: Any) -> WorkerPool:
    """The process-wide pool for these ``WorkerPool`` keyword arguments (created on first use)."""
    limits.setdefault("fault_injection", fault_injection_enabled())
    key = (os.getpid(), *sorted((k, repr(v)) for k, v in limits.items()))
    with _shared_lock:
        pool = _shared_pools.get(key)
        if pool is None or pool.closed:
            pool = _shared_pools[key] = WorkerPool(**limits)
        return pool


def extract_isolated(
    path: str | Path, filename: str | None = None, *, attempt: int = 1, max_attempts: int = 1, **limits: Any
) -> Envelope:
    """``extract_file`` in a warm, shared, isolated worker; ``limits`` are ``WorkerPool`` arguments."""
    return shared_pool(**limits).extract(path, filename, attempt=attempt, max_attempts=max_attempts)


# Every pool of this process, so that no worker outlives an interpreter that forgot to close one.
_live_pools: weakref.WeakSet[WorkerPool] = weakref.WeakSet()


def _close_all_pools() -> None:
    for pool in list(_live_pools):
        if pool._owner_pid == os.getpid():
            pool.terminate()


atexit.register(_close_all_pools)
