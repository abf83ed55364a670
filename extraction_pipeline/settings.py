"""Environment -> typed settings. Every knob of the project is read here and nowhere else.

``Settings.from_env`` reads the environment once into ``Settings``, an immutable dataclass (use
``dataclasses.replace`` for a variant). ``_VARIABLES`` has one entry per variable, in the variable's
own units (MiB, seconds) and with its bounds; every bad variable is reported at once in one line
(``SettingsError``), never with the value of a URL.

The reading is plain Python on purpose: every command reads the settings before anything else, and
a one-file ``extract`` starts its worker right after; pydantic (or pydantic-settings, about 130 ms
more, asyncio among its imports) on that path made the command 0.1-0.2 s slower.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extraction_pipeline.extraction.text import DEFAULT_MAX_TEXT_CHARS

MIB = 1024 * 1024


class SettingsError(ValueError):
    """Configuration that cannot be used: one line naming every bad variable."""


def normalize_database_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg2, which is what we install."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


# ---------------------------------------------------------------------------------------------------
# Reading: one entry per variable, its kind, default and bounds
# ---------------------------------------------------------------------------------------------------

_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off")
_INTEGER = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class _Variable:
    name: str
    kind: type  # str (kept as given, never shown in an error), int, float (finite) or bool (a switch)
    default: Any
    low: float | None = None
    high: float | None = None

    def expectation(self) -> str:
        """What the variable must be, from its kind and bounds (so a message cannot drift)."""
        if self.kind is bool:
            return f"one of {'/'.join(_TRUE_WORDS)} or {'/'.join(_FALSE_WORDS)}"
        kind = "an integer" if self.kind is int else "a finite number"
        if self.low is not None and self.high is not None:
            return f"{kind} from {self.low:g} to {self.high:g}"
        if self.low is not None:
            return f"{kind} >= {self.low:g}"
        return kind

    def parse(self, raw: str) -> Any:
        """The value of ``raw``; ValueError when it is not one."""
        text = raw.strip()
        value: Any
        if self.kind is str:
            return raw
        if self.kind is bool:
            word = text.lower()
            if word in _TRUE_WORDS:
                return True
            if word in _FALSE_WORDS:
                return False
            raise ValueError(raw)
        if self.kind is int:
            if not _INTEGER.fullmatch(text):
                raise ValueError(raw)
            value = int(text)
        else:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError(raw)
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ValueError(raw)
        return value


# Attribute of ``_read`` -> the variable. Defaults, names, bounds and units are part of the README's
# Configuration table.
_VARIABLES: dict[str, _Variable] = {
    "home": _Variable("EXTRACTION_HOME", str, ".extraction"),
    "database_url": _Variable("EXTRACTION_DATABASE_URL", str, None),
    "storage_url": _Variable("EXTRACTION_STORAGE_URL", str, None),
    "max_file_mb": _Variable("EXTRACTION_MAX_FILE_MB", int, 512, low=1),
    "timeout_s": _Variable("EXTRACTION_TIMEOUT_S", float, 120.0, low=0.1),
    "memory_limit_mb": _Variable("EXTRACTION_MEMORY_LIMIT_MB", int, 2048, low=64),
    "workers": _Variable("EXTRACTION_WORKERS", int, 1, low=1),
    "sensor_interval_s": _Variable("EXTRACTION_SENSOR_INTERVAL_S", int, 1, low=1),
    "sensor_batch_size": _Variable("EXTRACTION_SENSOR_BATCH_SIZE", int, 50, low=1),
    "retry_delay_s": _Variable("EXTRACTION_RETRY_DELAY_S", float, 30.0, low=0.0),
    "max_retries": _Variable("EXTRACTION_MAX_RETRIES", int, 3, low=0),
    "notify_webhook_url": _Variable("EXTRACTION_NOTIFY_WEBHOOK_URL", str, None),
    "backfill_batch_size": _Variable("EXTRACTION_BACKFILL_BATCH_SIZE", int, 100, low=1),
    "requeue_grace_s": _Variable("EXTRACTION_REQUEUE_GRACE_S", int, 300, low=1),
    "backfill_poll_s": _Variable("EXTRACTION_BACKFILL_POLL_S", float, 2.0, low=0.5, high=30.0),
    "doctor_at_start": _Variable("EXTRACTION_DOCTOR_AT_START", bool, True),
    "api_token": _Variable("EXTRACTION_API_TOKEN", str, None),
    "housekeeping_interval_s": _Variable("EXTRACTION_HOUSEKEEPING_INTERVAL_S", int, 30, low=1),
    "deduplicate": _Variable("EXTRACTION_DEDUPLICATE", bool, True),
    "sensor_poll_s": _Variable("EXTRACTION_SENSOR_POLL_S", float, 1.0, low=0.5, high=5.0),
    "burst_threshold": _Variable("EXTRACTION_BURST_THRESHOLD", int, 10, low=1),
    "burst_batch_size": _Variable("EXTRACTION_BURST_BATCH_SIZE", int, 500, low=1),
    "backfill_niceness": _Variable("EXTRACTION_BACKFILL_NICENESS", int, 10, low=0, high=19),
    "max_text_chars": _Variable("EXTRACTION_MAX_TEXT_CHARS", int, DEFAULT_MAX_TEXT_CHARS, low=0),
    "previews": _Variable("EXTRACTION_PREVIEWS", bool, True),
}


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


def _read(environ: Mapping[str, str]) -> dict[str, Any]:
    """Every variable's value (empty or blank: the default); all bad ones in one ``SettingsError``.

    The value is shown only for numbers and switches: a URL (database, storage, webhook) may hold a
    password or a token, so it is never repeated (and strings are never bad anyway).
    """
    values: dict[str, Any] = {}
    problems: list[str] = []
    for attribute, variable in _VARIABLES.items():
        raw = environ.get(variable.name)
        if raw is None or raw.strip() == "":
            values[attribute] = variable.default
            continue
        try:
            values[attribute] = variable.parse(raw)
        except ValueError:
            problems.append(f"{variable.name} must be {variable.expectation()}, got {_shown(raw)}")
    if problems:
        raise SettingsError("bad settings: " + "; ".join(problems))
    return values


# ---------------------------------------------------------------------------------------------------
# The settings the project uses
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    storage_url: str
    # Upload and extraction limits.
    max_file_bytes: int
    extraction_timeout_s: float
    extraction_memory_bytes: int
    extraction_workers: int
    # Orchestration. The sensor daemon wakes every 5 s (fixed in Dagster; `extraction-pipeline
    # daemon`: every `sensor_poll_s`); a minimum interval of 5 s too made it skip every other
    # wake-up (ticks 5 or 10 s apart, measured by bench/run.py), so the default is 1 s: a tick on
    # every wake-up.
    sensor_interval_s: int
    sensor_batch_size: int
    retry_delay_s: float
    max_retries: int
    notify_webhook_url: str | None
    # Partitions per run of a batched backfill (BackfillPolicy.multi_run), chosen with bench/run.py
    # on 2 cores (300 mixed files; the runs' wall time over the raw library loop): 25 -> 12 runs,
    # 50 -> 1.7x, 100 -> 1.26x. Each run pays a process launch and the worker's cold library imports.
    backfill_batch_size: int
    # A file queued this long without a run is requested again (same run_key) by the sensor.
    requeue_grace_s: int
    # How often `extraction-pipeline daemon` looks for new backfills. Dagster's own backfill daemon
    # looks every 30 s (fixed), which was 28.7 of a 300-file backfill's 44.6 s (bench/run.py --quick).
    backfill_poll_s: float
    # `extraction-pipeline daemon` runs `doctor` before it starts (quickstart runs it once for both).
    doctor_at_start: bool
    # The bearer token of the HTTP API (`serve`); never shown, not even in this object's repr.
    api_token: str | None = field(default=None, repr=False)
    # Least time between two ticks of the housekeeping sensor (orphans of rows deleted directly).
    housekeeping_interval_s: int = 30
    # A file with the bytes of one that succeeded with the same extractor version gets that file's
    # metadata copied instead of an extraction (off: every file is extracted, as the benchmark wants).
    deduplicate: bool = True
    # How often `extraction-pipeline daemon`'s sensor daemon wakes (Dagster's own: every 5 s, which
    # was 0-5 s of each upload's latency: `bench/run.py`).
    sensor_poll_s: float = 1.0
    # A tick that finds at least this many new files to extract hands them to a backfill of
    # multi-file runs (BackfillPolicy, `backfill_batch_size` per run) instead of one run per file, and
    # takes up to `burst_batch_size` of them at once. Measured with `bench/run.py` (step burst).
    burst_threshold: int = 10
    burst_batch_size: int = 500
    # The CPU priority (Unix niceness) of backfill runs and their workers, a burst's included: a
    # single upload made meanwhile gets the CPU first (0: same priority as every run).
    backfill_niceness: int = 10
    # Most characters of a file's text kept (`extract --text`); past it the text is cut, `truncated`.
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    # The pipeline renders each file's PNG preview and stores it in the blob store (off: none is made;
    # a DXF drawing's preview can cost a second beside a 0.1 s extraction).
    previews: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings of ``environ`` (default: the process environment), and of nothing else.

        Raises ``SettingsError`` naming every bad variable in one line.
        """
        read = _read(os.environ if environ is None else environ)  # SettingsError: every bad variable
        home = Path(read["home"]).expanduser().resolve()  # relative: to the working directory
        return cls(
            home=home,
            database_url=normalize_database_url(
                read["database_url"] or f"sqlite:///{home / 'extraction.db'}"
            ),
            storage_url=read["storage_url"] or (home / "blobs").as_uri(),
            max_file_bytes=read["max_file_mb"] * MIB,
            extraction_timeout_s=read["timeout_s"],
            extraction_memory_bytes=read["memory_limit_mb"] * MIB,
            extraction_workers=read["workers"],
            sensor_interval_s=read["sensor_interval_s"],
            sensor_batch_size=read["sensor_batch_size"],
            retry_delay_s=read["retry_delay_s"],
            max_retries=read["max_retries"],
            notify_webhook_url=read["notify_webhook_url"],
            backfill_batch_size=read["backfill_batch_size"],
            requeue_grace_s=read["requeue_grace_s"],
            backfill_poll_s=read["backfill_poll_s"],
            doctor_at_start=read["doctor_at_start"],
            api_token=read["api_token"],
            housekeeping_interval_s=read["housekeeping_interval_s"],
            deduplicate=read["deduplicate"],
            sensor_poll_s=read["sensor_poll_s"],
            burst_threshold=read["burst_threshold"],
            burst_batch_size=read["burst_batch_size"],
            backfill_niceness=read["backfill_niceness"],
            max_text_chars=read["max_text_chars"],
            previews=read["previews"],
        )

    @property
    def is_embedded(self) -> bool:
        return self.database_url.startswith("sqlite")
