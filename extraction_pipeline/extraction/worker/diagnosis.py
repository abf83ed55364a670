"""What the kernel tells of a worker: its memory, out-of-memory kills, and how it died."""

from __future__ import annotations

import signal


def proc_status_kib(pid: int, key: str) -> int | None:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmHWM``, ``VmRSS``); None when unreadable."""
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
