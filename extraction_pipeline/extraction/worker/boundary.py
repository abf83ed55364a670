"""The boundary between parent and worker: JSON messages and a scrubbed environment."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

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
