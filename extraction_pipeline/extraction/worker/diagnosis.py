"""What the kernel tells of a worker: its memory, out-of-memory kills, and how it died."""

from __future__ import annotations

import contextlib
import signal
import time


def proc_status_fields(pid: int, *keys: str) -> dict[str, int]:
    """``kB`` fields of ``/proc/<pid>/status`` (``VmHWM``, ``VmRSS``) in one read; missing ones left out."""
    wanted = {key + ":" for key in keys}
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                label, _, rest = line.partition("\t")
                if label in wanted:
                    with contextlib.suppress(ValueError, IndexError):
                        found[label[:-1]] = int(rest.split()[0])
                    if len(found) == len(keys):
                        break
    except OSError:
        pass
    return found


def proc_status_kib(pid: int, key: str) -> int | None:
    """One ``kB`` field of ``/proc/<pid>/status``; None when unreadable."""
    return proc_status_fields(pid, key).get(key)


_OOM_COUNTERS = (
    ("/sys/fs/cgroup/memory.events", "oom_kill"),  # cgroup v2
    ("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill"),  # cgroup v1
    ("/proc/vmstat", "oom_kill"),  # the whole machine
)


def oom_kill_counts() -> tuple[int | None, ...]:
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


class OomBaseline:
    """The out-of-memory kill counters before a file is sent, read at most every ``max_age_s``.

    Reading them costs three file reads (about 0.1 ms, a tenth of a tiny IFC file's extraction)
    although they matter only when a worker dies. A count that is up to ``max_age_s`` old can only
    add, to a worker found killed by SIGKILL, an out-of-memory kill of another process in that second.
    """

    def __init__(self, max_age_s: float = 1.0) -> None:
        self.max_age_s = max_age_s
        self._counts: tuple[int | None, ...] = ()
        self._read_at = -float("inf")

    def counts(self) -> tuple[int | None, ...]:
        now = time.monotonic()
        if now - self._read_at > self.max_age_s:
            self._counts, self._read_at = oom_kill_counts(), now
        return self._counts


def oom_killed_since(before: tuple[int | None, ...]) -> bool:
    after = oom_kill_counts()
    return any(b is not None and a is not None and a > b for b, a in zip(before, after, strict=True))


def describe_death(exitcode: int | None, oom_killed: bool) -> tuple[str, str]:
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
