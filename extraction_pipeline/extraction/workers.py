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

Where things are (``extraction/worker/``): ``boundary`` (JSON messages, the scrubbed environment),
``faults`` (fault injection), ``diagnosis`` (memory, out-of-memory kills, how a worker died),
``child`` (the worker's program), ``process`` (one worker process), ``pool`` (``WorkerPool``),
``shared`` (``shared_pool``, ``extract_isolated``). Import the public names from here.
"""

from __future__ import annotations

# Light modules only: importing this stays free of the envelope machinery (pydantic).
from extraction_pipeline.extraction.worker.boundary import (
    child_environment,
    receive_message,
    send_message,
)
from extraction_pipeline.extraction.worker.faults import (
    FAULT_INJECTION_ENV,
    FAULT_PREFIX,
    fault_injection_enabled,
)
from extraction_pipeline.extraction.worker.pool import (
    DEFAULT_MEMORY_BYTES,
    DEFAULT_STARTUP_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    WorkerPool,
    WorkerPoolClosed,
    WorkerResult,
    failure_envelope,
)
from extraction_pipeline.extraction.worker.shared import extract_isolated, shared_pool

__all__ = [
    "DEFAULT_MEMORY_BYTES",
    "DEFAULT_STARTUP_TIMEOUT_S",
    "DEFAULT_TIMEOUT_S",
    "FAULT_INJECTION_ENV",
    "FAULT_PREFIX",
    "WorkerPool",
    "WorkerPoolClosed",
    "WorkerResult",
    "child_environment",
    "extract_isolated",
    "failure_envelope",
    "fault_injection_enabled",
    "receive_message",
    "send_message",
    "shared_pool",
]
