"""Fault injection (tests only): a worker that misbehaves on order (see ``extraction.workers``)."""

from __future__ import annotations

import os
import resource
import time

FAULT_INJECTION_ENV = "EXTRACTION_FAULT_INJECTION"
FAULT_PREFIX = b"EXTRACTION-FAULT:"


def fault_injection_enabled() -> bool:
    """True when ``EXTRACTION_FAULT_INJECTION=1`` is set (tests only)."""
    return os.environ.get(FAULT_INJECTION_ENV) == "1"


def inject_fault(path: str) -> None:  # pragma: no cover - worker process
    """Misbehave as ordered when the file starts with ``EXTRACTION-FAULT:<fault>``."""
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
