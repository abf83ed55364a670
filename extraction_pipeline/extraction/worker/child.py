"""The program a worker runs: receive a file, extract it, answer in JSON, serve the next one.

The worker imports this module and what it needs only (not the pool), then the extraction core.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from extraction_pipeline.extraction.worker.boundary import receive_message, send_message
from extraction_pipeline.extraction.worker.diagnosis import proc_status_fields
from extraction_pipeline.extraction.worker.faults import inject_fault

# The worker is a fresh interpreter (``python -c``), never a fork of the caller, and unlike
# multiprocessing's "spawn" it does not re-import the caller's ``__main__`` (a script without an
# ``if __name__ == "__main__"`` guard would otherwise run again in every worker).
CHILD_PROGRAM = """\
import json, sys
for entry in reversed(json.loads(sys.argv[1])):
    if entry not in sys.path:
        sys.path.insert(0, entry)
from extraction_pipeline.extraction.worker.child import child_entry
child_entry(json.loads(sys.argv[2]))
"""


def child_entry(config: dict[str, Any]) -> None:  # pragma: no cover - runs in the worker process
    conn = Connection(config["fd"])
    worker_main(
        conn, config["memory_bytes"], config["max_bytes"], config["preload"], config["fault_injection"]
    )


def worker_main(
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
        path, name, *rest = request
        options: dict[str, Any] = rest[0] if rest and isinstance(rest[0], dict) else {}
        reply: dict[str, Any]
        try:
            if fault_injection:
                inject_fault(path)
            envelope = extract_file(
                path,
                name,
                max_bytes=max_bytes,
                max_text_chars=options.get("max_text_chars"),
                preview=bool(options.get("preview")),
            )
            document = envelope.model_dump(mode="json")
            if envelope.preview_png is not None:  # not part of the printed envelope
                document["preview_png"] = envelope.preview_png
            reply = {"envelope": document}
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
    fields = proc_status_fields(os.getpid(), "VmHWM", "VmRSS")
    hwm, rss = fields.get("VmHWM"), fields.get("VmRSS")
    peak = hwm * 1024 if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"peak_rss_bytes": peak, "rss_bytes": rss * 1024 if rss is not None else peak}


def _describe_exception(exc: BaseException) -> dict[str, Any]:  # pragma: no cover - worker process
    """What the parent learns of an exception that escaped ``extract_file``: plain data, never the
    exception object (the parent rebuilds an ``OSError`` itself; anything else is our fault)."""
    if isinstance(exc, OSError):
        return {
            "os_error": {"errno": exc.errno, "strerror": exc.strerror or str(exc), "filename": exc.filename}
        }
    return {"failure": f"{type(exc).__name__}: {exc}"[:2000]}
