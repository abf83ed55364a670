"""A process-wide pool per set of limits, and ``extract_isolated`` on top of it."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from extraction_pipeline.extraction.worker.faults import fault_injection_enabled
from extraction_pipeline.extraction.worker.pool import WorkerPool

if TYPE_CHECKING:
    from extraction_pipeline.extraction.envelope import Envelope

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
